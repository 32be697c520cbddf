"""The options of ``TransformerIntentClassifier``, as one frozen dataclass.

Every default lives here (``get_default_config`` is derived from it); the
limits shared with training (``max_length``, devices, out-of-scope methods)
come from ``training``, their one home.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from nlu_components import _shared
from nlu_components._classifier import ServingConfig
from training.arguments import MAX_LENGTH_MAX, MAX_LENGTH_MIN
from training.ood import METHODS

NAME = "TransformerIntentClassifier"


@dataclass(frozen=True)
class IntentClassifierConfig(ServingConfig):
    """The options: ``ServingConfig``'s, and these for fine-tuning during ``rasa train``.

    Attributes:
        model_path: An artifact of ``python -m training intent`` to serve; None
            fine-tunes on the assistant's NLU data during ``rasa train``.
        base_model: Encoder checkpoint directory to fine-tune; None is the
            packaged all-MiniLM-L6-v2 (no download).
        epochs, learning_rate, batch_size, max_length, label_smoothing, seed:
            as in ``training.arguments.TrainArguments``.
        validation_split: Share held out (stratified) for early stopping, the
            temperature, the fallback threshold and the out-of-scope threshold;
            0 trains on everything and turns those off.
        typo_augmentation: Probability that an example is drawn with fresh typos
            each epoch (0.7 was best of 0, 0.3 and 0.7 in intent_robustness.py).
        spelling_correction: Correct unknown words towards the NLU data's words
            before the encoder (``training.spelling``; intent_robustness.py).
        freeze_word_embeddings: Keep the encoder's word embeddings as pretrained
            (``TrainArguments.freeze_word_embeddings``): much faster with the
            multilingual encoder's large vocabulary.
        out_of_scope: Detector (mahalanobis, knn, energy, msp) or none;
            mahalanobis had the best AUROC in benchmarks/open_intent.py.
        fallback_threshold: Calibrated confidence below which the intent is
            nlu_fallback: auto is the training run's measurement, null is off.
        unknown_intent: The intent of a message outside every intent: auto is
            out_of_scope when the assistant has that intent, else nlu_fallback.
        ranking_length: Intents kept in ``intent_ranking``; 0 keeps all.
    """

    COMPONENT: ClassVar[str] = NAME
    TASK: ClassVar[str] = "intent"

    base_model: str | None = None
    epochs: float = 10.0
    learning_rate: float = 1e-4
    batch_size: int = 16
    max_length: int = 64
    validation_split: float = 0.15
    label_smoothing: float = 0.0
    typo_augmentation: float = 0.7
    spelling_correction: bool = True
    freeze_word_embeddings: bool = False
    out_of_scope: str = "mahalanobis"
    fallback_threshold: float | str | None = "auto"
    unknown_intent: str = "auto"
    seed: int = 42
    ranking_length: int = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.base_model is not None:
            _shared.check_type(NAME, "base_model", self.base_model, str,
                               "give a directory path or leave it out")
        for key in ("epochs", "learning_rate", "validation_split", "label_smoothing",
                    "typo_augmentation"):
            object.__setattr__(self, key, _shared.to_number(NAME, key, getattr(self, key)))
        if self.fallback_threshold not in ("auto", None):
            value = _shared.to_number(NAME, "fallback_threshold", self.fallback_threshold)
            _check(0 <= value < 1, "fallback_threshold", value,
                   "use auto (measured), null (off) or a number in [0, 1)")
            object.__setattr__(self, "fallback_threshold", value)
        _check(self.out_of_scope in (*METHODS, "none"), "out_of_scope", self.out_of_scope,
               f"use one of {', '.join(METHODS)} or none")
        _shared.check_type(NAME, "unknown_intent", self.unknown_intent, str,
                           "name an intent of the domain, or nlu_fallback")
        for key in ("spelling_correction", "freeze_word_embeddings"):
            _shared.check_type(NAME, key, getattr(self, key), bool, "use true or false")
        for key in ("batch_size", "max_length", "seed", "ranking_length"):
            _shared.check_type(NAME, key, getattr(self, key), int, "give a whole number")
        _check(0 <= self.typo_augmentation <= 1, "typo_augmentation", self.typo_augmentation,
               "use a probability in [0, 1], such as 0.3")
        _check(self.epochs > 0, "epochs", self.epochs, "use a number above 0")
        _check(0 < self.learning_rate < 1, "learning_rate", self.learning_rate, "use e.g. 1e-4")
        _check(self.batch_size >= 1, "batch_size", self.batch_size, "use 1 or more")
        _check(MAX_LENGTH_MIN <= self.max_length <= MAX_LENGTH_MAX, "max_length",
               self.max_length, f"use between {MAX_LENGTH_MIN} and {MAX_LENGTH_MAX}")
        _check(0 <= self.validation_split <= 0.5, "validation_split", self.validation_split,
               "use a fraction between 0 and 0.5 (0.15 measures the fallback threshold "
               "and the out-of-scope detector)")
        _check(0 <= self.label_smoothing < 1, "label_smoothing", self.label_smoothing,
               "use a fraction in [0, 1), such as 0.1")
        _check(self.ranking_length >= 0, "ranking_length", self.ranking_length,
               "use 0 (all intents) or more")


def _check(condition: bool, key: str, value: object, fix: str) -> None:
    if not condition:
        raise _shared.invalid(NAME, key, value, fix)
