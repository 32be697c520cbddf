"""Sentiment model v2: train the shipped default and measure it on everything we have.

Training data: SST-2's 67,349 training phrases (negative/positive, no intensity)
plus our own customer-service messages (``data/sentiment/customer_service.csv``,
three classes with an intensity 0-3). 15% of our messages (stratified, seed 42)
are held out as the validation set: early stopping, temperature, the intensity
map and the escalation threshold are chosen on it, never on a test set. So that
2,000 messages are not drowned by 67,000 movie-review phrases, each of our
training messages also enters with ``--variants`` seeded typo variants
(``training.augment``), which are distinct texts that carry its label and intensity.

Evaluated, with the int8 ONNX model that the assistant serves:

- our frozen test set ``benchmarks/data/sentiment_test.csv`` (written before
  training; SHA-256 recorded): per-class F1, macro-F1, ECE;
- SST-2 dev (872 sentences), neutral folded out (argmax of negative vs positive);
- Twitter airline, 3 classes, not trained on (transfer check): the seeded 20%
  test split of ``benchmarks/training_accuracy.py airline``;
- intensity on the ordinal set ``benchmarks/data/sentiment_intensity.csv``
  (none / mild / clear / strong negative): Spearman rank correlation;
- the escalation threshold on intensity (chosen on validation), and what it
  does on the ordinal set.

::

    .venv/bin/python benchmarks/sentiment_v2.py --ship assets/sentiment

Writes ``benchmarks/results/sentiment_v2.json`` and ``sentiment_v2.png``.
Runs without Rasa.
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
sys.path.insert(0, str(ROOT / "benchmarks"))

from training.arguments import DataArguments, TrainArguments  # noqa: E402
from training.augment import add_typos  # noqa: E402
from training.data import clean, load_delimited, stratified_split  # noqa: E402
from training.evaluation import compute_metrics  # noqa: E402
from training.export import export_onnx  # noqa: E402
from training.predict import Predictor  # noqa: E402
from training.trainer import ClassifierTrainer  # noqa: E402

OWN_DATA = ROOT / "data" / "sentiment" / "customer_service.csv"
TEST_SET = ROOT / "benchmarks" / "data" / "sentiment_test.csv"
ORDINAL_SET = ROOT / "benchmarks" / "data" / "sentiment_intensity.csv"
LEVELS = {"none": 0, "mild": 1, "clear": 2, "strong": 3}
RECIPE = {"epochs": 3, "learning_rate": 1e-4, "max_length": 64, "warmup_ratio": 0.06,
          "batch_size": 32}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def build_training_files(datasets: Path, out: Path, variants: int, sst2_subset: int | None
                         ) -> dict:
    """Writes train.csv (SST-2 + our train part + typo variants) and validation.csv."""
    own = read_rows(OWN_DATA)
    intensity = {row["text"].strip(): row["intensity"] for row in own}
    labelled = clean(load_delimited(OWN_DATA), source=str(OWN_DATA))
    train, validation = stratified_split(labelled, validation_fraction=0.15, seed=42)
    rng = random.Random(42)
    rows: list[tuple[str, str, str]] = []
    with (datasets / "sst2" / "train.tsv").open(encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        sst2 = [(r["sentence"].strip(), {"0": "negative", "1": "positive"}[r["label"]], "")
                for r in reader]
    if sst2_subset:
        sst2 = random.Random(42).sample(sst2, sst2_subset)
    rows += sst2
    for text, label in zip(train.texts, train.labels):
        level = intensity.get(text, "")
        rows.append((text, label, level))
        for _ in range(variants):
            rows.append((add_typos(text, rng), label, level))
    out.mkdir(parents=True, exist_ok=True)
    with (out / "train.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label", "intensity"])
        writer.writerows(rows)
    with (out / "validation.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label", "intensity"])
        writer.writerows((t, label, intensity.get(t, "")) for t, label in
                         zip(validation.texts, validation.labels))
    return {"sst2_phrases": len(sst2), "own_train": len(train), "own_validation": len(validation),
            "typo_variants_per_own_message": variants, "rows_written": len(rows),
            "own_data_sha256": sha256(OWN_DATA)}


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties)."""
    def ranks(values: np.ndarray) -> np.ndarray:
        order = values.argsort(kind="mergesort")
        result = np.empty(len(values))
        sorted_values = values[order]
        i = 0
        while i < len(values):
            j = i
            while j + 1 < len(values) and sorted_values[j + 1] == sorted_values[i]:
                j += 1
            result[order[i:j + 1]] = (i + j) / 2
            i = j + 1
        return result
    return float(np.corrcoef(ranks(np.asarray(x, float)), ranks(np.asarray(y, float)))[0, 1])


def negative_intensity(predictions) -> np.ndarray:
    """How strongly negative: the intensity where the label is negative, else 0."""
    return np.asarray([p.intensity if p.label == "negative" else 0.0 for p in predictions])


def choose_escalation_threshold(values: np.ndarray, strong: np.ndarray) -> dict:
    """The negative-intensity threshold that best tells strong negatives from the rest:
    the best F1 of "escalate" against "strongly negative" on validation, so that a
    false escalation (a human pulled in for a mildly annoyed customer) weighs as
    much as a missed one."""
    best = {"threshold": 1.0, "f1": -1.0}
    for threshold in np.unique(np.round(values[values > 0], 4)):
        flagged = values >= threshold
        hits = float((flagged & strong).sum())
        precision = hits / flagged.sum() if flagged.any() else 0.0
        recall = hits / strong.sum() if strong.any() else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        if f1 > best["f1"]:
            best = {"threshold": float(threshold), "f1": f1, "strong_recall": recall,
                    "precision": precision,
                    "false_escalation_rate": float(flagged[~strong].mean())}
    return best


def sentiment_metrics(predictor: Predictor, texts: list[str], labels: list[str]) -> dict:
    probabilities = predictor.predict_proba(texts, batch_size=128).numpy()
    ids = {label: i for i, label in enumerate(predictor.labels)}
    metrics = compute_metrics([ids[label] for label in labels], probabilities, predictor.labels)
    return {"examples": len(texts), "accuracy": round(metrics["accuracy"], 4),
            "macro_f1": round(metrics["macro_f1"], 4), "ece": round(metrics["ece"], 4),
            "per_class_f1": {k: round(v["f1"], 4) for k, v in metrics["per_label"].items()},
            "confusion_matrix": metrics["confusion_matrix"]}


def plot(record: dict, ordinal: dict, path: Path) -> None:
    from _plotting import pyplot, save  # noqa: PLC0415 (benchmarks/ sibling)

    plt = pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    own = record["own_test"]["per_class_f1"]
    names = list(own) + ["macro-F1", "SST-2 acc", "airline acc"]
    values = list(own.values()) + [record["own_test"]["macro_f1"], record["sst2_dev"]["accuracy"],
                                   record["airline_transfer"]["accuracy"]]
    left.bar(range(len(values)), values, color=["#c44", "#888", "#4a4", "#36c", "#a6c", "#e90"])
    for i, value in enumerate(values):
        left.text(i, value + 0.01, f"{value:.3f}", ha="center", fontsize=8)
    left.set_xticks(range(len(values)), names, rotation=20)
    left.set_ylim(0, 1.08)
    left.set_title("own test (F1 per class), SST-2 dev, airline (transfer)")
    levels = list(LEVELS)
    right.boxplot([ordinal[level] for level in levels], labels=levels)
    threshold = record["escalation"]["threshold"]
    right.axhline(threshold, color="r", linestyle="--", label=f"escalation threshold {threshold:.2f}")
    right.set_ylabel("negative intensity")
    right.set_title(f"ordinal set: Spearman {record['intensity']['spearman_negative']:.3f}")
    right.legend(loc="upper left")
    save(figure, path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--ship", type=Path, help="also write the artifact here (float16)")
    parser.add_argument("--variants", type=int, default=3)
    parser.add_argument("--epochs", type=float, default=RECIPE["epochs"])
    parser.add_argument("--sst2-subset", type=int, help="SST-2 phrases (quick checks)")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="evaluate the artifact at --ship again (no training); keeps the "
                             "training figures of the last results file")
    parser.add_argument("--name", default="sentiment_v2")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    options = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    work = ROOT / "models" / "benchmarks" / options.name
    output = options.ship or work / "artifact"
    results_path = options.results / f"{options.name}.json"
    if options.evaluate_only:
        previous = json.loads(results_path.read_text())
        record = {key: previous[key] for key in (
            "benchmark", "command", "cpu_count", "wall_seconds", "epochs_trained", "recipe",
            "data", "calibration", "validation")}
        record["evaluated"] = {"command": "python benchmarks/sentiment_v2.py "
                               + " ".join(sys.argv[1:]),
                               "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    else:
        data = build_training_files(options.datasets, work / "data", options.variants,
                                    options.sst2_subset)
        trainer = ClassifierTrainer(
            DataArguments(path=work / "data" / "train.csv",
                          validation_path=work / "data" / "validation.csv",
                          intensity_column="intensity"),
            TrainArguments(task="sentiment", output_dir=output, overwrite=True,
                           half_precision=bool(options.ship),
                           **(RECIPE | {"epochs": options.epochs})))
        started = time.perf_counter()
        result = trainer.run()
        wall = time.perf_counter() - started
        record = {
            "benchmark": "sentiment v2: MiniLM on SST-2 + own customer-service data, int8 ONNX",
            "command": "python benchmarks/sentiment_v2.py " + " ".join(sys.argv[1:]),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "cpu_count": os.cpu_count(),
            "wall_seconds": round(wall, 1),
            "epochs_trained": result.results.get("epochs_trained"),
            "recipe": RECIPE | {"epochs": options.epochs},
            "data": data,
            "calibration": result.info.calibration,
            "validation": {k: result.results["validation"][k]
                           for k in ("accuracy", "macro_f1", "ece")},
        }
    export_onnx(output)
    predictor = Predictor.load(output, backend="onnx", num_threads=1)
    torch_predictor = Predictor.load(output, backend="torch")

    test_rows = read_rows(TEST_SET)
    trained_on = {row["text"].strip().lower() for row in read_rows(OWN_DATA)}
    unseen = [row for row in test_rows if row["text"].strip().lower() not in trained_on]
    record["test_set"] = {"path": str(TEST_SET.relative_to(ROOT)), "sha256": sha256(TEST_SET),
                          "ordinal_sha256": sha256(ORDINAL_SET),
                          "written": "before training, independently of the training data",
                          "also_in_training_data": len(test_rows) - len(unseen)}
    record["own_test"] = sentiment_metrics(predictor, [r["text"] for r in test_rows],
                                           [r["label"] for r in test_rows])
    record["own_test_unseen"] = sentiment_metrics(predictor, [r["text"] for r in unseen],
                                                  [r["label"] for r in unseen])
    record["own_test_torch"] = {k: v for k, v in sentiment_metrics(
        torch_predictor, [r["text"] for r in test_rows], [r["label"] for r in test_rows]).items()
        if k in ("accuracy", "macro_f1", "ece")}

    sst2 = load_delimited(options.datasets / "sst2" / "dev.tsv", text_column="sentence",
                          delimiter="\t")
    probabilities = predictor.predict_proba(list(sst2.texts), batch_size=128).numpy()
    ids = {label: i for i, label in enumerate(predictor.labels)}
    folded = np.where(probabilities[:, ids["positive"]] > probabilities[:, ids["negative"]],
                      "1", "0")
    record["sst2_dev"] = {"examples": len(sst2),
                          "accuracy": round(float(np.mean(folded == np.asarray(sst2.labels))), 4),
                          "predicted_neutral_share": round(float(np.mean(
                              probabilities.argmax(axis=1) == ids["neutral"])), 4)}

    from training_accuracy import prepare_airline  # noqa: PLC0415

    split = prepare_airline(options.datasets, work / "airline_split")
    airline = load_delimited(work / "airline_split" / "test.csv")
    record["airline_transfer"] = sentiment_metrics(predictor, list(airline.texts),
                                                   list(airline.labels)) | {"split": split}

    validation = read_rows(work / "data" / "validation.csv")
    val_predictions = predictor.predict([r["text"] for r in validation])
    val_levels = np.asarray([float(r["intensity"] or 0) for r in validation])
    val_negative = np.asarray([r["label"] == "negative" for r in validation])
    escalation = choose_escalation_threshold(negative_intensity(val_predictions),
                                             val_negative & (val_levels >= 3))
    ordinal_rows = read_rows(ORDINAL_SET)
    ordinal_predictions = predictor.predict([r["text"] for r in ordinal_rows])
    levels = np.asarray([LEVELS[r["level"]] for r in ordinal_rows])
    negative = negative_intensity(ordinal_predictions)
    raw = np.asarray([p.intensity for p in ordinal_predictions])
    by_level = {level: negative[levels == value].tolist() for level, value in LEVELS.items()}
    flagged = negative >= escalation["threshold"]
    record["intensity"] = {
        "examples": len(ordinal_rows),
        "spearman_negative": round(spearman(negative, levels), 4),
        "spearman_intensity": round(spearman(raw, levels), 4),
        "mean_negative_intensity_by_level": {k: round(float(np.mean(v)), 4)
                                             for k, v in by_level.items()},
        "labelled_negative_share_by_level": {
            level: round(float(np.mean([p.label == "negative" for p, lv in
                                        zip(ordinal_predictions, levels) if lv == value])), 4)
            for level, value in LEVELS.items()},
    }
    record["escalation"] = {
        "rule": "label negative and intensity >= threshold",
        "chosen_on": "own validation split (strong = intensity 3 negative)",
        **{k: round(v, 4) for k, v in escalation.items()},
        "ordinal_escalated_share_by_level": {
            level: round(float(flagged[levels == value].mean()), 4)
            for level, value in LEVELS.items()},
    }
    options.results.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(record, indent=2) + "\n")
    plot(record, by_level, options.results / f"{options.name}.png")
    summary = {"own_macro_f1": record["own_test"]["macro_f1"], "own_ece": record["own_test"]["ece"],
               "own_unseen_macro_f1": record["own_test_unseen"]["macro_f1"],
               "own_unseen_ece": record["own_test_unseen"]["ece"],
               "sst2": record["sst2_dev"]["accuracy"],
               "airline": record["airline_transfer"]["accuracy"],
               "spearman": record["intensity"]["spearman_negative"],
               "escalation": record["escalation"]}
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
