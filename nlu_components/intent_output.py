"""Pure helpers of ``TransformerIntentClassifier``: Rasa's intent output and unknown input.

No Rasa component here, only functions over plain values and
``training.predict.Prediction``, tested directly (like Rasa's
``fallback_classifier.py`` helpers).
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, Any

from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.training_data import TrainingData

if TYPE_CHECKING:  # torch-free, but keep even this off import time
    from training.data import LabelledTexts

UNKNOWN_INPUT = "unknown_input"
FALLBACK_INTENT = "nlu_fallback"  # Rasa's DEFAULT_NLU_FALLBACK_INTENT_NAME
# Share of a message's words that must look like keyboard mash (see
# ``gibberish_share``) for the message to get the fallback ("please rephrase"),
# whatever the classifier and the out-of-scope detector say (unless the fallback
# is off): the detector's
# threshold moves with the assistant's data, and once let "asdkj qwpoe" through as
# goodbye (0.78). Measured: 55 of the 65 mashes of
# benchmarks/data/unknown_input_test.csv reach it; no BANKING77 test text, 1 of the
# 330 held-out assistant messages ("thnks") and 4 of 1,295 training examples do.
GIBBERISH_SHARE = 0.5


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


def _is_latin(char: str) -> bool:
    return char.isascii() or unicodedata.name(char, "").startswith("LATIN")


def gibberish_share(text: str, tokenize: Any) -> float:
    """Share of the words of ``text`` that look like keyboard mash to a WordPiece vocabulary.

    A word of 3+ letters that the tokenizer can only spell in 3+ pieces, at least
    one per 2.5 letters ("asdkj" -> as ##d ##k ##j), is no word the encoder knows;
    a typo ("ordr" -> ord ##r) or a rare word ("refund" is one piece) is not.

    Only Latin-script words count: a run of Chinese characters has no spaces, so it
    is a whole sentence, not a word, and a sentence always takes many pieces
    ("我的订单到哪了" read as mash sent every Chinese question to the fallback).
    """
    letters = "".join(c if c.isalpha() and _is_latin(c) else " " for c in text.lower())
    words = letters.split()
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
    if threshold is None:  # the fallback is off: Rasa's FallbackClassifier may follow
        return ""
    if mash >= GIBBERISH_SHARE:
        return "gibberish"
    return "low_confidence" if prediction.confidence < threshold else ""


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


def unknown_input(reason: str, prediction: Any, threshold: float | None,
                  detector: Any) -> dict[str, Any]:
    """The ``unknown_input`` output: why the intent was replaced, and the measurements."""
    return {
        "reason": reason,
        "predicted_intent": prediction.label,
        "confidence": prediction.confidence,
        "fallback_threshold": threshold if threshold is not None else -1.0,
        "out_of_scope_score": (prediction.unknown_score
                               if prediction.unknown_score is not None else -1.0),
        "out_of_scope_threshold": detector.threshold if detector else -1.0,
    }
