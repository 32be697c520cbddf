"""Data-parallel training under ``torchrun``: which process this is, and the process group.

``torchrun --nproc_per_node N -m training intent ...`` starts N copies of the
same command with ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` set. What each
part of a run does then:

- ``ClassifierTrainer.run`` calls ``setup`` first: it joins the process group
  (``gloo`` on the CPU, ``nccl`` on CUDA with one GPU per local rank) and turns
  the other ranks' logging down to warnings, without progress bars.
- ``training.fitting`` runs Hugging Face's ``Trainer`` on that group: it wraps
  the model in ``DistributedDataParallel`` (gradients averaged over the ranks)
  and gives each rank every N-th batch of one order that all ranks draw alike,
  seeded with the seed plus the epoch (``EpochLengthGroupedSampler``: what
  ``DistributedSampler`` and its ``set_epoch`` do, on length-grouped batches).
  Its evaluations during training (early stopping, the best epoch) are
  sharded the same way (one fixed order) and gathered, so every rank sees the
  metrics of the whole validation set and stops alike.
- After fitting, rank 0 alone calibrates, fits the out-of-scope detector,
  evaluates and writes the artifact (and prints the summary): these are cheap
  next to fitting, and one writer cannot race another. The other ranks wait
  for it in a barrier, then every rank leaves the process group.

A single process (no ``WORLD_SIZE``, or 1) takes none of these paths.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch

from training.exceptions import ArgumentsError, first_line

logger = logging.getLogger(__name__)

# Per-rank JSON of what each rank trained on (rank, samples, steps), written
# when this names a directory: for tests and for checking a launch by hand.
REPORT_ENV = "TRAINING_DEBUG_REPORT_DIR"
# How long a rank waits in a collective: the other ranks wait in the final
# barrier while rank 0 evaluates and saves, which on a large test set on the
# CPU takes minutes. torchrun ends every rank when one fails, so a long wait
# never outlives a crash.
GROUP_TIMEOUT = timedelta(hours=1)


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in a ``torchrun`` launch.

    Attributes:
        rank: Global rank (0 writes the artifact and logs).
        local_rank: Rank on this machine (the GPU it uses).
        world_size: Number of processes; 1 without ``torchrun``.
        backend: ``gloo`` or ``nccl`` once joined; ``None`` in a single process.
        owns_group: Whether ``setup`` created the process group (and
            ``teardown`` must destroy it), rather than a caller that had.
    """

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    backend: str | None = None
    owns_group: bool = False

    @property
    def is_distributed(self) -> bool:
        """More than one process trains."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """The process that writes the artifact, logs and prints."""
        return self.rank == 0


def _env_int(environ: Mapping[str, str], name: str, default: int) -> int:
    value = environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ArgumentsError(
            f"{name}={value!r} is invalid: torchrun sets it to a number; launch with "
            "`torchrun --nproc_per_node N -m training ...`"
        ) from None


def detect(environ: Mapping[str, str] | None = None) -> DistributedContext:
    """The launch as ``torchrun`` describes it in the environment (nothing is joined)."""
    environ = os.environ if environ is None else environ
    world_size = _env_int(environ, "WORLD_SIZE", 1)
    rank = _env_int(environ, "RANK", 0)
    local_rank = _env_int(environ, "LOCAL_RANK", rank)
    if world_size < 1 or not 0 <= rank < world_size:
        raise ArgumentsError(f"RANK={rank} and WORLD_SIZE={world_size} are inconsistent; "
                             "launch with `torchrun --nproc_per_node N -m training ...`")
    return DistributedContext(rank=rank, local_rank=local_rank, world_size=world_size)


def training_device(device: torch.device, context: DistributedContext) -> torch.device:
    """The device this rank trains on: its own GPU (by local rank) under torchrun."""
    if context.is_distributed and device.type == "cuda":
        return torch.device("cuda", context.local_rank)
    return device


def setup(device: torch.device) -> DistributedContext:
    """Joins the ``torchrun`` process group, if launched so; a no-op otherwise.

    Args:
        device: Where training runs; CUDA takes ``nccl`` and the local rank's
            GPU, the CPU ``gloo``.

    Raises:
        ArgumentsError: the environment names a launch that cannot be joined
            (no ``MASTER_ADDR``, fewer GPUs than local ranks).
    """
    context = detect()
    if not context.is_distributed:
        return context
    import torch.distributed as dist

    if dist.is_initialized():  # a caller's own launch: use its group, leave it to it
        return replace(context, backend=str(dist.get_backend()))
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        if context.local_rank >= torch.cuda.device_count():
            raise ArgumentsError(
                f"LOCAL_RANK={context.local_rank} needs a GPU that is not there "
                f"({torch.cuda.device_count()} visible); use --nproc_per_node "
                f"{torch.cuda.device_count()} or fewer"
            )
        torch.cuda.set_device(context.local_rank)
    try:
        dist.init_process_group(backend, timeout=GROUP_TIMEOUT)
    except (ValueError, RuntimeError) as error:
        raise ArgumentsError(
            f"cannot join the {backend} process group of rank {context.rank} of "
            f"{context.world_size}: {first_line(error)}; launch with `torchrun`"
        ) from None
    if not context.is_main:
        quiet_replica()
    logger.info("rank %d of %d joined the %s process group", context.rank,
                context.world_size, backend)
    return replace(context, backend=backend, owns_group=True)


def quiet_replica() -> None:
    """Warnings only, and no progress bars, on the ranks other than 0."""
    from transformers.utils import logging as hf_logging

    logging.getLogger("training").setLevel(logging.WARNING)
    hf_logging.set_verbosity_warning()
    hf_logging.disable_progress_bar()


def barrier(context: DistributedContext) -> None:
    """Waits until every rank gets here (no-op in a single process)."""
    import torch.distributed as dist

    if context.is_distributed and dist.is_initialized():
        if context.backend == "nccl":
            dist.barrier(device_ids=[context.local_rank])
        else:
            dist.barrier()


def teardown(context: DistributedContext) -> None:
    """Leaves the process group that ``setup`` created (no-op otherwise)."""
    import torch.distributed as dist

    if context.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def report_dir() -> Path | None:
    """The directory ``REPORT_ENV`` names, or ``None`` (no report is written)."""
    value = os.environ.get(REPORT_ENV, "").strip()
    return Path(value) if value else None


def write_report(context: DistributedContext, report: Mapping[str, Any]) -> Path | None:
    """Writes this rank's ``rank-<N>.json`` into ``report_dir()``, when set."""
    directory = report_dir()
    if directory is None:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"rank-{context.rank}.json"
    payload = {"rank": context.rank, "world_size": context.world_size,
               "backend": context.backend, **report}
    path.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    return path
