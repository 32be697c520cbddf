"""The artifact: the one contract between training and serving, and its only owner.

An artifact is a directory::

    config.json, model.safetensors     the fine-tuned encoder (``save_pretrained``)
    tokenizer.json, ...                its tokenizer (``save_pretrained``)
    classifier_head.safetensors        the linear head on the pooled embedding
    intensity_head.safetensors         optional: the sentiment intensity head
    out_of_scope.safetensors           optional: the out-of-scope detector's state
    classifier.json                    ``ArtifactInfo``: labels, max length, pooling,
                                       base model, training arguments, data
                                       fingerprint, metrics, calibration, the
                                       out-of-scope detector and library versions
    results.json, confusion_*.png      the training run's full evaluation report
    onnx/model.int8.onnx, export.json  optional: the ONNX model (``training.export``)

This module holds the layout (file names), reading and writing of
``classifier.json``, the checks a directory must pass before it is served, and
fingerprinting and copying for the Rasa components. Writing and loading the
weights needs torch and lives in ``training.model``.

No torch or transformers here, on purpose: the Rasa components import this
module at import time, which Rasa does for every ``rasa`` command.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from training.exceptions import ArtifactError, NotAModelError, WrongTaskError, first_line

ARTIFACT_FILE = "classifier.json"
HEAD_FILE = "classifier_head.safetensors"
INTENSITY_HEAD_FILE = "intensity_head.safetensors"
OUT_OF_SCOPE_FILE = "out_of_scope.safetensors"
RESULTS_FILE = "results.json"
CONFIG_FILE = "config.json"
# What ``save_pretrained`` may write, newest format first.
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
ONNX_DIR = "onnx"
ONNX_FILE = "model.int8.onnx"
ONNX_FP32_FILE = "model.onnx"
ONNX_EXPORT_FILE = "export.json"
# 2: shared_weights (an artifact without its frozen word embeddings).
FORMAT_VERSION = 2

# How an artifact can be served: ``training.predict.Predictor.load`` and the
# components' ``backend`` option accept these.
BACKENDS = ("auto", "onnx", "torch")


def load_errors() -> tuple[type[BaseException], ...]:
    """What Hugging Face and safetensors raise for unreadable or foreign files."""
    from safetensors import SafetensorError  # the Rust core only: no torch

    return (OSError, ValueError, KeyError, RuntimeError, SafetensorError)


def check_checkpoint(path: str | Path, role: str = "base model") -> Path:
    """Returns the checkpoint directory, or raises ``NotAModelError`` naming what is missing.

    Args:
        path: The directory.
        role: How the message names it (``base model``, ``artifact``).
    """
    path = Path(path)
    if not path.is_dir():
        raise NotAModelError(f"{role} '{path}' is not a directory with a Hugging Face model")
    if not (path / CONFIG_FILE).is_file():
        raise NotAModelError(f"{role} '{path}' is not a model: it has no {CONFIG_FILE}")
    if weights_file(path) is None:
        raise NotAModelError(
            f"{role} '{path}' is not a model: it has no weights "
            f"({' or '.join(WEIGHT_FILES[::2])})"
        )
    return path


def weights_file(directory: str | Path) -> str | None:
    """The name of the checkpoint's weights file, ``None`` when it has none."""
    return next((name for name in WEIGHT_FILES if (Path(directory) / name).is_file()), None)


@dataclass(frozen=True)
class ArtifactInfo:
    """The JSON half of the artifact (``classifier.json``).

    Attributes:
        task: ``intent`` or ``sentiment``; serving checks it.
        labels: Label names by class id.
        max_length: Tokens per text the model was trained with; serving truncates to it.
        pooling: How token embeddings become one vector.
        base_model: The checkpoint the encoder was fine-tuned from.
        training_arguments: The ``TrainArguments`` of the run.
        data_fingerprint: SHA-256 of the training data.
        metrics: Validation (and test) metrics; the full report is in ``results.json``.
        calibration: Fitted on validation data: ``temperature`` (logits are divided
            by it), ``fallback_threshold`` (the calibrated confidence below which a
            prediction should not be trusted) and, for sentiment, ``intensity``
            (isotonic knots ``xs``/``ys`` from the raw head output to the level).
        out_of_scope: The out-of-scope detector (``training.ood``), if fitted.
        spelling: The training word counts of the typo correction in front of the
            encoder (``training.spelling``); empty when it is off.
        shared_weights: Encoder tensors the artifact does not store because they are
            the base checkpoint's, unchanged (frozen word embeddings): name ->
            ``from`` (the checkpoint directory, relative to the artifact) and
            ``sha256`` (of the tensor's float32 bytes). Loading reads them from there
            (``training.model.share_word_embeddings``).
        versions: Library versions that wrote the artifact.
        format_version: Version of this contract.
        created_at: UTC time of writing.
    """

    task: str
    labels: list[str]
    max_length: int
    pooling: str = "mean"
    base_model: str = ""
    training_arguments: dict[str, Any] = field(default_factory=dict)
    data_fingerprint: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)
    out_of_scope: dict[str, Any] = field(default_factory=dict)
    spelling: dict[str, Any] = field(default_factory=dict)
    shared_weights: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    created_at: str = ""

    @classmethod
    def read(cls, directory: str | Path) -> ArtifactInfo:
        """Reads and checks ``classifier.json``; raises ``ArtifactError`` naming the file."""
        path = Path(directory) / ARTIFACT_FILE
        if not path.is_file():
            raise ArtifactError(
                f"'{directory}' is not a classifier artifact: {ARTIFACT_FILE} is missing "
                "(train one with `python -m training intent|sentiment`)"
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ArtifactError(
                f"'{path}' is not valid JSON ({error}); retrain the model") from None
        if not isinstance(data, dict):
            raise ArtifactError(f"'{path}' must hold a JSON object")
        missing = [key for key in ("task", "labels", "max_length") if key not in data]
        if missing:
            raise ArtifactError(f"'{path}' lacks {', '.join(missing)}; retrain the model")
        if data.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
            raise ArtifactError(
                f"'{path}' has format_version {data['format_version']}, newer than this "
                f"code reads ({FORMAT_VERSION}); upgrade the project"
            )
        known = {name for name in cls.__dataclass_fields__}
        info = cls(**{key: value for key, value in data.items() if key in known})
        if not isinstance(info.labels, list) or len(info.labels) < 2:
            raise ArtifactError(f"'{path}': 'labels' must list at least two labels")
        return info

    def write(self, directory: str | Path) -> Path:
        """Writes ``classifier.json`` into ``directory``."""
        path = Path(directory) / ARTIFACT_FILE
        data = asdict(self)
        data["created_at"] = self.created_at or datetime.now(timezone.utc).isoformat()
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path


def check_task(info: ArtifactInfo, expected_task: str | None, directory: str | Path) -> None:
    """Refuses an artifact of another task: the one check every serving path makes.

    Args:
        info: The artifact's ``classifier.json``.
        expected_task: ``intent`` or ``sentiment``; ``None`` accepts either.
        directory: The artifact, for the message.

    Raises:
        WrongTaskError: ``info.task`` is not ``expected_task``; it carries both, so
            that a caller can word the refusal its own way.
    """
    if expected_task is not None and info.task != expected_task:
        raise WrongTaskError(
            f"'{directory}' holds a {info.task} classifier, not a {expected_task} one; "
            f"point to an artifact of `python -m training {expected_task}`",
            found=info.task, expected=expected_task,
        )


def check_artifact_info(directory: str | Path, expected_task: str | None) -> ArtifactInfo:
    """``classifier.json`` of ``directory``, refused when it is not of ``expected_task``."""
    info = ArtifactInfo.read(directory)
    check_task(info, expected_task, directory)
    return info


def onnx_path(directory: str | Path, *, quantized: bool = True) -> Path:
    """Where an artifact's ONNX model is (or would be)."""
    return Path(directory) / ONNX_DIR / (ONNX_FILE if quantized else ONNX_FP32_FILE)


def load_ood_tensors(directory: str | Path) -> dict[str, Any]:
    """The out-of-scope detector's arrays (NumPy), or ``{}`` when there are none."""
    from safetensors.numpy import load_file

    path = Path(directory) / OUT_OF_SCOPE_FILE
    if not path.is_file():
        return {}
    try:
        return load_file(str(path))
    except load_errors() as error:
        raise ArtifactError(f"'{path}' cannot be loaded: {first_line(error)}") from None


def artifact_fingerprint(directory: str | Path) -> str:
    """SHA-256 over every file of an artifact (names and content).

    Used in the components' ``fingerprint_addon`` so that a retrained artifact
    at the same path is not served from Rasa's training cache.
    """
    directory = Path(directory)
    digest = hashlib.sha256()
    if not directory.is_dir():
        return f"missing:{directory}"
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(directory)).encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def copy_artifact(source: Path, target: Path) -> None:
    """Copies an artifact's files into ``target`` (Rasa's model storage directory).

    Hidden directories (``.cache`` of Hugging Face, ...) are not part of the artifact.
    """
    for path in source.iterdir():
        if path.is_file():
            shutil.copy2(path, target / path.name)
        elif path.is_dir() and not path.name.startswith("."):
            shutil.copytree(path, target / path.name, dirs_exist_ok=True)
