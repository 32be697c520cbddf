"""Classification metrics, calibration, the fallback threshold and the written report.

NumPy only (matplotlib for the optional plot, imported when drawing), so the
numbers can be tested on hand-made arrays.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from training.artifact import RESULTS_FILE

logger = logging.getLogger(__name__)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> np.ndarray:
    """Counts, rows are true labels and columns predicted ones."""
    matrix = np.zeros((n_labels, n_labels), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def per_label_report(matrix: np.ndarray, labels: Sequence[str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support of each label (0 where undefined)."""
    true_positives = np.diag(matrix).astype(float)
    predicted = matrix.sum(axis=0).astype(float)
    support = matrix.sum(axis=1).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, true_positives / predicted, 0.0)
        recall = np.where(support > 0, true_positives / support, 0.0)
        denominator = precision + recall
        f1 = np.where(denominator > 0, 2 * precision * recall / denominator, 0.0)
    return {
        label: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, label in enumerate(labels)
    }


def expected_calibration_error(
    confidences: np.ndarray, correct: np.ndarray, n_bins: int = 15
) -> float:
    """ECE: the gap between confidence and accuracy, averaged over equal-width bins."""
    if len(confidences) == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.digitize(confidences, edges[1:-1], right=True), 0, n_bins - 1)
    error = 0.0
    for b in range(n_bins):
        in_bin = bins == b
        if in_bin.any():
            gap = abs(confidences[in_bin].mean() - correct[in_bin].mean())
            error += in_bin.mean() * gap
    return float(error)


# Below this many wrong validation answers the empirical cost is too noisy to set a
# threshold on: one more or one fewer confident error moves it from 0.5 to the floor.
MIN_ERRORS_FOR_EMPIRICAL_THRESHOLD = 20


def suggest_fallback_threshold(
    confidences: np.ndarray, correct: np.ndarray, *, fallback_cost: float = 0.5,
    floor: float = 0.05, calibrated: bool = False,
    min_errors: int = MIN_ERRORS_FOR_EMPIRICAL_THRESHOLD,
) -> dict[str, Any]:
    """A confidence threshold for Rasa's ``FallbackClassifier``.

    Messages whose top confidence is below the threshold go to the fallback
    ("please rephrase"). The threshold minimises the cost on validation data
    when a wrong answer costs 1 and a fallback costs ``fallback_cost``: with
    the default 0.5, answering wrongly is twice as bad as asking again. Ties
    take the lower threshold, which hands fewer users to the fallback. With no
    error on validation the floor is returned: nothing needs catching.

    With ``calibrated`` confidences (temperature-scaled on this validation set)
    and fewer than ``min_errors`` wrong answers, the few errors cannot estimate
    the cost; the threshold is then the one that minimises the *expected* cost,
    which calibration gives directly: answer when ``1 - confidence``, the chance
    of a wrong answer, is below ``fallback_cost``, i.e. at ``1 - fallback_cost``.

    Returns:
        ``threshold``, ``method`` (``empirical`` or ``calibrated``), plus
        ``coverage`` (share of messages kept) and ``accuracy_above`` (accuracy
        of the kept ones) at that threshold.
    """
    confidences = np.asarray(confidences, dtype=float)
    correct = np.asarray(correct, dtype=bool)
    if len(confidences) == 0:
        return {"threshold": floor, "method": "empirical", "coverage": 1.0,
                "accuracy_above": 0.0}
    wrong = confidences[~correct]
    if calibrated and len(wrong) < min_errors:
        threshold, method = max(floor, 1.0 - fallback_cost), "calibrated"
    else:
        candidates = np.unique(np.concatenate([[floor], confidences[confidences > floor]]))
        costs = [np.sum(wrong >= t) + fallback_cost * np.sum(confidences < t)
                 for t in candidates]
        threshold, method = float(candidates[int(np.argmin(costs))]), "empirical"
    kept = confidences >= threshold
    return {
        "threshold": round(threshold, 4),
        "method": method,
        "coverage": float(kept.mean()),
        "accuracy_above": float(correct[kept].mean()) if kept.any() else 0.0,
    }


def compute_metrics(
    y_true: Sequence[int] | np.ndarray,
    probabilities: np.ndarray,
    labels: Sequence[str],
) -> dict[str, Any]:
    """All metrics of one evaluation from label ids and predicted probabilities.

    Args:
        y_true: True label ids.
        probabilities: ``(n_examples, n_labels)`` softmax outputs.
        labels: Label names by id.

    Returns:
        accuracy, macro_f1, ece, the fallback suggestion, the per-label report
        and the confusion matrix (as nested lists), all JSON-ready.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=float)
    y_pred = probabilities.argmax(axis=1) if len(probabilities) else np.zeros(0, np.int64)
    confidences = probabilities.max(axis=1) if len(probabilities) else np.zeros(0)
    correct = y_pred == y_true
    matrix = confusion_matrix(y_true, y_pred, len(labels))
    report = per_label_report(matrix, labels)
    present = [name for name in labels if report[name]["support"] > 0]
    return {
        "examples": int(len(y_true)),
        "accuracy": float(correct.mean()) if len(correct) else 0.0,
        "macro_f1": float(np.mean([report[name]["f1"] for name in present])) if present else 0.0,
        "ece": expected_calibration_error(confidences, correct),
        "fallback": suggest_fallback_threshold(confidences, correct),
        "per_label": report,
        "confusion_matrix": matrix.tolist(),
    }


def plot_confusion_matrix(
    matrix: Sequence[Sequence[int]], labels: Sequence[str], path: str | Path, title: str = ""
) -> Path | None:
    """Draws a row-normalised confusion matrix to a PNG; ``None`` without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # the GPU machine may lack matplotlib: metrics are still in the JSON
        logger.warning("matplotlib is not installed; skipping the confusion-matrix plot")
        return None
    counts = np.asarray(matrix, dtype=float)
    rows = counts.sum(axis=1, keepdims=True)
    normalised = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    size = max(5.0, 0.16 * len(labels) + 3)
    figure, axes = plt.subplots(figsize=(size, size))
    image = axes.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(len(labels)), labels, rotation=90, fontsize=max(4, 9 - len(labels) // 20))
    axes.set_yticks(range(len(labels)), labels, fontsize=max(4, 9 - len(labels) // 20))
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    if len(labels) <= 12:  # numbers stay readable only on small matrices
        for i in range(len(labels)):
            for j in range(len(labels)):
                axes.text(j, i, int(counts[i, j]), ha="center", va="center",
                          color="white" if normalised[i, j] > 0.5 else "black", fontsize=8)
    axes.set_title(title or "confusion matrix (row-normalised)")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def write_results(directory: Path, results: dict[str, Any], labels: list[str],
                  title_prefix: str = "") -> Path:
    """Writes ``results.json`` and one confusion-matrix PNG per evaluated split.

    Args:
        directory: The artifact (or evaluation output) directory.
        results: The report; the ``validation``, ``test`` and ``evaluation``
            entries gain ``confusion_matrix_png`` (in place) when a PNG is drawn.
        labels: Label names by id.
        title_prefix: Starts each plot's title (the task).

    Returns:
        The path of ``results.json``.
    """
    for name in ("validation", "test", "evaluation"):
        if name in results and results[name].get("examples"):
            png = plot_confusion_matrix(
                results[name]["confusion_matrix"], labels,
                directory / f"confusion_{name}.png",
                title=f"{title_prefix} {name}: accuracy {results[name]['accuracy']:.4f}".strip(),
            )
            if png is not None:
                results[name]["confusion_matrix_png"] = png.name
    path = directory / RESULTS_FILE
    path.write_text(json.dumps(results, indent=2, default=_json_default) + "\n", encoding="utf-8")
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return str(value)
