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
    └── OutputExistsError         the output directory exists and overwrite was not asked

The CLI turns any ``TrainingError`` into a one-line message and exit code 2.
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


class OutputExistsError(TrainingError, FileExistsError):
    """The output directory exists and ``overwrite`` was not set."""
