"""Open-intent BANKING77: how well each out-of-scope detector says "I don't know".

A seeded 25% of the 77 intents (``--seed``) are held out as *unknown*: the model
is trained on the other 75% only (10% of their training rows held out as
validation), then the official test set is classified. Every detector of
``training.ood`` is fitted on the same model's training embeddings, and its
threshold is set on the validation split alone (which has no unknown intent) to
accept ``--known-recall`` of known messages. Reported per method, side by side:

- known-intent accuracy (a known message counts as right only if it is accepted
  and classified correctly) against the closed-set accuracy of the same model;
- unknown recall and precision (unknown test messages rejected / all rejections);
- AUROC of the score, and the whole trade-off curve in the PNG.

::

    .venv/bin/python benchmarks/open_intent.py

Writes ``benchmarks/results/open_intent.json`` and ``open_intent.png``. No Rasa.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import os
import random
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from training.arguments import DataArguments, TrainArguments  # noqa: E402
from training.data import load_delimited  # noqa: E402
from training.ood import METHODS, OutOfScopeDetector, auroc  # noqa: E402
from training.trainer import ClassifierTrainer  # noqa: E402

RECIPE = {"epochs": 4, "learning_rate": 2e-4, "max_length": 64}


def operating_point(scores_known: np.ndarray, correct_known: np.ndarray,
                    scores_unknown: np.ndarray, threshold: float) -> dict:
    """Known accuracy, unknown recall and precision when scores above ``threshold`` are rejected."""
    rejected_known = scores_known > threshold
    rejected_unknown = scores_unknown > threshold
    rejections = rejected_known.sum() + rejected_unknown.sum()
    return {
        "threshold": round(float(threshold), 5),
        "known_accuracy": round(float((correct_known & ~rejected_known).mean()), 4),
        "known_rejected": round(float(rejected_known.mean()), 4),
        "unknown_recall": round(float(rejected_unknown.mean()), 4),
        "unknown_precision": round(float(rejected_unknown.sum() / rejections), 4)
        if rejections else 0.0,
    }


def plot(curves: dict, record: dict, path: Path) -> None:
    from _plotting import pyplot, save  # noqa: PLC0415 (benchmarks/ sibling)

    plt = pyplot()
    figure, axes = plt.subplots(figsize=(7, 5))
    for method, (recall, accuracy) in curves.items():
        result = record["methods"][method]
        axes.plot(recall, accuracy, label=f"{method} (AUROC {result['auroc']:.3f})")
        point = result["at_validation_threshold"]
        axes.plot(point["unknown_recall"], point["known_accuracy"], "o", color="k", markersize=4)
    closed = record["closed_set_known_accuracy"]
    axes.axhline(closed, color="grey", linestyle=":", label=f"closed-set {closed:.3f}")
    axes.axhline(closed - 0.015, color="r", linestyle=":", label="closed-set - 1.5 points")
    axes.axvline(0.85, color="r", linestyle="--", linewidth=0.8, label="unknown recall 85%")
    axes.set_xlabel("unknown recall (unknown intents rejected)")
    axes.set_ylabel("known-intent accuracy (accepted and right)")
    axes.set_title("BANKING77, 25% of intents unknown; dots: validation thresholds")
    axes.set_ylim(0.3, 1.0)
    axes.legend(fontsize=8, loc="lower left")
    save(figure, path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--seed", type=int, default=42, help="which intents are unknown")
    parser.add_argument("--unknown-share", type=float, default=0.25)
    parser.add_argument("--known-recall", type=float, default=0.95)
    parser.add_argument("--epochs", type=float, default=RECIPE["epochs"])
    parser.add_argument("--train-subset", type=int, help="known training rows (quick checks)")
    parser.add_argument("--name", default="open_intent")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    options = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    train = load_delimited(options.datasets / "banking77" / "train.csv", label_column="category")
    test = load_delimited(options.datasets / "banking77" / "test.csv", label_column="category")
    intents = sorted(set(train.labels))
    unknown = sorted(random.Random(options.seed).sample(
        intents, round(options.unknown_share * len(intents))))
    known_rows = [(t, label) for t, label in zip(train.texts, train.labels) if label not in unknown]
    if options.train_subset:
        known_rows = random.Random(0).sample(known_rows, options.train_subset)
    work = ROOT / "models" / "benchmarks" / options.name
    work.mkdir(parents=True, exist_ok=True)
    with (work / "known_train.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(known_rows)
    trainer = ClassifierTrainer(
        DataArguments(path=work / "known_train.csv", validation_split=0.1),
        TrainArguments(task="intent", output_dir=work / "artifact", overwrite=True,
                       out_of_scope="none", **(RECIPE | {"epochs": options.epochs})))
    started = time.perf_counter()
    trainer.run()
    wall = time.perf_counter() - started
    predictor = trainer.predictor()
    label_ids = {label: i for i, label in enumerate(trainer.labels)}

    def outputs(texts):
        return predictor.outputs(list(texts), batch_size=128)

    fit_out = outputs(trainer.train_set.texts)
    validation_out = outputs(trainer.validation_set.texts)
    known_test = [(t, label) for t, label in zip(test.texts, test.labels) if label not in unknown]
    unknown_test = [t for t, label in zip(test.texts, test.labels) if label in unknown]
    known_out = outputs(t for t, _ in known_test)
    unknown_out = outputs(unknown_test)
    y_known = np.asarray([label_ids[label] for _, label in known_test])
    correct_known = predictor.calibrated(known_out["logits"]).argmax(axis=1) == y_known
    record = {
        "benchmark": "open-intent BANKING77 (MiniLM): out-of-scope detectors side by side",
        "command": "python benchmarks/open_intent.py " + " ".join(sys.argv[1:]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "wall_seconds_training": round(wall, 1),
        "split": {"seed": options.seed, "unknown_share": options.unknown_share,
                  "unknown_intents": unknown, "known_intents": len(intents) - len(unknown),
                  "train_known": len(trainer.train_set),
                  "validation_known": len(trainer.validation_set),
                  "test_known": len(known_test), "test_unknown": len(unknown_test),
                  "unknown_sha256": hashlib.sha256("\n".join(unknown).encode()).hexdigest()},
        "known_recall_target": options.known_recall,
        "temperature": trainer.calibration.get("temperature"),
        "closed_set_known_accuracy": round(float(correct_known.mean()), 4),
        "methods": {},
    }
    curves = {}
    for method in METHODS:
        detector = OutOfScopeDetector.fit(method, fit_out.get("features"),
                                          trainer.label_ids(trainer.train_set),
                                          len(trainer.labels),
                                          temperature=record["temperature"] or 1.0)
        validation_scores = detector.scores(validation_out.get("features"),
                                            validation_out["logits"])
        known_scores = detector.scores(known_out.get("features"), known_out["logits"])
        unknown_scores = detector.scores(unknown_out.get("features"), unknown_out["logits"])
        points = {}
        for recall in (options.known_recall, 0.9, 0.85):
            threshold = detector.set_threshold(validation_scores, recall)
            points[f"validation_known_recall_{recall}"] = operating_point(
                known_scores, correct_known, unknown_scores, threshold)
        # The trade-off curve, swept over test scores: for the plot and for the
        # "what would 85% unknown recall cost" question; no threshold is chosen here.
        sweep = np.quantile(np.concatenate([known_scores, unknown_scores]),
                            np.linspace(0, 1, 201))
        swept = [operating_point(known_scores, correct_known, unknown_scores, t) for t in sweep]
        curves[method] = ([p["unknown_recall"] for p in swept],
                          [p["known_accuracy"] for p in swept])
        at_85 = [p for p in swept if p["unknown_recall"] >= 0.85]
        record["methods"][method] = {
            "auroc": round(auroc(known_scores, unknown_scores), 4),
            "at_validation_threshold": points[f"validation_known_recall_{options.known_recall}"],
            "operating_points": points,
            "known_accuracy_at_85pct_unknown_recall_test_sweep":
                max((p["known_accuracy"] for p in at_85), default=None),
        }
        logging.info("%s: AUROC %.4f, %s", method, record["methods"][method]["auroc"],
                     record["methods"][method]["at_validation_threshold"])
    best = max(record["methods"], key=lambda m: record["methods"][m]["auroc"])
    record["best_by_auroc"] = best
    options.results.mkdir(parents=True, exist_ok=True)
    (options.results / f"{options.name}.json").write_text(json.dumps(record, indent=2) + "\n")
    plot(curves, record, options.results / f"{options.name}.png")
    print(json.dumps({m: {"auroc": r["auroc"], **r["at_validation_threshold"]}
                      for m, r in record["methods"].items()}
                     | {"closed_set": record["closed_set_known_accuracy"]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
