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

A message that ``LanguageIdentifier`` puts in a language the model was not
trained on (option ``languages``, default ``[en]``) is not read by it: the English
model reads Chinese complaints as positive, and no sentiment (which the escalation
policy and the tickets already handle) beats a confidently wrong one. A pipeline may
hold one analyzer per language (config.yml: the English model, and a multilingual
one for Chinese), each reading only its own messages.

The artifact comes from ``python -m training sentiment``; ``rasa train``
checks it and stores a copy in the Rasa model, so the model is self-contained.
If the classifier fails while serving, intents keep working: the error is
logged once and messages simply carry no sentiment.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu_components import _shared
from nlu_components._classifier import ServedClassifier, ServingConfig

logger = logging.getLogger(__name__)

NAME = "SentimentAnalyzer"
SENTIMENT = "sentiment"
LANGUAGE = "language"  # set by nlu_components.LanguageIdentifier, which runs first


@dataclass(frozen=True)
class SentimentConfig(ServingConfig):
    """The component's options: those of ``ServingConfig``.

    ``model_path`` defaults to ``assets/sentiment``, the shipped model (SST-2
    plus our customer-service messages, ``benchmarks/sentiment_v2.py``).
    """

    COMPONENT: ClassVar[str] = NAME
    TASK: ClassVar[str] = "sentiment"

    model_path: str = "assets/sentiment"
    languages: tuple[str, ...] = ("en",)

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.languages, str) or not isinstance(self.languages, (list, tuple)) \
                or not self.languages or not all(isinstance(code, str) and code
                                                 for code in self.languages):
            raise _shared.invalid(NAME, "languages", self.languages,
                                  "give a list of ISO 639-1 codes the model was trained on, "
                                  "such as [en]")
        object.__setattr__(self, "languages", tuple(code.lower() for code in self.languages))


def reads(config: SentimentConfig, message: Message) -> bool:
    """Whether the model reads ``message``: its language (from ``LanguageIdentifier``)
    is one of ``languages``, or no language was identified."""
    language = (message.get(LANGUAGE) or {}).get("code")
    return not language or language in config.languages


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
class SentimentAnalyzer(ServedClassifier):
    """Adds the ``sentiment`` of each message with a fine-tuned classifier."""

    NAME = NAME
    TASK = "sentiment"
    CONFIG = SentimentConfig

    _failed = False

    def train(self, training_data: TrainingData) -> Resource:
        """Checks the configured artifact and stores a copy in the Rasa model."""
        with self._model_storage.write_to(self._resource) as directory:
            self.store_artifact(Path(directory))
            self.prepare_serving(Path(directory))
        return self._resource

    def predict(self, texts: list[str]) -> list[Any] | None:
        """Predictions, or ``None`` after a failure: sentiment is optional, intents go on."""
        try:
            return super().predict(texts)
        except Exception:  # noqa: BLE001 - the error is logged once, messages go on
            if not self._failed:
                logger.exception("%s failed; messages go on without sentiment", NAME)
                self._failed = True
            return None

    def process(self, messages: list[Message]) -> list[Message]:
        """Annotates the messages in this model's languages (one batched prediction)."""
        super().process([message for message in messages if reads(self.config, message)])
        return messages

    def annotate(self, message: Message, text: str, prediction: Any) -> None:
        """Sets ``sentiment`` on a message the model reads."""
        message.set(SENTIMENT, to_sentiment(prediction), add_to_output=True)
