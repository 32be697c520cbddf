"""Inference on a trained artifact: the API the Rasa components call."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.artifact import (
    BACKENDS,
    ArtifactInfo,
    check_artifact_info,
    load_ood_tensors,
    onnx_path,
)
from training.calibration import apply_isotonic, softmax
from training.exceptions import ArtifactError
from training.model import EncoderClassifier, load_artifact, load_tokenizer
from training.ood import OutOfScopeDetector
from training.spelling import SpellingNormaliser, tokenizer_words

logger = logging.getLogger(__name__)

# A BERT word piece covers at least one character: cutting far beyond
# max_length characters keeps a 50,000-character message cheap to tokenize.
_CHARS_PER_TOKEN_BOUND = 16


@dataclass(frozen=True)
class Prediction:
    """One text's classification, as plain Python values.

    Attributes:
        label: The most likely label.
        confidence: Its (calibrated) probability.
        ranking: Every ``(label, probability)``, most likely first.
        intensity: How strongly the text expresses its sentiment, 0 (neutral) to 1
            (strongest), calibrated; ``None`` without an intensity head.
        unknown_score: The out-of-scope detector's score; ``None`` without one.
        unknown: Whether that score is above the detector's threshold.
    """

    label: str
    confidence: float
    ranking: list[tuple[str, float]]
    intensity: float | None = None
    unknown_score: float | None = None
    unknown: bool = False

    def scores(self) -> dict[str, float]:
        """Probability by label."""
        return dict(self.ranking)


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` is CUDA when a GPU is visible, else the CPU.

    Args:
        device: One of ``training.arguments.DEVICES``.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def configure_threads(num_threads: int | None) -> None:
    """Sets how many CPU threads torch uses, for the whole process.

    ``torch.set_num_threads`` is process-wide: it changes every model in the
    process (the other component's, a training run's), not one predictor. Call
    it once at start-up; the last call wins.

    Args:
        num_threads: Threads for torch's intra-op pool; ``None`` (or 0) keeps
            the library's default. One is fastest for single messages on a busy
            server (measured: 11 ms against 21 ms with two on 2 cores).
    """
    if num_threads:
        torch.set_num_threads(num_threads)


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

    def __init__(self, model: EncoderClassifier | None, tokenizer: Any, info: ArtifactInfo,
                 device: torch.device, session: Any = None,
                 detector: OutOfScopeDetector | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.info = info
        self.device = device
        self.session = session
        self.detector = detector
        self.backend = "onnx" if session is not None else "torch"
        self.labels = list(info.labels)
        self.max_length = int(info.max_length)
        calibration = info.calibration or {}
        self.temperature = float(calibration.get("temperature", 1.0))
        self.intensity_map = calibration.get("intensity") or {}
        self._tokenizer_lock = threading.Lock()
        # Typos corrected towards the training words (training.spelling), when the
        # artifact was trained with it.
        self.spelling = (SpellingNormaliser.from_json(info.spelling, tokenizer_words(tokenizer))
                         if info.spelling else None)
        if session is not None:
            self._onnx_inputs = {item.name for item in session.get_inputs()}
            self._onnx_outputs = [item.name for item in session.get_outputs()]

    @classmethod
    def load(cls, directory: str | Path, *, device: str = "auto",
             expected_task: str | None = None, backend: str = "torch",
             num_threads: int | None = None) -> Predictor:
        """Loads ``directory`` (see ``training.artifact``).

        Args:
            directory: The artifact.
            device: One of ``training.arguments.DEVICES`` (torch backend).
            expected_task: Refuse an artifact of another task.
            backend: ``torch``; ``onnx`` for its int8 ONNX model (``training.export``)
                on ONNX Runtime, CPU only; ``auto`` for ``onnx`` when the artifact
                has one and the device is the CPU, else ``torch``.
            num_threads: CPU threads for one forward pass; ``None`` keeps the
                library's default. With ``onnx`` it sizes this session's pool;
                with ``torch`` it is kept for compatibility and calls
                ``configure_threads``, which is process-wide: prefer calling
                that once at start-up.
        """
        if backend not in BACKENDS:
            raise ValueError(f"backend={backend!r}: use one of {', '.join(BACKENDS)}")
        resolved = resolve_device(device)
        onnx_file = onnx_path(directory)
        if backend == "auto":
            backend = "onnx" if onnx_file.is_file() and resolved.type == "cpu" else "torch"
        if backend == "onnx":
            predictor = cls._load_onnx(Path(directory), onnx_file, expected_task, num_threads)
        else:
            configure_threads(num_threads)
            model, tokenizer, info = load_artifact(directory, device=resolved,
                                                   expected_task=expected_task)
            predictor = cls(model, tokenizer, info, resolved)
        if predictor.info.out_of_scope:
            predictor.detector = OutOfScopeDetector.from_json(predictor.info.out_of_scope,
                                                              load_ood_tensors(directory))
        return predictor

    @classmethod
    def _load_onnx(cls, directory: Path, onnx_file: Path, expected_task: str | None,
                   num_threads: int | None) -> Predictor:
        import onnxruntime

        info = check_artifact_info(directory, expected_task)
        if not onnx_file.is_file():
            raise ArtifactError(f"'{directory}' has no ONNX model ({onnx_file.name}); export "
                                "one with training.export.export_onnx or use backend torch")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = num_threads or 0
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            session = onnxruntime.InferenceSession(str(onnx_file), options,
                                                   providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own untyped errors
            raise ArtifactError(f"'{onnx_file}' is not a loadable ONNX model: {error}") from None
        return cls(None, load_tokenizer(directory), info, torch.device("cpu"), session=session)

    def _encode(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        limit = self.max_length * _CHARS_PER_TOKEN_BOUND
        texts = [text[:limit] for text in texts]
        if self.spelling is not None:
            texts = [self.spelling.normalise(text) for text in texts]
        with self._tokenizer_lock:
            batch = self.tokenizer(texts, padding=True, truncation=True,
                                   max_length=self.max_length, return_tensors="pt")
        return {key: value.to(self.device) for key, value in batch.items()
                if key in ("input_ids", "attention_mask", "token_type_ids")}

    def _forward(self, batch: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """The model's outputs for one batch: ``logits`` and, where present,
        ``features`` and ``intensity``, as float NumPy arrays."""
        if self.session is None:
            output = self.model(**batch, return_features=True)
            return {name: value.float().cpu().numpy() for name, value in output.items()}
        feed = {name: value.numpy() for name, value in batch.items()
                if name in self._onnx_inputs}
        values = self.session.run(self._onnx_outputs, feed)
        return {name: np.asarray(value, dtype=np.float32)
                for name, value in zip(self._onnx_outputs, values)}

    @torch.inference_mode()
    def outputs(self, texts: Sequence[str], batch_size: int = 64) -> dict[str, np.ndarray]:
        """Raw outputs of ``texts``, in the order given: ``logits`` and, where the
        model has them, ``features`` (pooled embeddings) and ``intensity`` (raw).

        Texts are sorted by length so that each batch pads little.
        """
        texts = ["" if text is None else str(text) for text in texts]
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        collected: dict[str, np.ndarray] = {}
        for start in range(0, len(order), batch_size):
            indices = order[start:start + batch_size]
            for name, value in self._forward(self._encode([texts[i] for i in indices])).items():
                if name not in collected:
                    collected[name] = np.zeros((len(texts), *value.shape[1:]), dtype=np.float32)
                collected[name][indices] = value
        if not texts:
            collected["logits"] = np.zeros((0, len(self.labels)), dtype=np.float32)
        return collected

    def calibrated(self, logits: np.ndarray) -> np.ndarray:
        """Probabilities from raw logits with the artifact's temperature."""
        return softmax(logits, self.temperature).astype(np.float32)

    def calibrated_intensity(self, raw: np.ndarray) -> np.ndarray:
        """The intensity head's raw output mapped to the calibrated 0..1 level."""
        mapped = apply_isotonic(raw, self.intensity_map.get("xs", []),
                                self.intensity_map.get("ys", []))
        return np.clip(mapped, 0.0, 1.0)

    def predict_proba(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """Calibrated probabilities ``(len(texts), n_labels)`` on the CPU, in the order given."""
        logits = self.outputs(texts, batch_size=batch_size)["logits"]
        return torch.from_numpy(self.calibrated(logits))

    def predict(self, texts: Sequence[str], batch_size: int = 64) -> list[Prediction]:
        """Classifies ``texts``; empty or whitespace-only texts are classified too."""
        if not len(texts):
            return []
        outputs = self.outputs(texts, batch_size=batch_size)
        probabilities = self.calibrated(outputs["logits"])
        intensity = (self.calibrated_intensity(outputs["intensity"])
                     if "intensity" in outputs else None)
        scores = None
        if self.detector is not None:
            scores = self.detector.scores(outputs.get("features"), outputs["logits"])
        results = []
        for i, row in enumerate(probabilities.tolist()):
            ranking = sorted(zip(self.labels, row), key=lambda pair: pair[1], reverse=True)
            ranking = [(label, float(score)) for label, score in ranking]
            results.append(Prediction(
                ranking[0][0], ranking[0][1], ranking,
                intensity=None if intensity is None else float(intensity[i]),
                unknown_score=None if scores is None else float(scores[i]),
                unknown=bool(scores is not None and scores[i] > self.detector.threshold),
            ))
        return results
