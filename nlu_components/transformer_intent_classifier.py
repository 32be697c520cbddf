"""Intent classifier on a fine-tuned BERT-family encoder (see ``training``).

Use it in ``config.yml`` in place of DIET's intent classification::

    pipeline:
      - name: nlu_components.TransformerIntentClassifier

Without ``model_path`` it fine-tunes the packaged all-MiniLM-L6-v2 on the
assistant's NLU data during ``rasa train``. With ``model_path`` it serves an
artifact made by ``python -m training intent`` (on a GPU, say) after checking
that its labels are the assistant's intents.

It says when it does not know, with thresholds measured on the training run's
validation split (``training.trainer``), not set by hand:

- its confidences are temperature-scaled, and a prediction below the measured
  ``fallback_threshold`` becomes ``nlu_fallback``, as Rasa's
  ``FallbackClassifier`` would do;
- a message that the out-of-scope detector (``training.ood``) places far from
  every intent's training examples becomes ``unknown_intent`` (``out_of_scope``),
  or ``nlu_fallback`` when its words are not words at all (keyboard mash).

``unknown_input`` in the output says which of these happened and why.
"""

from __future__ import annotations

import dataclasses
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
UNKNOWN_INPUT = "unknown_input"
FALLBACK_INTENT = "nlu_fallback"  # Rasa's DEFAULT_NLU_FALLBACK_INTENT_NAME
# Share of a message's words that must look like keyboard mash (see
# ``gibberish_share``) for a rejected message to get the fallback ("please
# rephrase") rather than the out-of-scope answer. Measured on
# benchmarks/data/unknown_input_test.csv: 55 of 65 mashes, and no BANKING77 test text.
GIBBERISH_SHARE = 0.5


@dataclass(frozen=True)
class IntentClassifierConfig:
    """The component's options (see ``get_default_config`` for their meaning)."""

    model_path: str | None = None
    base_model: str | None = None
    epochs: float = 10.0
    learning_rate: float = 1e-4
    batch_size: int = 16
    max_length: int = 64
    validation_split: float = 0.15
    label_smoothing: float = 0.0
    typo_augmentation: float = 0.7
    out_of_scope: str = "mahalanobis"
    fallback_threshold: float | str | None = "auto"
    unknown_intent: str = "auto"
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
        for key in ("epochs", "learning_rate", "validation_split", "label_smoothing",
                    "typo_augmentation"):
            object.__setattr__(self, key, _shared.to_number(NAME, key, getattr(self, key)))
        if self.fallback_threshold not in ("auto", None):
            value = _shared.to_number(NAME, "fallback_threshold", self.fallback_threshold)
            if not 0 <= value < 1:
                raise _shared.invalid(NAME, "fallback_threshold", value,
                                      "use auto (measured), null (off) or a number in [0, 1)")
            object.__setattr__(self, "fallback_threshold", value)
        from training.ood import METHODS

        if self.out_of_scope not in (*METHODS, "none"):
            raise _shared.invalid(NAME, "out_of_scope", self.out_of_scope,
                                  f"use one of {', '.join(METHODS)} or none")
        _shared.check_type(NAME, "unknown_intent", self.unknown_intent, str,
                           "name an intent of the domain, or nlu_fallback")
        if not 0 <= self.typo_augmentation <= 1:
            raise _shared.invalid(NAME, "typo_augmentation", self.typo_augmentation,
                                  "use a probability in [0, 1], such as 0.3")
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
                                  "use a fraction between 0 and 0.5 (0.15 measures the "
                                  "fallback threshold and the out-of-scope detector)")
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


def gibberish_share(text: str, tokenize: Any) -> float:
    """Share of the words of ``text`` that look like keyboard mash to a WordPiece vocabulary.

    A word of 3+ letters that the tokenizer can only spell in 3+ pieces, at least
    one per 2.5 letters ("asdkj" -> as ##d ##k ##j), is no word the encoder knows;
    a typo ("ordr" -> ord ##r) or a rare word ("refund" is one piece) is not.
    """
    words = [word for word in "".join(c if c.isalpha() else " " for c in text.lower()).split()]
    if not words:
        return 0.0
    mash = 0
    for word in words:
        pieces = len(tokenize(word)) if len(word) >= 3 else 1
        mash += pieces >= 3 and pieces >= len(word) / 2.5
    return mash / len(words)


def unknown_reason(prediction: Any, threshold: float | None, mash: float) -> str:
    """Why a prediction should not be acted on: ``out_of_scope``, ``gibberish``,
    ``low_confidence``, or ``""`` when it can be trusted.

    Args:
        prediction: A ``training.predict.Prediction``.
        threshold: The fallback threshold (``None`` is off).
        mash: ``gibberish_share`` of the text.
    """
    if prediction.unknown:
        return "gibberish" if mash >= GIBBERISH_SHARE else "out_of_scope"
    if threshold is not None and prediction.confidence < threshold:
        return "low_confidence"
    return ""


def apply_unknown(reason: str, intent: dict, ranking: list[dict], unknown_intent: str
                  ) -> tuple[dict, list[dict]]:
    """The ``intent`` and ranking Rasa sees for a reason of ``unknown_reason``.

    Out of scope becomes ``unknown_intent``; gibberish and low confidence become
    ``nlu_fallback`` (with the classifier's confidence, as Rasa's
    ``FallbackClassifier`` reports it), put first in the ranking.
    """
    if not reason:
        return intent, ranking
    name = unknown_intent if reason == "out_of_scope" else FALLBACK_INTENT
    replaced = {INTENT_NAME_KEY: name, PREDICTED_CONFIDENCE_KEY: intent[PREDICTED_CONFIDENCE_KEY]}
    rest = [entry for entry in ranking if entry[INTENT_NAME_KEY] != name]
    return replaced, [replaced, *rest]


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
            # Share of examples held out (stratified) for early stopping, the
            # temperature, the fallback threshold and the out-of-scope detector's
            # threshold; 0 trains on everything and turns those off.
            "validation_split": 0.15,
            # Share of each target spread over all intents (a regulariser for
            # many intents); 0 is plain cross-entropy.
            "label_smoothing": 0.0,
            # Probability that an example is drawn with fresh typos each epoch
            # (0.7 was best of 0, 0.3 and 0.7 in benchmarks/intent_robustness.py).
            "typo_augmentation": 0.7,
            # Out-of-scope detector (mahalanobis, knn, energy, msp) or none;
            # mahalanobis had the best AUROC in benchmarks/open_intent.py.
            "out_of_scope": "mahalanobis",
            # Calibrated confidence below which the intent is nlu_fallback: auto
            # is the training run's measurement, a number overrides it, null is off.
            "fallback_threshold": "auto",
            # The intent a message outside every intent gets: auto is out_of_scope
            # when the assistant has that intent, else nlu_fallback.
            "unknown_intent": "auto",
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
        if self.config.unknown_intent not in intents | {FALLBACK_INTENT, "auto"}:
            raise _shared.invalid(NAME, "unknown_intent", self.config.unknown_intent,
                                  "add the intent with examples to data/, or use auto or "
                                  "nlu_fallback")
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
                typo_augmentation=self.config.typo_augmentation,
                out_of_scope=self.config.out_of_scope,
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

    def unknown_intent(self) -> str:
        """The intent of messages outside every intent (``auto`` resolved)."""
        if self.config.unknown_intent != "auto":
            return self.config.unknown_intent
        labels = self._predictor.labels if self._predictor is not None else []
        return "out_of_scope" if "out_of_scope" in labels else FALLBACK_INTENT

    def fallback_threshold(self) -> float | None:
        """The threshold in force: measured (``auto``), configured, or ``None``."""
        if self.config.fallback_threshold != "auto":
            return self.config.fallback_threshold
        if self._predictor is None:
            return None
        return (self._predictor.info.calibration or {}).get("fallback_threshold")

    def process(self, messages: list[Message]) -> list[Message]:
        """Sets ``intent``, ``intent_ranking`` and ``unknown_input`` on every message,
        in one batched pass."""
        if self._predictor is None or not messages:
            return messages
        texts = _shared.message_texts(messages)
        predictions = self._predictor.predict(texts, batch_size=self.config.predict_batch_size)
        threshold = self.fallback_threshold()
        unknown_intent = self.unknown_intent()
        tokenize = self._predictor.tokenizer.tokenize
        # `out_of_scope: none` also silences a detector stored in a served artifact.
        detector = self._predictor.detector if self.config.out_of_scope != "none" else None
        for message, text, prediction in zip(messages, texts, predictions):
            if detector is None:
                prediction = dataclasses.replace(prediction, unknown=False, unknown_score=None)
            intent, ranking = to_rasa_intent(prediction, self.config.ranking_length)
            mash = gibberish_share(text, tokenize) if prediction.unknown else 0.0
            reason = unknown_reason(prediction, threshold, mash)
            intent, ranking = apply_unknown(reason, intent, ranking, unknown_intent)
            message.set(INTENT, intent, add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
            message.set(UNKNOWN_INPUT, {
                "reason": reason,
                "predicted_intent": prediction.label,
                "confidence": prediction.confidence,
                "fallback_threshold": threshold if threshold is not None else -1.0,
                "out_of_scope_score": (prediction.unknown_score
                                       if prediction.unknown_score is not None else -1.0),
                "out_of_scope_threshold": detector.threshold if detector else -1.0,
            }, add_to_output=True)
        return messages
