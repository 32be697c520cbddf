from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training import evaluation


def test_compute_metrics_on_a_hand_made_case() -> None:
    probabilities = np.array([
        [0.9, 0.1, 0.0],   # a, right
        [0.6, 0.4, 0.0],   # a, right
        [0.2, 0.7, 0.1],   # b, right
        [0.5, 0.3, 0.2],   # b predicted a: wrong
    ])
    metrics = evaluation.compute_metrics([0, 0, 1, 1], probabilities, ["a", "b", "c"])

    assert metrics["accuracy"] == pytest.approx(0.75)
    assert metrics["confusion_matrix"] == [[2, 0, 0], [1, 1, 0], [0, 0, 0]]
    assert metrics["per_label"]["a"] == pytest.approx(
        {"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2})
    assert metrics["per_label"]["b"] == pytest.approx(
        {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    # "c" never occurs: macro-F1 averages the labels present.
    assert metrics["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert metrics["fallback"]["threshold"] == pytest.approx(0.6)


@pytest.mark.parametrize(
    ("confidences", "correct", "expected"),
    [
        # Each bin's confidence equals its accuracy: perfectly calibrated.
        ([1.0, 1.0, 0.5, 0.5], [True, True, True, False], 0.0),
        # Always right at 0.8 confidence: under-confident by 0.2.
        ([0.8, 0.8], [True, True], 0.2),
        # Always wrong at 0.6: over-confident by 0.6.
        ([0.6, 0.6, 0.6], [False, False, False], 0.6),
    ],
)
def test_expected_calibration_error(confidences, correct, expected) -> None:
    value = evaluation.expected_calibration_error(np.array(confidences), np.array(correct))

    assert value == pytest.approx(expected)


@pytest.mark.parametrize(
    ("confidences", "correct", "threshold"),
    [
        # Errors all sit below 0.5, correct ones above: the threshold separates them.
        ([0.95, 0.9, 0.8, 0.7, 0.45, 0.4], [1, 1, 1, 1, 0, 0], 0.7),
        # No error on validation: nothing to catch, the floor keeps everyone.
        ([0.9, 0.8, 0.6], [1, 1, 1], 0.05),
        # One error among confident answers: catching it costs two fallbacks, too many.
        ([0.9, 0.8, 0.75, 0.7], [1, 0, 1, 1], 0.05),
        # Errors everywhere: two fallbacks cost less than two wrong answers.
        ([0.9, 0.8], [0, 0], 0.9),
    ],
)
def test_suggest_fallback_threshold(confidences, correct, threshold) -> None:
    result = evaluation.suggest_fallback_threshold(np.array(confidences),
                                                   np.array(correct, dtype=bool))

    assert result["threshold"] == pytest.approx(threshold, abs=1e-3)
    assert 0 <= result["coverage"] <= 1


@pytest.mark.parametrize("errors", [0, 1, 5, 19])
def test_few_errors_on_calibrated_confidences_give_the_expected_cost_threshold(errors) -> None:
    # A small validation split (an assistant's own data): a handful of confident
    # errors must not move the threshold between 0.5 and the floor.
    rng = np.random.default_rng(errors)
    confidences = rng.uniform(0.3, 1.0, 200)
    correct = np.ones(200, dtype=bool)
    correct[:errors] = False

    result = evaluation.suggest_fallback_threshold(confidences, correct, calibrated=True)
    cheap = evaluation.suggest_fallback_threshold(confidences, correct, calibrated=True,
                                                  fallback_cost=0.3)

    assert (result["threshold"], result["method"]) == (0.5, "calibrated")
    assert cheap["threshold"] == pytest.approx(0.7)


def test_many_errors_keep_the_empirical_threshold_when_calibrated() -> None:
    rng = np.random.default_rng(1)
    correct = rng.random(2000) < 0.9
    confidences = np.where(correct, rng.uniform(0.4, 1.0, 2000), rng.uniform(0.05, 0.6, 2000))

    calibrated = evaluation.suggest_fallback_threshold(confidences, correct, calibrated=True)

    assert calibrated == evaluation.suggest_fallback_threshold(confidences, correct)
    assert calibrated["method"] == "empirical"


def test_threshold_keeps_accuracy_above_it_high() -> None:
    rng = np.random.default_rng(0)
    correct = rng.random(2000) < 0.9
    confidences = np.where(correct, rng.uniform(0.4, 1.0, 2000), rng.uniform(0.05, 0.6, 2000))

    result = evaluation.suggest_fallback_threshold(confidences, correct)

    assert 0.3 <= result["threshold"] <= 0.6
    assert result["accuracy_above"] > 0.95


def test_plot_confusion_matrix_writes_a_png(tmp_path: Path) -> None:
    path = evaluation.plot_confusion_matrix([[3, 1], [0, 4]], ["a", "b"], tmp_path / "cm.png")

    assert path is not None and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
