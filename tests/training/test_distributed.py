"""``torchrun --nproc_per_node 2 -m training intent`` on the CPU (gloo), end to end.

Each launch starts two real processes on the tiny checkpoint (about 10-15 s on
2 cores). ``TRAINING_DEBUG_REPORT_DIR`` makes each rank write what it trained
on; ``rank_audit/sitecustomize.py`` records the files each rank writes.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from tests.conftest import synthetic_pairs
from training.artifact import ArtifactInfo
from training.callbacks import ShardingTrainer
from training.cli import main
from training.distributed import REPORT_ENV, DistributedContext, detect, training_device
from training.exceptions import ArgumentsError
from training.predict import Predictor

ROOT = Path(__file__).resolve().parents[2]
AUDIT = Path(__file__).resolve().parent / "rank_audit"
# 36 examples, 6 held out: 30 train in batches of 5, so that each of the two
# ranks gets 3 whole batches an epoch and the shards need no padding. The 6
# validation examples in batches of 2 are sharded unevenly (2 batches and 1).
BATCH = 5
EPOCHS = 2
TEXTS = ["where is my order 4321", "refund please", "hello", "no idea at all"]


def _options(tiny_checkpoint: Path, data: Path, output: Path) -> list[str]:
    return ["intent", "--data", str(data), "--output", str(output), "--base-model",
            str(tiny_checkpoint), "--validation-split", "0.2", "--epochs", str(EPOCHS),
            "--batch-size", str(BATCH), "--eval-batch-size", "2", "--max-length", "32",
            "--learning-rate", "3e-3", "--device", "cpu"]


def torchrun(tmp_path: Path, *argv: str, name: str) -> tuple[subprocess.CompletedProcess,
                                                              Path, Path]:
    """Launches two ranks; returns the process, the report and the audit directories."""
    reports, audit = tmp_path / f"{name}-reports", tmp_path / f"{name}-audit"
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(AUDIT), str(ROOT)]),
        "OMP_NUM_THREADS": "1", REPORT_ENV: str(reports),
        "TRAINING_TEST_AUDIT_DIR": str(audit), "TOKENIZERS_PARALLELISM": "false",
    }
    process = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
         "2", "-m", "training", *argv],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    return process, reports, audit


def rank_reports(directory: Path) -> list[dict]:
    return [json.loads((directory / f"rank-{rank}.json").read_text()) for rank in (0, 1)]


def written(audit: Path, rank: int, under: Path) -> list[tuple[str, Path]]:
    """``(event, path)`` of what ``rank`` wrote, created, renamed or removed under ``under``."""
    log = audit / f"writes-rank-{rank}.txt"
    lines = log.read_text().splitlines() if log.exists() else []
    events = [(event, Path(path)) for event, path in (line.split("\t", 1) for line in lines)]
    return [(event, path) for event, path in events if path == under or under in path.parents]


@pytest.fixture
def data(write_csv) -> Path:
    return write_csv(synthetic_pairs(), name="train.csv")


def test_two_ranks_share_the_data_and_rank_0_alone_writes_the_artifact(
        tmp_path: Path, tiny_checkpoint: Path, data: Path, capsys) -> None:
    single, output = tmp_path / "single", tmp_path / "ddp"
    assert main(_options(tiny_checkpoint, data, single)) == 0
    capsys.readouterr()

    process, reports, audit = torchrun(tmp_path, *_options(tiny_checkpoint, data, output),
                                       name="ddp")

    assert process.returncode == 0, process.stderr[-3000:]
    assert json.loads(process.stdout)["output"] == str(output)  # one summary: rank 0's
    first, second = rank_reports(reports)
    for rank, report in enumerate((first, second)):
        assert (report["rank"], report["world_size"], report["backend"]) == (rank, 2, "gloo")
        assert report["model_wrapper"] == "DistributedDataParallel"
        assert report["steps"] == report["end_step"] == EPOCHS * math.ceil(
            report["train_examples"] / (2 * BATCH))
    everything = set(range(first["train_examples"]))
    assert sorted(first["seen_by_epoch"]) == [str(epoch) for epoch in range(EPOCHS)]
    for epoch, mine in first["seen_by_epoch"].items():
        theirs = second["seen_by_epoch"][epoch]
        # Disjoint halves of the whole training set, every epoch.
        assert len(mine) == len(theirs) == len(everything) // 2
        assert set(mine).isdisjoint(theirs) and set(mine) | set(theirs) == everything
    # Each epoch is shuffled anew (the same order on both ranks, another each epoch).
    assert first["seen_by_epoch"]["0"] != first["seen_by_epoch"]["1"]

    checkpoints = tmp_path / "ddp.checkpoints"
    assert not checkpoints.exists()  # deleted once the artifact is written
    assert ("open", output / "classifier.json") in written(audit, 0, output)
    assert written(audit, 1, output) == []
    # In the checkpoints rank 1 only asks for the folders (Trainer's makedirs on every
    # rank) and writes its random state (torch.save, native, so not seen here).
    assert all(event == "os.mkdir" and (path == checkpoints or (
        path.parent == checkpoints and path.name.startswith("checkpoint-")))
        for event, path in written(audit, 1, checkpoints))

    ours, reference = ArtifactInfo.read(output), ArtifactInfo.read(single)
    assert (ours.task, ours.labels, ours.max_length, ours.pooling) == (
        reference.task, reference.labels, reference.max_length, reference.pooling)
    assert json.loads((output / "classifier.json").read_text()).keys() == json.loads(
        (single / "classifier.json").read_text()).keys()
    assert ours.training_arguments | {"output_dir": ""} == (
        reference.training_arguments | {"output_dir": ""})
    assert ours.data_fingerprint == reference.data_fingerprint
    # The sharded, gathered evaluation that chose the epoch scored the kept model as
    # rank 0 scores it alone on the whole validation set afterwards.
    results = json.loads((output / "results.json").read_text())
    assert results["best_validation_macro_f1"] == pytest.approx(
        results["validation"]["macro_f1"])
    assert sorted(p.name for p in output.iterdir()) == sorted(p.name for p in single.iterdir())
    assert json.loads((output / "results.json").read_text()).keys() == json.loads(
        (single / "results.json").read_text()).keys()
    probabilities = Predictor.load(output, device="cpu").predict_proba(TEXTS)
    assert probabilities.shape == Predictor.load(single, device="cpu").predict_proba(
        TEXTS).shape == (len(TEXTS), len(reference.labels))
    assert torch.allclose(probabilities.sum(dim=1), torch.ones(len(TEXTS)), atol=1e-5)


def test_two_ranks_resume_from_the_step_they_stopped_at(tmp_path: Path, tiny_checkpoint: Path,
                                                       data: Path) -> None:
    output = tmp_path / "model"
    options = _options(tiny_checkpoint, data, output)

    stopped, reports, _ = torchrun(tmp_path, *options, "--stop-after-steps", "2",
                                   name="stopped")

    assert stopped.returncode != 0  # torchrun reports the ranks' exit code 3 as a failure
    assert "stopped after step 2" in stopped.stderr
    checkpoint = tmp_path / "model.checkpoints" / "checkpoint-2"
    assert {"model.safetensors", "optimizer.pt", "scheduler.pt", "trainer_state.json",
            "rng_state_0.pth", "rng_state_1.pth"} <= {p.name for p in checkpoint.iterdir()}
    assert not output.exists()

    resumed, reports, _ = torchrun(tmp_path, *options, "--resume", name="resumed")

    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for report in rank_reports(reports):
        total = EPOCHS * math.ceil(report["train_examples"] / (2 * BATCH))
        assert (report["resumed_from_step"], report["start_step"]) == (2, 2)
        assert (report["steps"], report["end_step"]) == (total - 2, total)
    assert json.loads((output / "results.json").read_text())["resumed_from_step"] == 2
    assert Predictor.load(output, device="cpu").predict_proba(TEXTS).shape[0] == len(TEXTS)
    assert not (tmp_path / "model.checkpoints").exists()


def test_the_launch_is_read_from_torchruns_environment() -> None:
    assert detect({}) == DistributedContext()
    context = detect({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})

    assert (context.rank, context.world_size, context.is_distributed, context.is_main) == (
        1, 2, True, False)
    assert training_device(torch.device("cuda"), context) == torch.device("cuda", 1)
    assert training_device(torch.device("cpu"), context) == torch.device("cpu")
    with pytest.raises(ArgumentsError, match="WORLD_SIZE='two' is invalid"):
        detect({"WORLD_SIZE": "two"})
    with pytest.raises(ArgumentsError, match="inconsistent"):
        detect({"RANK": "2", "WORLD_SIZE": "2"})


def test_the_shards_of_each_rank_come_from_one_order_whatever_its_random_state() -> None:
    # Ranks draw dropout differently, so their global random states drift apart;
    # Trainer's own length-grouped samplers (training and evaluation) read them.
    dataset = SimpleNamespace(features=[{"input_ids": [0] * n} for n in range(3, 23)])
    trainer = SimpleNamespace(train_dataset=dataset, args=SimpleNamespace(
        world_size=2, train_batch_size=2, eval_batch_size=2, gradient_accumulation_steps=1,
        seed=3, data_seed=None))
    orders = []
    for state in (1, 2):
        torch.manual_seed(state)
        orders.append((list(ShardingTrainer._get_train_sampler(trainer)),
                       list(ShardingTrainer._get_eval_sampler(trainer, dataset))))

    assert orders[0] == orders[1]
    assert sorted(orders[0][0]) == sorted(orders[0][1]) == list(range(20))
