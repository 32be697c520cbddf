"""Inference on a trained artifact: the API the Rasa components call."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from training.model import ArtifactInfo, EncoderClassifier, load_artifact

logger = logging.getLogger(__name__)

# A BERT word piece covers at least one character: cutting far beyond
# max_length characters keeps a 50,000-character message cheap to tokenize.
_CHARS_PER_TOKEN_BOUND = 16


@dataclass(frozen=True)
class Prediction:
    """One text's classification, as plain Python values.

    Attributes:
        label: The most likely label.
        confidence: Its probability.
        ranking: Every ``(label, probability)``, most likely first.
    """

    label: str
    confidence: float
    ranking: list[tuple[str, float]]

    def scores(self) -> dict[str, float]:
        """Probability by label."""
        return dict(self.ranking)


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` is CUDA when a GPU is visible, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class Predictor:
    """Loads an artifact once and classifies texts in batches.

    Safe to call from several threads: tokenization (whose fast tokenizer
    keeps mutable truncation state) is serialised, the forward pass is not.

    Args:
        model: The classifier in eval mode.
        tokenizer: Its tokenizer.
        info: The artifact's metadata.
        device: Where the model runs.
    """

    def __init__(self, model: EncoderClassifier, tokenizer: Any, info: ArtifactInfo,
                 device: torch.device) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.info = info
        self.device = device
        self.labels = list(info.labels)
        self.max_length = int(info.max_length)
        self._tokenizer_lock = threading.Lock()

    @classmethod
    def load(cls, directory: str | Path, *, device: str = "auto",
             expected_task: str | None = None) -> Predictor:
        """Loads ``directory`` (see ``training.model``) onto ``device``."""
        resolved = resolve_device(device)
        model, tokenizer, info = load_artifact(directory, device=resolved,
                                               expected_task=expected_task)
        return cls(model, tokenizer, info, resolved)

    def _encode(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        limit = self.max_length * _CHARS_PER_TOKEN_BOUND
        texts = [text[:limit] for text in texts]
        with self._tokenizer_lock:
            batch = self.tokenizer(texts, padding=True, truncation=True,
                                   max_length=self.max_length, return_tensors="pt")
        return {key: value.to(self.device) for key, value in batch.items()
                if key in ("input_ids", "attention_mask", "token_type_ids")}

    @torch.inference_mode()
    def predict_proba(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """Probabilities ``(len(texts), n_labels)`` on the CPU, in the order given.

        Texts are sorted by length so that each batch pads little.
        """
        texts = ["" if text is None else str(text) for text in texts]
        probabilities = torch.empty((len(texts), len(self.labels)), dtype=torch.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            indices = order[start:start + batch_size]
            logits = self.model(**self._encode([texts[i] for i in indices]))["logits"]
            probabilities[indices] = torch.softmax(logits.float(), dim=-1).cpu()
        return probabilities

    def predict(self, texts: Sequence[str], batch_size: int = 64) -> list[Prediction]:
        """Classifies ``texts``; empty or whitespace-only texts are classified too."""
        results = []
        for row in self.predict_proba(texts, batch_size=batch_size).tolist():
            ranking = sorted(zip(self.labels, row), key=lambda pair: pair[1], reverse=True)
            ranking = [(label, float(score)) for label, score in ranking]
            results.append(Prediction(ranking[0][0], ranking[0][1], ranking))
        return results
