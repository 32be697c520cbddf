"""Sentiment of every user message, from a fine-tuned classifier (see ``training``).

Adds ``sentiment`` to each message, visible in ``/model/parse`` and in
``tracker.latest_message`` on the action server::

    {"label": "negative", "confidence": 0.93,
     "scores": {"negative": 0.93, "neutral": 0.05, "positive": 0.02},
     "score": -0.91, "intensity": 0.87}

``score`` is positive minus negative probability (-1 .. 1), and ``intensity``
how strongly the message expresses its feeling, 0 (neutral) to 1 (furious or
ecstatic), calibrated on held-out messages: like Dialogflow's score and
magnitude. Models trained without intensity targets report none.

The artifact comes from ``python -m training sentiment``; ``rasa train``
checks it and stores a copy in the Rasa model, so the model is self-contained.
If the classifier fails while serving, intents keep working: the error is
logged once and messages simply carry no sentiment.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu_components import _shared

logger = logging.getLogger(__name__)

NAME = "SentimentAnalyzer"
SENTIMENT = "sentiment"


@dataclass(frozen=True)
class SentimentConfig:
    """The component's options (see ``get_default_config`` for their meaning)."""

    model_path: str = "assets/sentiment"
    predict_batch_size: int = 64
    device: str = "auto"
    backend: str = "auto"
    num_threads: int | None = 1

    def __post_init__(self) -> None:
        _shared.check_serving(NAME, self.backend, self.num_threads)
        _shared.check_type(NAME, "model_path", self.model_path, str,
                           "give the directory written by `python -m training sentiment`")
        _shared.check_type(NAME, "predict_batch_size", self.predict_batch_size, int,
                           "give a whole number")
        if self.predict_batch_size < 1:
            raise _shared.invalid(NAME, "predict_batch_size", self.predict_batch_size,
                                  "use 1 or more")
        if self.device not in ("auto", "cpu", "cuda"):
            raise _shared.invalid(NAME, "device", self.device, "use auto, cpu or cuda")


def to_sentiment(prediction: Any) -> dict[str, Any]:
    """The ``sentiment`` value (plain floats and strings) of a ``Prediction``."""
    scores = dict(prediction.ranking)
    value = {
        "label": prediction.label,
        "confidence": prediction.confidence,
        "scores": scores,
        "score": round(scores.get("positive", 0.0) - scores.get("negative", 0.0), 4),
    }
    if prediction.intensity is not None:
        value["intensity"] = round(prediction.intensity, 4)
    return value


# Placed where intent classifiers run: after tokenizers and featurizers, and
# only while predicting (it sets no intent).
@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True
)
class SentimentAnalyzer(GraphComponent):
    """Adds the ``sentiment`` of each message with a fine-tuned classifier."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """Options and their defaults."""
        return {
            # Artifact of `python -m training sentiment`, relative to the project
            # directory; assets/sentiment is the shipped default (SST-2 plus our
            # customer-service messages, benchmarks/sentiment_v2.py).
            "model_path": "assets/sentiment",
            # Messages per forward pass.
            "predict_batch_size": 64,
            # auto (CUDA when present), cpu or cuda.
            "device": "auto",
            # Serving: onnx runs the int8 ONNX model written at training time
            # (6x faster on the CPU; measured -0.13 points on BANKING77), torch
            # the PyTorch one; auto is onnx on the CPU when the export worked.
            "backend": "auto",
            # CPU threads per forward pass; 1 is fastest for single messages.
            "num_threads": 1,
        }

    @staticmethod
    def required_packages() -> list[str]:
        """Packages imported when loading."""
        return ["torch", "transformers"]

    @classmethod
    def fingerprint_addon(cls, config: dict[str, Any]) -> str | None:
        """The artifact's content, so a retrained one is not taken from the cache."""
        path = config.get("model_path") or cls.get_default_config()["model_path"]
        return _shared.artifact_fingerprint(_shared.resolve_path(path))

    def __init__(self, config: SentimentConfig, model_storage: ModelStorage,
                 resource: Resource, predictor: Any = None) -> None:
        self.config = config
        self._model_storage = model_storage
        self._resource = resource
        self._predictor = predictor
        self._failed = False

    @classmethod
    def create(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> SentimentAnalyzer:
        """A new component, before its artifact is stored."""
        return cls(_shared.parse_config(SentimentConfig, config, NAME), model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        """Checks the configured artifact and stores a copy in the Rasa model."""
        source, _ = _shared.checked_artifact(NAME, self.config.model_path, "sentiment")
        with self._model_storage.write_to(self._resource) as directory:
            _shared.copy_artifact(source, Path(directory))
            _shared.prepare_serving(NAME, Path(directory), self.config.backend)
        return self._resource

    @classmethod
    def load(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> SentimentAnalyzer:
        """Loads the stored artifact once."""
        parsed = _shared.parse_config(SentimentConfig, config, NAME)
        predictor = _shared.load_predictor(NAME, model_storage, resource, parsed.device,
                                           "sentiment", parsed.backend, parsed.num_threads)
        return cls(parsed, model_storage, resource, predictor)

    def process(self, messages: list[Message]) -> list[Message]:
        """Sets ``sentiment`` on every message, in one batched pass."""
        if self._predictor is None or not messages:
            return messages
        texts = _shared.message_texts(messages)
        try:
            predictions = self._predictor.predict(texts,
                                                  batch_size=self.config.predict_batch_size)
        except Exception:  # noqa: BLE001 - sentiment is optional, intents must go on
            if not self._failed:
                logger.exception("%s failed; messages go on without sentiment", NAME)
                self._failed = True
            return messages
        for message, prediction in zip(messages, predictions):
            message.set(SENTIMENT, to_sentiment(prediction), add_to_output=True)
        return messages
