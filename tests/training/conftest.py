"""Fixtures for ``training``: a factory that trains on the tiny checkpoint."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import TINY_TRAINING, synthetic_pairs
from training.arguments import DataArguments, TrainArguments
from training.trainer import ClassifierTrainer, TrainResult


@pytest.fixture
def train_tiny(tiny_checkpoint: Path, tmp_path: Path) -> Callable[..., TrainResult]:
    """Factory: trains on the tiny checkpoint; keyword arguments override defaults."""

    def train(data: Path | None = None, *, data_options: dict | None = None,
              **overrides: object) -> TrainResult:
        if data is None:
            data = tmp_path / "synthetic.csv"
            with data.open("w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["text", "label"])
                writer.writerows(synthetic_pairs())
        options = {"output_dir": tmp_path / "artifact", "base_model": str(tiny_checkpoint)}
        options.update(TINY_TRAINING)
        options.update(overrides)
        data_args = DataArguments(path=data, **({"validation_split": 0.2} | (data_options or {})))
        trainer = ClassifierTrainer(data_args, TrainArguments(**options))
        result = trainer.run()
        result.trainer = trainer  # type: ignore[attr-defined]  # for in-memory checks
        return result

    return train
