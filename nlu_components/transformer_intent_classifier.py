"""Intent classifier on a fine-tuned BERT-family encoder (see ``training``).

Use it in ``config.yml`` in place of DIET's intent classification::

    pipeline:
      - name: nlu_components.TransformerIntentClassifier
      - name: FallbackClassifier
        threshold: 0.5

Without ``model_path`` it fine-tunes the packaged all-MiniLM-L6-v2 on the
assistant's NLU data during ``rasa train``. With ``model_path`` it serves an
artifact made by ``python -m training intent`` (on a GPU, say) after checking
that its labels are the assistant's intents.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu_components import _shared

if TYPE_CHECKING:  # torch-free, but keep even this off import time
    from training.data import LabelledTexts

logger = logging.getLogger(__name__)

NAME = "TransformerIntentClassifier"


@dataclass(frozen=True)
class IntentClassifierConfig:
    """The component's options (see ``get_default_config`` for their meaning)."""

    model_path: str | None = None
    base_model: str | None = None
    epochs: float = 10.0
    learning_rate: float = 1e-4
    batch_size: int = 16
    max_length: int = 64
    validation_split: float = 0.0
    label_smoothing: float = 0.0
    seed: int = 42
    ranking_length: int = 10
    predict_batch_size: int = 64
    device: str = "auto"
    backend: str = "auto"
    num_threads: int | None = 1

    def __post_init__(self) -> None:
        _shared.check_serving(NAME, self.backend, self.num_threads)
        for key in ("model_path", "base_model"):
            value = getattr(self, key)
            if value is not None:
                _shared.check_type(NAME, key, value, str, "give a directory path or leave it out")
        for key in ("epochs", "learning_rate", "validation_split", "label_smoothing"):
            object.__setattr__(self, key, _shared.to_number(NAME, key, getattr(self, key)))
        for key in ("batch_size", "max_length", "seed", "ranking_length", "predict_batch_size"):
            _shared.check_type(NAME, key, getattr(self, key), int, "give a whole number")
        if self.epochs <= 0:
            raise _shared.invalid(NAME, "epochs", self.epochs, "use a number above 0")
        if not 0 < self.learning_rate < 1:
            raise _shared.invalid(NAME, "learning_rate", self.learning_rate, "use e.g. 1e-4")
        if self.batch_size < 1 or self.predict_batch_size < 1:
            key = "batch_size" if self.batch_size < 1 else "predict_batch_size"
            raise _shared.invalid(NAME, key, getattr(self, key), "use 1 or more")
        if not 8 <= self.max_length <= 512:
            raise _shared.invalid(NAME, "max_length", self.max_length, "use between 8 and 512")
        if not 0 <= self.validation_split <= 0.5:
            raise _shared.invalid(NAME, "validation_split", self.validation_split,
                                  "use a fraction between 0 and 0.5")
        if not 0 <= self.label_smoothing < 1:
            raise _shared.invalid(NAME, "label_smoothing", self.label_smoothing,
                                  "use a fraction in [0, 1), such as 0.1")
        if self.ranking_length < 0:
            raise _shared.invalid(NAME, "ranking_length", self.ranking_length,
                                  "use 0 (all intents) or more")
        if self.device not in ("auto", "cpu", "cuda"):
            raise _shared.invalid(NAME, "device", self.device, "use auto, cpu or cuda")


def intents_of(training_data: TrainingData) -> LabelledTexts:
    """Rasa's intent examples as ``training.data.LabelledTexts`` (entity markup is gone)."""
    from training.data import LabelledTexts

    pairs = [(example.get(TEXT) or "", example.get(INTENT))
             for example in training_data.intent_examples if example.get(INTENT)]
    return LabelledTexts.from_pairs(pairs)


def label_mismatch(artifact_labels: list[str], intents: set[str]) -> str | None:
    """Describes how an artifact's labels differ from the assistant's intents, if they do."""
    missing = sorted(intents - set(artifact_labels))
    extra = sorted(set(artifact_labels) - intents)
    if not missing and not extra:
        return None
    parts = []
    if missing:
        parts.append(f"intents the model cannot predict: {', '.join(missing)}")
    if extra:
        parts.append(f"labels that are not intents of this assistant: {', '.join(extra)}")
    return "; ".join(parts)


def to_rasa_intent(prediction: Any, ranking_length: int) -> tuple[dict, list[dict]]:
    """``intent`` and ``intent_ranking`` values from a ``training.predict.Prediction``."""
    intent = {INTENT_NAME_KEY: prediction.label, PREDICTED_CONFIDENCE_KEY: prediction.confidence}
    ranking = [{INTENT_NAME_KEY: label, PREDICTED_CONFIDENCE_KEY: confidence}
               for label, confidence in prediction.ranking]
    return intent, ranking[:ranking_length] if ranking_length else ranking


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True
)
class TransformerIntentClassifier(GraphComponent, IntentClassifier):
    """Classifies intents with a fine-tuned transformer encoder."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """Options and their defaults."""
        return {
            # An artifact of `python -m training intent` to serve; None fine-tunes
            # on the assistant's NLU data during `rasa train`.
            "model_path": None,
            # Encoder checkpoint directory to fine-tune; None is the packaged
            # all-MiniLM-L6-v2 (no download).
            "base_model": None,
            # Passes over the NLU data when fine-tuning here.
            "epochs": 10,
            # Peak AdamW learning rate (linear warmup then decay).
            "learning_rate": 1e-4,
            # Training examples per step.
            "batch_size": 16,
            # Tokens kept per message; longer messages are truncated.
            "max_length": 64,
            # Share of examples held out for early stopping and the suggested
            # fallback threshold; 0 trains on everything (small assistants).
            "validation_split": 0.0,
            # Share of each target spread over all intents (a regulariser for
            # many intents); 0 is plain cross-entropy.
            "label_smoothing": 0.0,
            # Seed of the head's initialisation and the data order.
            "seed": 42,
            # Intents kept in `intent_ranking`; 0 keeps all.
            "ranking_length": 10,
            # Messages per forward pass when predicting.
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
        """Packages imported when training or loading."""
        return ["torch", "transformers"]

    @classmethod
    def fingerprint_addon(cls, config: dict[str, Any]) -> str | None:
        """The served artifact's content, so a retrained one is not taken from the cache."""
        import training

        parts = [f"training={training.__version__}"]
        for key in ("model_path", "base_model"):
            if config.get(key):
                parts.append(f"{key}={_shared.artifact_fingerprint(_shared.resolve_path(config[key]))}")
        return ";".join(parts)

    def __init__(self, config: IntentClassifierConfig, model_storage: ModelStorage,
                 resource: Resource, predictor: Any = None) -> None:
        self.config = config
        self._model_storage = model_storage
        self._resource = resource
        self._predictor = predictor

    @classmethod
    def create(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> TransformerIntentClassifier:
        """A new, untrained component."""
        return cls(_shared.parse_config(IntentClassifierConfig, config, NAME), model_storage,
                   resource)

    def train(self, training_data: TrainingData) -> Resource:
        """Fine-tunes on the NLU data, or checks and stores the configured artifact."""
        intents = set(training_data.intents)
        with self._model_storage.write_to(self._resource) as directory:
            if self.config.model_path:
                self._store_artifact(Path(directory), intents)
            else:
                self._fine_tune(Path(directory), training_data)
            _shared.prepare_serving(NAME, Path(directory), self.config.backend)
        return self._resource

    def _store_artifact(self, directory: Path, intents: set[str]) -> None:
        source, info = _shared.checked_artifact(NAME, self.config.model_path, "intent")
        mismatch = label_mismatch(info.labels, intents)
        if mismatch:
            raise InvalidConfigException(
                f"{NAME}: the model at 'model_path: {self.config.model_path}' does not match "
                f"the assistant's intents ({mismatch}); retrain it on data/ with "
                "`python -m training intent --data data/`, or remove model_path to fine-tune "
                "during `rasa train`."
            )
        _shared.copy_artifact(source, directory)

    def _fine_tune(self, directory: Path, training_data: TrainingData) -> None:
        from training.arguments import DataArguments, TrainArguments
        from training.exceptions import TrainingError
        from training.trainer import ClassifierTrainer

        dataset = intents_of(training_data)
        with tempfile.TemporaryDirectory() as scratch:
            output = Path(scratch) / "artifact"
            train_args = TrainArguments(
                task="intent", output_dir=output, base_model=self.config.base_model,
                epochs=self.config.epochs, learning_rate=self.config.learning_rate,
                batch_size=self.config.batch_size, max_length=self.config.max_length,
                seed=self.config.seed, device=self.config.device, early_stopping_patience=2,
                label_smoothing=self.config.label_smoothing,
            )
            data_args = DataArguments(path=Path("data"), data_format="rasa",
                                      validation_split=self.config.validation_split)
            try:
                ClassifierTrainer(data_args, train_args, dataset=dataset).run()
            except TrainingError as error:
                raise InvalidConfigException(f"{NAME}: cannot train: {error}") from None
            _shared.copy_artifact(output, directory)
        logger.info("%s: fine-tuned on %d examples of %d intents", NAME, len(dataset),
                    len(dataset.label_names))

    @classmethod
    def load(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> TransformerIntentClassifier:
        """Loads the stored artifact once, for every message to come."""
        parsed = _shared.parse_config(IntentClassifierConfig, config, NAME)
        predictor = _shared.load_predictor(NAME, model_storage, resource, parsed.device, "intent",
                                           parsed.backend, parsed.num_threads)
        return cls(parsed, model_storage, resource, predictor)

    def process(self, messages: list[Message]) -> list[Message]:
        """Sets ``intent`` and ``intent_ranking`` on every message, in one batched pass."""
        if self._predictor is None or not messages:
            return messages
        texts = _shared.message_texts(messages)
        predictions = self._predictor.predict(texts, batch_size=self.config.predict_batch_size)
        for message, prediction in zip(messages, predictions):
            intent, ranking = to_rasa_intent(prediction, self.config.ranking_length)
            message.set(INTENT, intent, add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages
