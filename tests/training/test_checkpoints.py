"""Resumable checkpoints: stop a tiny run after N steps, resume it, refuse another run's."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from tests.conftest import synthetic_pairs
from training.arguments import CheckpointArguments, DataArguments, TrainArguments
from training.callbacks import EpochLengthGroupedSampler
from training.checkpoints import RUN_FILE, identify, plan
from training.cli import EXIT_STOPPED, main
from training.distributed import REPORT_ENV
from training.exceptions import ArgumentsError, CheckpointError
from training.predict import Predictor

# 36 examples, 6 held out: 30 train in batches of 5, 6 steps an epoch.
BATCH = 5
EPOCHS = 2


@pytest.fixture
def data(write_csv) -> Path:
    return write_csv(synthetic_pairs(), name="train.csv")


@pytest.fixture
def options(tiny_checkpoint: Path, data: Path, tmp_path: Path) -> list[str]:
    return ["intent", "--data", str(data), "--output", str(tmp_path / "model"),
            "--base-model", str(tiny_checkpoint), "--validation-split", "0.2",
            "--epochs", str(EPOCHS), "--batch-size", str(BATCH), "--max-length", "32",
            "--learning-rate", "3e-3", "--device", "cpu"]


@pytest.fixture
def report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Reads the rank report of the last run."""
    directory = tmp_path / "report"
    monkeypatch.setenv(REPORT_ENV, str(directory))
    return lambda: json.loads((directory / "rank-0.json").read_text())


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def total_steps(train_examples: int) -> int:
    return EPOCHS * math.ceil(train_examples / BATCH)


def test_a_stopped_run_resumes_from_its_last_checkpoint(options, report, tmp_path, capsys,
                                                        write_csv) -> None:
    checkpoints = tmp_path / "model.checkpoints"

    code, err = run(capsys, *options, "--stop-after-steps", "5", "--checkpoint-steps", "2")

    assert code == EXIT_STOPPED
    assert "stopped: stopped after step 5" in err
    assert not (tmp_path / "model").exists()
    # Steps 2 and 4 (every 2) and 5 (the stop); the two newest are kept.
    assert sorted(p.name for p in checkpoints.iterdir()) == [
        "checkpoint-4", "checkpoint-5", RUN_FILE]
    saved = {p.name for p in (checkpoints / "checkpoint-5").iterdir()}
    assert {"model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth",
            "trainer_state.json"} <= saved
    state = json.loads((checkpoints / "checkpoint-5" / "trainer_state.json").read_text())
    assert state["global_step"] == 5
    run_file = json.loads((checkpoints / RUN_FILE).read_text())
    assert len(run_file["hash"]) == 64
    assert set(run_file["fingerprints"]) == {"training data", "validation data"}

    code, err = run(capsys, *options)
    assert code == 2 and "holds the checkpoints of an unfinished run (latest: step 5)" in err
    assert "pass --resume" in err

    code, err = run(capsys, *options, "--learning-rate", "0.01", "--seed", "7", "--resume")
    assert code == 2
    assert "learning_rate 0.003 -> 0.01; seed 42 -> 7" in err

    more = write_csv([*synthetic_pairs(), ("where is my parcel", "order_status")],
                     name="more.csv")
    code, err = run(capsys, *[str(more) if arg.endswith("train.csv") else arg
                              for arg in options], "--resume")
    assert code == 2 and "training data (fingerprint" in err

    code, err = run(capsys, *options, "--resume")

    assert code == 0, err
    trained = report()
    assert (trained["resumed_from_step"], trained["start_step"]) == (5, 5)
    total = total_steps(trained["train_examples"])
    assert (trained["steps"], trained["end_step"]) == (total - 5, total)
    results = json.loads((tmp_path / "model" / "results.json").read_text())
    assert results["resumed_from_step"] == 5
    assert Predictor.load(tmp_path / "model", device="cpu").predict_proba(["hello"]).shape == (
        1, 3)
    assert not checkpoints.exists()


def test_resume_without_a_checkpoint_trains_from_the_start(options, report, tmp_path,
                                                            capsys) -> None:
    code, err = run(capsys, *options, "--resume", "--keep-checkpoints")

    assert code == 0, err
    first = report()
    assert (first["resumed_from_step"], first["start_step"]) == (None, 0)
    kept = tmp_path / "model.checkpoints"
    assert f"checkpoint-{first['end_step']}" in {p.name for p in kept.iterdir()}
    assert "resumed_from_step" not in json.loads((tmp_path / "model" / "results.json")
                                                 .read_text())

    # Resuming a finished run trains no step: it reloads the best epoch and rewrites.
    code, err = run(capsys, *options, "--resume", "--overwrite")

    assert code == 0, err
    again = report()
    assert (again["start_step"], again["steps"]) == (first["end_step"], 0)
    assert (tmp_path / "model" / "classifier.json").is_file()
    assert not kept.exists()


def test_overwrite_discards_an_unfinished_run(options, report, tmp_path, capsys) -> None:
    assert run(capsys, *options, "--stop-after-steps", "3")[0] == EXIT_STOPPED

    code, err = run(capsys, *options, "--overwrite")

    assert code == 0, err
    assert report()["start_step"] == 0
    assert not (tmp_path / "model.checkpoints").exists()


def _identity(tmp_path: Path, **changes: object):
    data_args = DataArguments(path=changes.pop("path", tmp_path / "a.csv"))
    world_size = int(changes.pop("world_size", 1))
    args = TrainArguments(**({"output_dir": tmp_path / "out"} | changes))
    return identify(args, data_args, training="a" * 64, validation="b" * 64,
                    world_size=world_size)


def test_what_may_and_may_not_change_between_a_run_and_its_resumption(tmp_path) -> None:
    saved = _identity(tmp_path)

    assert _identity(tmp_path, path=tmp_path / "moved.csv", overwrite=True, num_threads=2,
                     output_dir=tmp_path / "elsewhere").differences(saved) == []
    assert _identity(tmp_path, world_size=2).differences(saved) == [
        "processes (torchrun world size) 1 -> 2"]
    assert _identity(tmp_path, epochs=5.0).differences(saved) == ["epochs 4.0 -> 5.0"]


def test_a_checkpoint_directory_without_run_file_is_not_resumed(tmp_path) -> None:
    directory = tmp_path / "out.checkpoints" / "checkpoint-3"
    directory.mkdir(parents=True)
    (directory / "trainer_state.json").write_text("{}")
    identity = _identity(tmp_path)

    with pytest.raises(CheckpointError, match=f"no {RUN_FILE}"):
        plan(CheckpointArguments(resume=True), tmp_path / "out", identity, overwrite=False)
    fresh = plan(CheckpointArguments(), tmp_path / "out", identity, overwrite=True)
    assert fresh.start_fresh and fresh.resume_from is None


def test_checkpoint_arguments_are_checked() -> None:
    assert CheckpointArguments().directory_for(Path("models/intent")) == Path(
        "models/intent.checkpoints")
    assert CheckpointArguments(directory="ckpt").directory_for(Path("x")) == Path("ckpt")
    with pytest.raises(ArgumentsError, match="checkpoint_steps=-1"):
        CheckpointArguments(every_steps=-1)
    with pytest.raises(ArgumentsError, match="stop_after_steps=0"):
        CheckpointArguments(stop_after_steps=0)


def test_the_data_parallel_order_is_seeded_by_the_epoch_alone() -> None:
    lengths = [3, 9, 4, 12, 5, 7, 8, 6, 10, 11, 2, 1]
    sampler = EpochLengthGroupedSampler(lengths, batch_size=3, seed=1)
    first = list(sampler)
    torch.manual_seed(123)  # the global random state (dropout's) plays no part

    assert list(sampler) == first and sorted(first) == list(range(len(lengths)))
    sampler.set_epoch(1)
    assert list(sampler) != first
    assert sorted(sampler) == list(range(len(lengths)))
