"""What ``training.fitting`` adds to Hugging Face's ``Trainer``: the sampler of
data-parallel runs, step checkpoints, stopping after N steps, the rank report.

Imports transformers at import time, so ``fitting`` imports it only when it fits.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainerCallback
from transformers.trainer_pt_utils import get_length_grouped_indices

from training.exceptions import TrainingStopped


class EpochLengthGroupedSampler(torch.utils.data.Sampler[int]):
    """Length-grouped order (as ``Trainer``'s ``group_by_length``), seeded per epoch.

    Every rank draws the same order from ``seed + epoch``, whatever its own
    random state has become (dropout draws differ between ranks, whose batches
    differ in length), and ``Trainer``'s accelerate data loader then gives rank
    r the batches r, r + N, r + 2N, ... of it: the shards of one epoch are
    disjoint and together cover the data, as with ``DistributedSampler``. The
    data loader calls ``set_epoch`` at each epoch, and a resumed run skips the
    batches of that same order it already trained on.

    Args:
        lengths: Tokens of each example.
        batch_size: Examples per batch per rank (times gradient accumulation).
        seed: Base seed of the order.
    """

    def __init__(self, lengths: list[int], batch_size: int, seed: int) -> None:
        super().__init__()
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Selects the order of ``epoch`` (called by the data loader)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):  # noqa: ANN204 - an iterator of ints, as Sampler's
        generator = torch.Generator()
        generator.manual_seed(self.seed + self.epoch)
        return iter(get_length_grouped_indices(self.lengths, self.batch_size,
                                               generator=generator))


def example_lengths(dataset: Any) -> list[int]:
    """Tokens of each example of a ``TokenizedDataset`` (or of a ``RecordingDataset``)."""
    return [len(item["input_ids"]) for item in dataset.features]


class ShardingTrainer(Trainer):
    """``Trainer`` with ``EpochLengthGroupedSampler`` orders under ``torchrun``, for
    training and evaluation, and an optimizer state that resumes on CPU ranks.

    A single process keeps ``Trainer``'s own samplers, so that its runs stay
    exactly as before (they draw from the global random state).
    """

    def _get_train_sampler(self, train_dataset: Any = None) -> torch.utils.data.Sampler | None:
        if self.args.world_size <= 1:
            return super()._get_train_sampler(train_dataset)
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        return EpochLengthGroupedSampler(
            example_lengths(dataset),
            self.args.train_batch_size * self.args.gradient_accumulation_steps, seed)

    def _get_eval_sampler(self, eval_dataset: Any) -> torch.utils.data.Sampler | None:
        # ``group_by_length`` shuffles evaluation too, from each rank's own random
        # state: the ranks' shards would then overlap and miss examples, and the
        # gathered metrics (early stopping, the best epoch) be wrong. One fixed
        # order, the same on every rank, shards it exactly.
        if self.args.world_size <= 1 or eval_dataset is None:
            return super()._get_eval_sampler(eval_dataset)
        return EpochLengthGroupedSampler(example_lengths(eval_dataset),
                                         self.args.eval_batch_size, self.args.seed)

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        # Under torchrun on CPUs, Trainer maps the optimizer state onto its
        # device, ``cpu:<rank>``, which torch.load cannot restore to (transformers
        # 5.3); the CPU itself is the right place there.
        if checkpoint is None or self.args.world_size <= 1 or self.args.device.type != "cpu":
            return super()._load_optimizer_and_scheduler(checkpoint)
        from transformers.trainer import OPTIMIZER_NAME, SCHEDULER_NAME

        optimizer, scheduler = Path(checkpoint, OPTIMIZER_NAME), Path(checkpoint, SCHEDULER_NAME)
        if optimizer.is_file() and scheduler.is_file():
            self.optimizer.load_state_dict(
                torch.load(optimizer, map_location="cpu", weights_only=True))
            self.lr_scheduler.load_state_dict(torch.load(scheduler, weights_only=True))
        return None


class StepCheckpoints(TrainerCallback):
    """Saves a resumable checkpoint every ``every`` optimizer steps, besides the
    end-of-epoch ones."""

    def __init__(self, every: int) -> None:
        self.every = every

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if self.every and state.global_step % self.every == 0:
            control.should_save = True
        return control


class StopAfterSteps(TrainerCallback):
    """Saves a checkpoint after ``steps`` optimizer steps and raises
    ``TrainingStopped``, as if the run had been killed right after it.

    Raising (rather than ``should_training_stop``) leaves no trace a kill would
    not: ``Trainer`` would otherwise evaluate and save once more as the epoch ends.
    """

    def __init__(self, steps: int) -> None:
        self.steps = steps

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if state.global_step >= self.steps:
            control.should_save = True
        return control

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if state.global_step < self.steps:
            return control
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.barrier()  # every rank's part of the checkpoint is written
        checkpoint = f"{args.output_dir}/checkpoint-{state.global_step}"
        raise TrainingStopped(
            f"stopped after step {state.global_step} as asked (--stop-after-steps), leaving "
            f"{checkpoint}; continue with --resume", step=state.global_step,
            checkpoint=checkpoint)


class RecordingDataset(torch.utils.data.Dataset):
    """A training dataset that records which examples this rank was served, by epoch.

    Used only for the rank report (``training.distributed.REPORT_ENV``).

    Args:
        dataset: The ``TokenizedDataset`` it serves.
    """

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset
        self.features = dataset.features
        self.epoch: int | None = None  # None: not training (the sampler reading lengths)
        self.seen: dict[int, list[int]] = defaultdict(list)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.dataset[index]
        if self.epoch is not None:
            self.seen[self.epoch].append(int(index))
        return item


class Recorder(TrainerCallback):
    """Tells a ``RecordingDataset`` the epoch, and counts this process's steps.

    Attributes:
        start_step: The global step training began at (after a resume, the checkpoint's).
        steps: Optimizer steps this process ran.
    """

    def __init__(self, dataset: RecordingDataset) -> None:
        self.dataset = dataset
        self.start_step: int | None = None
        self.steps = 0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        self.start_step = state.global_step
        return control

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        self.dataset.epoch = int(state.epoch or 0)
        return control

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        self.steps += 1
        return control

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        self.dataset.epoch = None
        return control

    def report(self, trainer: Any) -> dict[str, Any]:
        """What this rank trained on, for ``training.distributed.write_report``."""
        seen = {str(epoch): indices for epoch, indices in sorted(self.dataset.seen.items())}
        return {
            "train_examples": len(self.dataset),
            "samples": sum(len(indices) for indices in seen.values()),
            "seen_by_epoch": seen,
            "start_step": self.start_step,
            "steps": self.steps,
            "end_step": trainer.state.global_step,
            "model_wrapper": type(trainer.model_wrapped).__name__,
        }
