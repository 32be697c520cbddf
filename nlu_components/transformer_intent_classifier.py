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
  every intent's training examples becomes ``unknown_intent`` (``out_of_scope``);
- a message whose words are not words at all (keyboard mash) becomes
  ``nlu_fallback``, whatever the classifier says.

``unknown_input`` in the output says which of these happened and why.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from pathlib import Path
from typing import Any

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu_components import _shared
from nlu_components._classifier import ServedClassifier
from nlu_components.intent_config import NAME, IntentClassifierConfig
from nlu_components.intent_output import (
    FALLBACK_INTENT,
    UNKNOWN_INPUT,
    apply_unknown,
    gibberish_share,
    intents_of,
    label_mismatch,
    to_rasa_intent,
    unknown_input,
    unknown_reason,
)

logger = logging.getLogger(__name__)

__all__ = ["IntentClassifierConfig", "TransformerIntentClassifier"]


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True
)
class TransformerIntentClassifier(ServedClassifier, IntentClassifier):
    """Classifies intents with a fine-tuned transformer encoder."""

    NAME = NAME
    TASK = "intent"
    CONFIG = IntentClassifierConfig
    ARTIFACT_KEYS = ("model_path", "base_model")

    def train(self, training_data: TrainingData) -> Resource:
        """Fine-tunes on the NLU data, or checks and stores the configured artifact."""
        intents = set(training_data.intents)
        if self.config.unknown_intent not in intents | {FALLBACK_INTENT, "auto"}:
            raise _shared.invalid(NAME, "unknown_intent", self.config.unknown_intent,
                                  "add the intent with examples to data/, or use auto or "
                                  "nlu_fallback")
        with self._model_storage.write_to(self._resource) as directory:
            if self.config.model_path:
                mismatch = label_mismatch(self.store_artifact(Path(directory)).labels, intents)
                if mismatch:
                    raise InvalidConfigException(
                        f"{NAME}: the model at 'model_path: {self.config.model_path}' does not "
                        f"match the assistant's intents ({mismatch}); retrain it on data/ with "
                        "`python -m training intent --data data/`, or remove model_path to "
                        "fine-tune during `rasa train`.")
            else:
                self._fine_tune(Path(directory), training_data)
            self.prepare_serving(Path(directory))
        return self._resource

    def _fine_tune(self, directory: Path, training_data: TrainingData) -> None:
        from training.arguments import DataArguments, TrainArguments
        from training.exceptions import TrainingError
        from training.trainer import ClassifierTrainer

        dataset, config = intents_of(training_data), self.config
        with tempfile.TemporaryDirectory() as scratch:
            output = Path(scratch) / "artifact"
            train_args = TrainArguments(
                task="intent", output_dir=output, base_model=config.base_model,
                epochs=config.epochs, learning_rate=config.learning_rate,
                batch_size=config.batch_size, max_length=config.max_length, seed=config.seed,
                device=config.device, early_stopping_patience=2,
                label_smoothing=config.label_smoothing,
                typo_augmentation=config.typo_augmentation,
                spelling_correction=config.spelling_correction,
                freeze_word_embeddings=config.freeze_word_embeddings,
                out_of_scope=config.out_of_scope,
                # Half the Rasa model archive, which Rasa gzips on every `rasa train`
                # (3 minutes for the multilingual encoder's 449 MB in float32) and
                # unpacks on every start; it is served as int8 ONNX, or loaded as float32.
                half_precision=True)
            data_args = DataArguments(path=Path("data"), data_format="rasa",
                                      validation_split=config.validation_split)
            try:
                ClassifierTrainer(data_args, train_args, dataset=dataset).run()
            except TrainingError as error:
                raise InvalidConfigException(f"{NAME}: cannot train: {error}") from None
            _shared.copy_artifact(output, directory)
        logger.info("%s: fine-tuned on %d examples of %d intents", NAME, len(dataset),
                    len(dataset.label_names))

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

    def annotate(self, message: Message, text: str, prediction: Any) -> None:
        """Sets ``intent``, ``intent_ranking`` and ``unknown_input``."""
        # `out_of_scope: none` also silences a detector stored in a served artifact.
        detector = self._predictor.detector if self.config.out_of_scope != "none" else None
        if detector is None:
            prediction = dataclasses.replace(prediction, unknown=False, unknown_score=None)
        threshold = self.fallback_threshold()
        intent, ranking = to_rasa_intent(prediction, self.config.ranking_length)
        mash = gibberish_share(text, self._predictor.tokenizer.tokenize)
        reason = unknown_reason(prediction, threshold, mash)
        intent, ranking = apply_unknown(reason, intent, ranking, self.unknown_intent())
        message.set(INTENT, intent, add_to_output=True)
        message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        message.set(UNKNOWN_INPUT, unknown_input(reason, prediction, threshold, detector),
                    add_to_output=True)
