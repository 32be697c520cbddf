"""Resumable checkpoints: where they are, which run wrote them, which one to resume.

A run's checkpoint directory (``<output>.checkpoints`` unless ``--checkpoint-dir``
names another) holds::

    run.json              what the run was: its arguments, data options and
                          fingerprints, number of processes, and their hash
    checkpoint-<step>/    Hugging Face Trainer's checkpoint after that optimizer step:
        model.safetensors     the classifier's weights
        optimizer.pt, scheduler.pt   AdamW's moments, the learning-rate schedule
        rng_state*.pth        Python, NumPy, torch (and CUDA) random states, per rank
        trainer_state.json    epoch, step, best metric so far, early-stopping count

Checkpoints are written at the end of every epoch (``Trainer`` needs them to
keep the best epoch) and, with ``--checkpoint-steps N``, every N steps; the two
newest and the best are kept. ``--resume`` continues from the newest
(``trainer_state.json`` is written last, so a checkpoint without it is not
complete), after checking that ``run.json`` matches the new run: any other
argument or data is refused with a message naming each difference. A finished
run deletes the directory unless ``--keep-checkpoints``.

Resuming restores the weights, optimizer, schedule, step and random states,
and skips the batches of the interrupted epoch already trained on. Under
``torchrun`` the order of an epoch depends on the seed and the epoch alone, so
those are exactly the batches skipped; a single process keeps Hugging Face's
sampler, whose order comes from the global random state, so the rest of the
interrupted epoch is drawn from a new order (some examples of that epoch are
seen twice, others not at all).

No torch here: this module decides and writes JSON; ``training.fitting`` trains.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from training.arguments import CheckpointArguments, DataArguments, TrainArguments
from training.exceptions import CheckpointError

logger = logging.getLogger(__name__)

RUN_FILE = "run.json"
STATE_FILE = "trainer_state.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
RUN_FORMAT = 1
# Arguments that may change between an interrupted run and its resumption:
# where the artifact goes, replacing it, and CPU threads change nothing trained.
UNCOMPARED_ARGUMENTS = ("output_dir", "overwrite", "num_threads")
# Data options compared on resume; the files' paths are not (a moved file with
# the same content resumes), their content is, through the fingerprints.
COMPARED_DATA_OPTIONS = ("format", "text_column", "label_column", "label_map",
                         "validation_split", "intensity_column")


def _canonical(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists, keys strings)."""
    return json.loads(json.dumps(value, sort_keys=True))


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True)
class RunIdentity:
    """What a resumed run must share with the run that wrote the checkpoints.

    Attributes:
        arguments: ``TrainArguments`` less ``UNCOMPARED_ARGUMENTS``.
        data: The data options of ``COMPARED_DATA_OPTIONS``.
        fingerprints: SHA-256 of the training data, the validation set and the
            intensity targets (when any), by name.
        world_size: Number of processes (the batches of a step, the random
            states saved per rank).
    """

    arguments: dict[str, Any]
    data: dict[str, Any]
    fingerprints: dict[str, str]
    world_size: int = 1

    def to_json(self) -> dict[str, Any]:
        """The JSON object of ``run.json``, with its hash."""
        values = {"arguments": self.arguments, "data": self.data,
                  "fingerprints": self.fingerprints, "world_size": self.world_size}
        digest = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()
        return {"format": RUN_FORMAT, **values, "hash": digest}

    @property
    def digest(self) -> str:
        """SHA-256 of the arguments, data and world size."""
        return self.to_json()["hash"]

    @classmethod
    def from_json(cls, values: Mapping[str, Any]) -> RunIdentity:
        """Reads ``run.json``'s object (``KeyError``/``TypeError`` when malformed)."""
        return cls(arguments=dict(values["arguments"]), data=dict(values["data"]),
                   fingerprints=dict(values["fingerprints"]),
                   world_size=int(values["world_size"]))

    def differences(self, saved: RunIdentity) -> list[str]:
        """Each way this run differs from ``saved``, as ``name saved -> this``."""
        found = []
        for group, mine, theirs in (("", self.arguments, saved.arguments),
                                    ("data ", self.data, saved.data)):
            for key in sorted(set(mine) | set(theirs)):
                if mine.get(key) != theirs.get(key):
                    found.append(f"{group}{key} {_short(theirs.get(key))} -> "
                                 f"{_short(mine.get(key))}")
        for name in sorted(set(self.fingerprints) | set(saved.fingerprints)):
            old, new = saved.fingerprints.get(name), self.fingerprints.get(name)
            if old != new:
                found.append(f"{name} (fingerprint {(old or 'none')[:12]} -> "
                             f"{(new or 'none')[:12]})")
        if self.world_size != saved.world_size:
            found.append(f"processes (torchrun world size) {saved.world_size} -> "
                         f"{self.world_size}")
        return found


def fingerprint_mapping(values: Mapping[str, float]) -> str:
    """SHA-256 of a mapping such as the intensity targets, independent of order."""
    return hashlib.sha256(json.dumps(sorted(values.items())).encode()).hexdigest()


def identify(args: TrainArguments, data_args: DataArguments, *, training: str,
             validation: str, intensities: Mapping[str, float] | None = None,
             world_size: int = 1) -> RunIdentity:
    """The identity of a run.

    Args:
        args: How it trains.
        data_args: Its data options.
        training: Fingerprint of the cleaned training data (before the split).
        validation: Fingerprint of the validation set (split off or given).
        intensities: The intensity targets, when there are any.
        world_size: Number of processes.
    """
    arguments = {key: value for key, value in args.to_dict().items()
                 if key not in UNCOMPARED_ARGUMENTS}
    data_options = data_args.to_dict()
    fingerprints = {"training data": training, "validation data": validation}
    if intensities:
        fingerprints["intensity targets"] = fingerprint_mapping(intensities)
    return RunIdentity(
        arguments=_canonical(arguments),
        data=_canonical({key: data_options[key] for key in COMPARED_DATA_OPTIONS}),
        fingerprints=fingerprints, world_size=world_size)


def complete_checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of each complete checkpoint in ``directory``, oldest first."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = _CHECKPOINT.match(path.name)
        if match and path.is_dir() and (path / STATE_FILE).is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


@dataclass(frozen=True)
class CheckpointPlan:
    """What a run does with its checkpoint directory (``plan`` decides it).

    Attributes:
        directory: Where the checkpoints are written.
        identity: The run's identity, written to ``run.json``.
        every_steps: Save every N optimizer steps too; 0: each epoch only.
        resume_from: The checkpoint to continue from; ``None`` starts afresh.
        resume_step: Its optimizer step.
        start_fresh: The directory is (re)created empty before training.
        keep: Keep the directory after the artifact is written.
        stop_after_steps: Stop (``TrainingStopped``) after this many steps.
        notes: What rank 0 logs about the decision when it prepares the directory.
    """

    directory: Path
    identity: RunIdentity
    every_steps: int = 0
    resume_from: Path | None = None
    resume_step: int | None = None
    start_fresh: bool = True
    keep: bool = False
    stop_after_steps: int | None = None
    notes: tuple[str, ...] = ()


def _read_run(directory: Path) -> RunIdentity:
    path = directory / RUN_FILE
    try:
        return RunIdentity.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise CheckpointError(
            f"cannot resume from '{directory}': it has no {RUN_FILE} saying which run wrote "
            "it; start over with --overwrite (without --resume)") from None
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise CheckpointError(
            f"cannot resume from '{directory}': {path.name} is unreadable ({error}); start "
            "over with --overwrite (without --resume)") from None


def plan(options: CheckpointArguments, output_dir: Path, identity: RunIdentity, *,
         overwrite: bool) -> CheckpointPlan:
    """Decides, reading only, whether the run resumes, starts afresh or is refused.

    Every rank calls it on the same files (before rank 0 changes anything).

    Args:
        options: The checkpoint options.
        output_dir: The artifact directory (the default checkpoint directory is beside it).
        identity: This run's identity.
        overwrite: ``--overwrite``: discard the checkpoints of an unfinished run.

    Raises:
        CheckpointError: ``--resume`` with checkpoints of other arguments or data
            (the message names each difference), or checkpoints of an unfinished
            run that neither ``--resume`` nor ``--overwrite`` says what to do with.
    """
    directory = options.directory_for(output_dir)
    base = CheckpointPlan(directory, identity, every_steps=options.every_steps,
                          keep=options.keep, stop_after_steps=options.stop_after_steps)
    if directory.exists() and not directory.is_dir():
        raise CheckpointError(f"checkpoint directory '{directory}' is a file; remove it or "
                              "pass another --checkpoint-dir")
    checkpoints = complete_checkpoints(directory)
    started = (directory / RUN_FILE).is_file() or bool(checkpoints)
    if not options.resume:
        if started and not overwrite:
            latest = f"latest: step {checkpoints[-1][0]}" if checkpoints else "no step yet"
            raise CheckpointError(
                f"'{directory}' holds the checkpoints of an unfinished run ({latest}); pass "
                "--resume to continue it, or --overwrite to start over")
        return base
    if not started:
        return replace(base, notes=(f"nothing to resume in '{directory}': training from the "
                                    "start",))
    differences = identity.differences(_read_run(directory))
    if differences:
        raise CheckpointError(
            f"cannot resume from '{directory}': this run differs from the one that wrote it: "
            f"{'; '.join(differences)}. Resume with the same arguments and data, or start over "
            "with --overwrite (without --resume)")
    if not checkpoints:
        return replace(base, start_fresh=False, notes=(
            f"no complete checkpoint in '{directory}' yet: training from the start",))
    step, path = checkpoints[-1]
    return replace(base, start_fresh=False, resume_from=path, resume_step=step)


def prepare(checkpoint_plan: CheckpointPlan) -> None:
    """Rank 0: empties the directory for a fresh run and writes ``run.json``."""
    directory = checkpoint_plan.directory
    for note in checkpoint_plan.notes:
        logger.info(note)
    if checkpoint_plan.start_fresh and directory.exists():
        logger.info("discarding the checkpoints in '%s' (--overwrite)", directory)
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if checkpoint_plan.resume_from is not None:
        logger.info("resuming from %s (step %d)", checkpoint_plan.resume_from,
                    checkpoint_plan.resume_step)
    (directory / RUN_FILE).write_text(
        json.dumps(checkpoint_plan.identity.to_json(), indent=2) + "\n", encoding="utf-8")


def remove(checkpoint_plan: CheckpointPlan) -> None:
    """Rank 0, once the artifact is written: deletes the checkpoints (a finished
    run has nothing to resume), unless asked to keep them."""
    if checkpoint_plan.keep:
        logger.info("checkpoints kept in '%s'", checkpoint_plan.directory)
        return
    shutil.rmtree(checkpoint_plan.directory, ignore_errors=True)
