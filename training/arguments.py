"""Typed, validated arguments of a training run.

Each dataclass checks its values in ``__post_init__`` and raises
``ArgumentsError`` naming the field, the value and the fix, so that a bad
option fails before any data or model is loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from training.data import FORMATS
from training.exceptions import ArgumentsError
from training.ood import DEFAULT_K, DEFAULT_KNOWN_RECALL, DEFAULT_METHOD, METHODS

TASKS = ("intent", "sentiment")
POOLINGS = ("mean", "cls")
# Where training and serving run: ``auto`` is CUDA when a GPU is visible.
DEVICES = ("auto", "cpu", "cuda")
SENTIMENT_LABELS = ("negative", "neutral", "positive")
# Bounds of ``max_length`` (tokens kept per text). The upper one is the
# encoders' position limit: BERT, MPNet and the packaged MiniLM have 512
# position embeddings, and checking it here fails a run before it loads
# anything, not inside the encoder. The Rasa components use the same bounds.
MAX_LENGTH_MIN = 8
MAX_LENGTH_MAX = 512


def _check(condition: bool, name: str, value: object, fix: str) -> None:
    if not condition:
        raise ArgumentsError(f"{name}={value!r} is invalid: {fix}")


@dataclass(frozen=True)
class DataArguments:
    """Where the labelled texts come from.

    Attributes:
        path: Training data: Rasa NLU YAML (file or directory), CSV, TSV or JSONL.
        data_format: ``auto`` (from the extension), ``rasa``, ``csv``, ``tsv`` or ``jsonl``.
        text_column: Column (CSV/TSV) or key (JSONL) holding the text.
        label_column: Column (CSV/TSV) or key (JSONL) holding the label.
        label_map: Renames labels after loading, e.g. ``{"0": "negative"}``.
        test_path: Optional held-out test set in the same format, evaluated after training.
        validation_split: Share of the training data held out for early stopping,
            model selection, calibration and the thresholds; 0 trains on everything.
        validation_path: A validation set in the same format; replaces the split.
        intensity_column: Column (CSV/TSV) or key (JSONL) with how strongly each
            text expresses its sentiment (0 = neutral; any scale, divided by the
            column's maximum); trains the sentiment intensity head. Rows without a
            value (and files without the column) add nothing to it.
    """

    path: Path
    data_format: str = "auto"
    text_column: str = "text"
    label_column: str = "label"
    label_map: Mapping[str, str] = field(default_factory=dict)
    test_path: Path | None = None
    validation_split: float = 0.1
    validation_path: Path | None = None
    intensity_column: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        for name in ("test_path", "validation_path"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, Path(getattr(self, name)))
        _check(self.data_format in FORMATS, "data_format", self.data_format,
               f"use one of {', '.join(FORMATS)}")
        _check(bool(self.text_column), "text_column", self.text_column, "name a column")
        _check(bool(self.label_column), "label_column", self.label_column, "name a column")
        _check(0.0 <= self.validation_split <= 0.5, "validation_split", self.validation_split,
               "use a fraction between 0 and 0.5")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values, recorded in the artifact's training arguments."""
        return {
            "path": str(self.path),
            "format": self.data_format,
            "text_column": self.text_column,
            "label_column": self.label_column,
            "label_map": dict(self.label_map),
            "test_path": str(self.test_path) if self.test_path else None,
            "validation_split": self.validation_split,
            "validation_path": str(self.validation_path) if self.validation_path else None,
            "intensity_column": self.intensity_column,
        }


@dataclass(frozen=True)
class TrainArguments:
    """How to fine-tune the encoder.

    Defaults are the measured BANKING77 recipe for the packaged MiniLM
    (mean pooling, 4 epochs at 2e-4).

    Attributes:
        task: ``intent`` or ``sentiment`` (labels must then be negative/neutral/positive).
        output_dir: Where the artifact directory is written.
        base_model: A Hugging Face encoder checkpoint directory; ``None`` takes the
            packaged all-MiniLM-L6-v2.
        overwrite: Replace ``output_dir`` when it exists.
        epochs: Passes over the training data (early stopping may end sooner).
        learning_rate: Peak learning rate of AdamW after warmup.
        batch_size: Training examples per step (per device with several GPUs).
        eval_batch_size: Examples per step when evaluating.
        max_length: Tokens kept per text; longer texts are truncated. Between
            ``MAX_LENGTH_MIN`` and ``MAX_LENGTH_MAX``.
        warmup_ratio: Share of the steps spent warming the learning rate up.
        weight_decay: AdamW weight decay.
        dropout: Dropout before the classification head.
        pooling: ``mean`` of the token embeddings or the ``cls`` token.
        early_stopping_patience: Evaluations without improvement before stopping; 0 never stops.
        class_weights: Weight the loss by inverse label frequency (imbalanced data).
        label_smoothing: Share of each target's probability spread over all labels
            (regularises fine-tuning on many labels; 0 is plain cross-entropy).
        seed: Seed of the split, the head's initialisation and the data order.
        device: One of ``DEVICES``: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        bf16: Mixed precision on CUDA; ``None`` turns it on when the GPU supports it.
        num_threads: CPU threads for torch (process-wide, see
            ``training.predict.configure_threads``); ``None`` keeps torch's default.
        typo_augmentation: Probability that a training example is drawn with
            typos (``training.augment``), afresh each epoch; 0 turns it off.
        spelling_correction: Correct unknown words towards the training words
            before the encoder, in training and serving (``training.spelling``).
        freeze_word_embeddings: Keep the encoder's word-embedding matrix as
            pretrained. With a large vocabulary (multilingual-e5's 250,002 pieces
            are 96M of its 118M weights) AdamW otherwise updates every row at
            every step; frozen, words the training data lacks also keep their
            pretrained vectors.
        calibrate: Fit a logit temperature on the validation data.
        out_of_scope: Out-of-scope detector fitted for intent models (one of
            ``training.ood.METHODS``), or ``none``; needs validation data.
        out_of_scope_known_recall: Share of known validation messages the
            detector's threshold accepts.
        out_of_scope_k: Neighbour rank of the ``knn`` detector.
        intensity_weight: Weight of the intensity regression in the loss.
        half_precision: Store the encoder in float16 (a shipped artifact).
    """

    task: str = "intent"
    output_dir: Path = Path("models/intent")
    base_model: str | None = None
    overwrite: bool = False
    epochs: float = 4.0
    learning_rate: float = 2e-4
    batch_size: int = 32
    eval_batch_size: int = 128
    max_length: int = 64
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    dropout: float = 0.1
    pooling: str = "mean"
    early_stopping_patience: int = 2
    class_weights: bool = False
    label_smoothing: float = 0.0
    seed: int = 42
    device: str = "auto"
    bf16: bool | None = None
    num_threads: int | None = None
    typo_augmentation: float = 0.0
    spelling_correction: bool = True
    freeze_word_embeddings: bool = False
    calibrate: bool = True
    out_of_scope: str = DEFAULT_METHOD
    out_of_scope_known_recall: float = DEFAULT_KNOWN_RECALL
    out_of_scope_k: int = DEFAULT_K
    intensity_weight: float = 1.0
    half_precision: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "output_dir", Path(self.output_dir))
        _check(self.task in TASKS, "task", self.task, f"use one of {', '.join(TASKS)}")
        _check(self.epochs > 0, "epochs", self.epochs, "train for more than 0 epochs")
        _check(0 < self.learning_rate < 1, "learning_rate", self.learning_rate,
               "use a small positive value such as 2e-4")
        _check(self.batch_size >= 1, "batch_size", self.batch_size, "use 1 or more")
        _check(self.eval_batch_size >= 1, "eval_batch_size", self.eval_batch_size,
               "use 1 or more")
        _check(MAX_LENGTH_MIN <= self.max_length <= MAX_LENGTH_MAX, "max_length",
               self.max_length, f"use between {MAX_LENGTH_MIN} and {MAX_LENGTH_MAX}, the "
               "encoder's position limit")
        _check(0 <= self.warmup_ratio < 1, "warmup_ratio", self.warmup_ratio,
               "use a fraction in [0, 1)")
        _check(self.weight_decay >= 0, "weight_decay", self.weight_decay, "use 0 or more")
        _check(0 <= self.dropout < 1, "dropout", self.dropout, "use a fraction in [0, 1)")
        _check(self.pooling in POOLINGS, "pooling", self.pooling,
               f"use one of {', '.join(POOLINGS)}")
        _check(self.early_stopping_patience >= 0, "early_stopping_patience",
               self.early_stopping_patience, "use 0 (off) or more")
        _check(0 <= self.label_smoothing < 1, "label_smoothing", self.label_smoothing,
               "use a fraction in [0, 1), such as 0.1")
        _check(self.device in DEVICES, "device", self.device,
               f"use one of {', '.join(DEVICES)}")
        _check(self.num_threads is None or self.num_threads >= 1, "num_threads",
               self.num_threads, "use 1 or more, or leave it unset")
        _check(0 <= self.typo_augmentation <= 1, "typo_augmentation", self.typo_augmentation,
               "use a probability in [0, 1], such as 0.3")
        _check(isinstance(self.spelling_correction, bool), "spelling_correction",
               self.spelling_correction, "use True or False")
        _check(isinstance(self.freeze_word_embeddings, bool), "freeze_word_embeddings",
               self.freeze_word_embeddings, "use True or False")
        _check(self.out_of_scope in (*METHODS, "none"), "out_of_scope", self.out_of_scope,
               f"use one of {', '.join(METHODS)} or none")
        _check(0.5 <= self.out_of_scope_known_recall < 1, "out_of_scope_known_recall",
               self.out_of_scope_known_recall, "use a share in [0.5, 1), such as 0.95")
        _check(self.out_of_scope_k >= 1, "out_of_scope_k", self.out_of_scope_k, "use 1 or more")
        _check(self.intensity_weight >= 0, "intensity_weight", self.intensity_weight,
               "use 0 or more")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values, recorded in the artifact."""
        values = asdict(self)
        values["output_dir"] = str(self.output_dir)
        return values


@dataclass(frozen=True)
class CheckpointArguments:
    """Where and how often a run saves resumable checkpoints, and resuming one.

    Not part of ``TrainArguments`` (nor of the artifact's recorded arguments):
    they change how a run can be interrupted and continued, never the model.

    Attributes:
        directory: Where the checkpoints go; ``None`` is the output directory's
            sibling ``<output>.checkpoints`` (see ``directory_for``).
        every_steps: Also save every N optimizer steps; 0 saves at the end of
            each epoch only (always done: early stopping keeps the best epoch's).
        resume: Continue from the directory's latest checkpoint when there is
            one, after checking that it was written with the same arguments and
            data; without one the run starts from the beginning.
        keep: Keep the checkpoints once the artifact is written (by default a
            finished run deletes them: it has nothing left to resume).
        stop_after_steps: For tests of resuming: save a checkpoint after this
            many optimizer steps and stop as if interrupted (``TrainingStopped``).
    """

    directory: Path | None = None
    every_steps: int = 0
    resume: bool = False
    keep: bool = False
    stop_after_steps: int | None = None

    def __post_init__(self) -> None:
        if self.directory is not None:
            object.__setattr__(self, "directory", Path(self.directory))
        _check(self.every_steps >= 0, "checkpoint_steps", self.every_steps,
               "use 0 (each epoch) or more")
        _check(self.stop_after_steps is None or self.stop_after_steps >= 1, "stop_after_steps",
               self.stop_after_steps, "use 1 or more, or leave it unset")

    def directory_for(self, output_dir: Path) -> Path:
        """The checkpoint directory of a run writing ``output_dir``."""
        if self.directory is not None:
            return self.directory
        # A sibling, not a subdirectory: the output is replaced when the artifact
        # is written, and an existing output needs --overwrite.
        output_dir = output_dir if output_dir.name else output_dir.resolve()
        return output_dir.with_name(output_dir.name + ".checkpoints")
