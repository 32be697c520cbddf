"""Fine-tunes the real packaged MiniLM on a slice of BANKING77 (about a minute on 2 cores)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.conftest import SHARED_DATASETS
from training.arguments import DataArguments, TrainArguments
from training.trainer import ClassifierTrainer

BANKING77 = SHARED_DATASETS / "banking77"
LABELS = 10
TRAIN_PER_LABEL = 40


def _slice(source: Path, target: Path, labels: list[str], per_label: int | None) -> Path:
    with source.open(newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["category"] in labels]
    kept: dict[str, int] = {}
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "category"])
        writer.writeheader()
        for row in rows:
            if per_label is None or kept.get(row["category"], 0) < per_label:
                kept[row["category"]] = kept.get(row["category"], 0) + 1
                writer.writerow(row)
    return target


@pytest.mark.slow
@pytest.mark.skipif(not BANKING77.is_dir(), reason=f"{BANKING77} is not there")
def test_minilm_learns_a_banking77_slice_far_above_chance(tmp_path: Path) -> None:
    with (BANKING77 / "test.csv").open(newline="", encoding="utf-8") as handle:
        labels = sorted({row["category"] for row in csv.DictReader(handle)})[::7][:LABELS]
    train = _slice(BANKING77 / "train.csv", tmp_path / "train.csv", labels, TRAIN_PER_LABEL)
    test = _slice(BANKING77 / "test.csv", tmp_path / "test.csv", labels, None)

    result = ClassifierTrainer(
        DataArguments(path=train, test_path=test, label_column="category",
                      validation_split=0.1),
        TrainArguments(output_dir=tmp_path / "model", epochs=4, device="cpu"),
    ).run()

    accuracy = result.results["test"]["accuracy"]
    assert result.results["test"]["examples"] == 40 * LABELS
    # Chance is 1/10; a working fine-tune on 36 examples per label is far above it.
    assert accuracy >= 0.8, f"test accuracy {accuracy:.3f}"
