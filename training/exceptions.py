"""Errors raised by the ``training`` package.

Hierarchy (catch the base class to handle every expected failure)::

    TrainingError                 base class: a user-facing problem, never a bug
    ├── ArgumentsError            an option has a value that cannot work
    ├── DataError                 the training or evaluation data cannot be used
    │   ├── DataFileNotFoundError the data file or directory does not exist
    │   ├── EmptyDatasetError     no usable example was found
    │   ├── SingleLabelError      fewer than two distinct labels
    │   └── UnknownColumnError    a column or key named in the options is missing
    ├── ModelError                a checkpoint or artifact cannot be used
    │   ├── NotAModelError        a directory that holds no Hugging Face model
    │   └── ArtifactError         an artifact is missing, truncated or of the wrong kind
    │       └── WrongTaskError    an artifact of another task (intent instead of sentiment)
    ├── OutputExistsError         the output directory exists and overwrite was not asked
    └── CheckpointError           checkpoints that cannot be resumed, or would be lost
        └── TrainingStopped       stopped on purpose after N steps (--stop-after-steps)

The CLI turns any ``TrainingError`` into a one-line message and exit code 2;
``first_line`` is how every layer shortens a third-party error for such a message.
"""

from __future__ import annotations


class TrainingError(Exception):
    """Base class of every expected, user-facing failure in ``training``."""


class ArgumentsError(TrainingError, ValueError):
    """An argument has a value that cannot work; the message names the fix."""


class DataError(TrainingError):
    """The data cannot be used for training or evaluation."""


class DataFileNotFoundError(DataError, FileNotFoundError):
    """The data file or directory does not exist."""


class EmptyDatasetError(DataError):
    """No usable (non-empty, labelled) example was found."""


class SingleLabelError(DataError):
    """A classifier needs at least two distinct labels."""


class UnknownColumnError(DataError, KeyError):
    """A column (CSV/TSV) or key (JSONL) named in the options is missing."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ModelError(TrainingError):
    """A checkpoint or artifact cannot be used."""


class NotAModelError(ModelError):
    """A directory that does not hold a Hugging Face model checkpoint."""


class ArtifactError(ModelError):
    """A trained artifact is missing, truncated or of the wrong kind."""


class WrongTaskError(ArtifactError):
    """An artifact of another task than the one asked for.

    Attributes:
        found: The artifact's task.
        expected: The task asked for.
    """

    # Defaults keep it picklable (exceptions are rebuilt from ``args`` alone).
    def __init__(self, message: str, *, found: str = "", expected: str = "") -> None:
        super().__init__(message)
        self.found = found
        self.expected = expected


class OutputExistsError(TrainingError, FileExistsError):
    """The output directory exists and ``overwrite`` was not set."""


class CheckpointError(TrainingError):
    """Checkpoints that cannot be resumed (other arguments or data), or that a
    fresh run would silently discard."""


class TrainingStopped(CheckpointError):
    """Training stopped on purpose after a checkpoint (``--stop-after-steps``),
    as if it had been interrupted; ``--resume`` continues it.

    Attributes:
        step: The optimizer step of the checkpoint it left.
        checkpoint: That checkpoint's directory.
    """

    def __init__(self, message: str, *, step: int = 0, checkpoint: str = "") -> None:
        super().__init__(message)
        self.step = step
        self.checkpoint = checkpoint


def first_line(error: BaseException) -> str:
    """The first line of an error's message, or its type name when it has none.

    Hugging Face, safetensors and tokenizers put whole tracebacks or file dumps
    in their messages; one line is what a user-facing message can carry.
    """
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
