"""BANKING77: calibration (ECE before and after temperature scaling) and typo robustness.

One run trains the BANKING77 recipe once per ``--typo-augmentation`` value
(default: without, and with 0.3) and evaluates each model on the official test
set and on a seeded typo-perturbed copy of it (``training.augment.typo_copy``,
seed ``TYPO_SEED``, a typo in about a quarter of the words and at least one per
message). Each model corrects typos in front of its encoder
(``training.spelling``, on by default); the typo copy is also scored with the
correction switched off, from the same model, to show what each part gives.
Temperature and fallback threshold are fitted on the 10% validation split, never
on the test set::

    .venv/bin/python benchmarks/intent_robustness.py

Writes ``benchmarks/results/intent_robustness.json`` and a PNG (reliability
diagram and clean-vs-typo accuracy). Runs without Rasa.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from training.arguments import DataArguments, TrainArguments  # noqa: E402
from training.augment import typo_copy  # noqa: E402
from training.calibration import softmax  # noqa: E402
from training.data import load_delimited  # noqa: E402
from training.evaluation import compute_metrics, expected_calibration_error  # noqa: E402
from training.trainer import ClassifierTrainer  # noqa: E402

TYPO_SEED = 20261130
RECIPE = {"epochs": 4, "learning_rate": 2e-4, "max_length": 64}


def reliability(confidences: np.ndarray, correct: np.ndarray, bins: int = 15) -> list[dict]:
    """Accuracy and mean confidence per equal-width confidence bin."""
    edges = np.linspace(0, 1, bins + 1)
    rows = []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidences > low) & (confidences <= high)
        if inside.any():
            rows.append({"low": round(float(low), 3), "high": round(float(high), 3),
                         "count": int(inside.sum()),
                         "confidence": round(float(confidences[inside].mean()), 4),
                         "accuracy": round(float(correct[inside].mean()), 4)})
    return rows


def evaluate(predictor, texts: list[str], y_true: np.ndarray, labels: list[str]) -> dict:
    """Raw and calibrated metrics of one test copy."""
    outputs = predictor.outputs(texts, batch_size=128)
    raw = softmax(outputs["logits"])
    calibrated = predictor.calibrated(outputs["logits"])
    metrics = compute_metrics(y_true, calibrated, labels)
    correct = calibrated.argmax(axis=1) == y_true
    return {
        "accuracy": round(metrics["accuracy"], 4),
        "macro_f1": round(metrics["macro_f1"], 4),
        "ece_uncalibrated": round(expected_calibration_error(raw.max(axis=1), correct), 4),
        "ece_calibrated": round(metrics["ece"], 4),
        "reliability": reliability(calibrated.max(axis=1), correct),
        "reliability_uncalibrated": reliability(raw.max(axis=1), correct),
    }


def plot(record: dict, path: Path) -> None:
    from _plotting import pyplot, save  # noqa: PLC0415 (benchmarks/ sibling)

    plt = pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    run = record["runs"][-1]["clean"]
    for key, name in (("reliability_uncalibrated", f"before (ECE {run['ece_uncalibrated']:.3f})"),
                      ("reliability", f"temperature-scaled (ECE {run['ece_calibrated']:.3f})")):
        rows = run[key]
        left.plot([r["confidence"] for r in rows], [r["accuracy"] for r in rows], "o-", label=name)
    left.plot([0, 1], [0, 1], "k--", linewidth=0.8)
    left.set_xlabel("confidence")
    left.set_ylabel("accuracy")
    left.set_title("BANKING77 test: reliability")
    left.legend()
    names = [f"typos p={r['typo_augmentation']}" for r in record["runs"]]
    x = np.arange(len(names))
    right.bar(x - 0.27, [r["clean"]["accuracy"] for r in record["runs"]], 0.27,
              label="clean test")
    right.bar(x, [r["without_spelling_correction"]["typo"] for r in record["runs"]], 0.27,
              label="typo test, no spelling correction")
    right.bar(x + 0.27, [r["typo"]["accuracy"] for r in record["runs"]], 0.27,
              label="typo test, spelling corrected")
    for i, r in enumerate(record["runs"]):
        right.text(i + 0.27, r["typo"]["accuracy"] + 0.005, f"-{r['typo_drop_points']:.2f} pts",
                   ha="center", fontsize=8)
    right.set_xticks(x, names)
    lowest = min(r["without_spelling_correction"]["typo"] for r in record["runs"])
    right.set_ylim(max(0.0, lowest - 0.08), 1.0)
    right.set_title("accuracy: clean vs typo-perturbed test")
    right.legend(loc="upper right")
    save(figure, path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--typo-augmentation", default="0,0.3",
                        help="comma-separated probabilities, one training run each")
    parser.add_argument("--train-subset", type=int, help="rows of train.csv (quick checks)")
    parser.add_argument("--epochs", type=float, default=RECIPE["epochs"])
    parser.add_argument("--name", default="intent_robustness")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    options = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    train_path = options.datasets / "banking77" / "train.csv"
    test = load_delimited(options.datasets / "banking77" / "test.csv", label_column="category")
    texts = list(test.texts)
    noisy = typo_copy(texts, seed=TYPO_SEED)
    if options.train_subset:
        from training_accuracy import subsample  # noqa: PLC0415 (benchmarks/ sibling)

        train_path, _ = subsample(train_path, options.train_subset,
                                  ROOT / "models" / "benchmarks" / "banking77_subset")
    record = {
        "benchmark": "BANKING77 calibration and typo robustness (MiniLM)",
        "command": "python benchmarks/intent_robustness.py " + " ".join(sys.argv[1:]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "typo_test": {"seed": TYPO_SEED, "examples": len(noisy),
                      "changed": sum(a != b for a, b in zip(texts, noisy)),
                      "sha256": hashlib.sha256("\n".join(noisy).encode()).hexdigest(),
                      "samples": list(zip(texts[:5], noisy[:5]))},
        "recipe": RECIPE | {"epochs": options.epochs, "validation_split": 0.1},
        "runs": [],
    }
    for rate in (float(value) for value in options.typo_augmentation.split(",")):
        output = ROOT / "models" / "benchmarks" / f"banking77_typo{rate}"
        trainer = ClassifierTrainer(
            DataArguments(path=train_path, label_column="category", validation_split=0.1),
            TrainArguments(task="intent", output_dir=output, overwrite=True,
                           typo_augmentation=rate, out_of_scope="none",
                           **(RECIPE | {"epochs": options.epochs})))
        started = time.perf_counter()
        result = trainer.run()
        wall = time.perf_counter() - started
        predictor = trainer.predictor()
        labels = trainer.labels
        y_true = trainer.label_ids(test)
        clean, typo = (evaluate(predictor, copy, y_true, labels) for copy in (texts, noisy))
        spelling, predictor.spelling = predictor.spelling, None
        without = {name: evaluate(predictor, copy, y_true, labels)["accuracy"]
                   for name, copy in (("clean", texts), ("typo", noisy))}
        predictor.spelling = spelling
        record["runs"].append({
            "typo_augmentation": rate,
            "wall_seconds": round(wall, 1),
            "epochs_trained": result.results.get("epochs_trained"),
            "calibration": result.info.calibration,
            "clean": clean,
            "typo": typo,
            "typo_drop_points": round(100 * (clean["accuracy"] - typo["accuracy"]), 2),
            "spelling_correction": spelling is not None,
            "without_spelling_correction": without | {
                "typo_drop_points": round(100 * (without["clean"] - without["typo"]), 2)},
        })
        logging.info("typo augmentation %.2f: clean %.4f, typo %.4f, ECE %.4f -> %.4f", rate,
                     clean["accuracy"], typo["accuracy"], clean["ece_uncalibrated"],
                     clean["ece_calibrated"])
    options.results.mkdir(parents=True, exist_ok=True)
    path = options.results / f"{options.name}.json"
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    plot(record, options.results / f"{options.name}.png")
    print(json.dumps({run["typo_augmentation"]: {k: run[k] for k in ("typo_drop_points",)}
                      | {"clean": run["clean"]["accuracy"], "typo": run["typo"]["accuracy"],
                         "ece": run["clean"]["ece_calibrated"],
                         "without_spelling_correction": run["without_spelling_correction"]}
                      for run in record["runs"]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
