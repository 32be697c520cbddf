"""Which language a message is in, and a graceful way out when the assistant can't speak it.

Adds ``language`` to every message::

    {"code": "es", "confidence": 0.97, "supported": False}

A message in a language the assistant does not speak gets the intent
``nlu_fallback`` (``unknown_input.reason == "other_language"``) instead of a
guessed one; ``action_handle_fallback`` answers it with an offer of a human.
Put it after the intent classifier::

    - name: nlu_components.TransformerIntentClassifier
    - name: nlu_components.LanguageIdentifier
      languages: [en]

With more than one language (``languages: [en, zh]``) the assistant answers in
the customer's: a message identified as one of the other supported languages
also gets the entity ``language`` (value ``zh``), which fills the ``language``
slot that the responses' conditional variations read. The first language
gets no entity: the slot's second mapping (``from_intent``, value ``en``) sets
it for messages that carry no entity, except for intents that say nothing about
the language ("48213", "ok"), so that a customer's language is not switched by
a number. The entity spans the first character of that language's script: it
is a label of the whole message, and one character never overlaps an order
number, a product or an e-mail address in the message (it skips letters another
entity covers), which test stories annotate too.

Identification is Google's CLD2 (``pycld2``), chosen in
``benchmarks/langid_choice.py``: of six libraries it flagged none of about
14,800 English messages as foreign while recognising 96% of held-out foreign
ones, in 4 microseconds. The rule: a message is foreign when at least half of
its letters are outside the Latin script, or when CLD2 calls its result
reliable and one language covers ``min_coverage`` of the text. Anything else,
"ok", "48213" and "wheres my ordr" included, counts as the assistant's
language: a false "foreign" costs a customer far more than a missed one.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import (
    ENTITIES,
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu_components import _shared

logger = logging.getLogger(__name__)

NAME = "LanguageIdentifier"
LANGUAGE = "language"
UNKNOWN_INPUT = "unknown_input"
FALLBACK_INTENT = "nlu_fallback"
UNDETERMINED = "und"

# When CLD2 cannot name the language of a mostly non-Latin message, its script
# does (the main script of each of these languages is its own).
SCRIPT_LANGUAGES = {"CJK": "zh", "HIRAGANA": "ja", "KATAKANA": "ja", "HANGUL": "ko",
                    "CYRILLIC": "ru", "ARABIC": "ar", "DEVANAGARI": "hi", "GREEK": "el",
                    "HEBREW": "he", "THAI": "th"}


@dataclass(frozen=True)
class LanguageConfig:
    """The component's options (see ``get_default_config`` for their meaning)."""

    languages: tuple[str, ...] = ("en",)
    min_coverage: float = 0.95
    non_latin_share: float = 0.5
    entity: str = "language"

    def __post_init__(self) -> None:
        if isinstance(self.languages, str) or not isinstance(self.languages, (list, tuple)) \
                or not self.languages or not all(isinstance(code, str) and code
                                                 for code in self.languages):
            raise _shared.invalid(NAME, "languages", self.languages,
                                  "give a list of ISO 639-1 codes, such as [en]")
        object.__setattr__(self, "languages", tuple(code.lower() for code in self.languages))
        if not isinstance(self.entity, str):
            raise _shared.invalid(NAME, "entity", self.entity,
                                  "give an entity name, or \"\" for none")
        for key in ("min_coverage", "non_latin_share"):
            value = _shared.to_number(NAME, key, getattr(self, key))
            if not 0 < value <= 1:
                raise _shared.invalid(NAME, key, value, "use a share in (0, 1]")
            object.__setattr__(self, key, value)


def script_of(char: str) -> str:
    """The Unicode script word of a letter ("LATIN", "CJK", "CYRILLIC", ...)."""
    name = unicodedata.name(char, "")
    return name.split(" ", 1)[0] if name else ""


def letter_scripts(text: str) -> list[str]:
    """The script of every letter of ``text`` (digits, spaces, punctuation skipped)."""
    return [script_of(char) for char in text if char.isalpha()]


def identify(text: str, config: LanguageConfig) -> dict[str, Any]:
    """The ``language`` value of ``text``.

    Returns:
        ``code`` (the language it is treated as), ``detected`` (what CLD2 or the
        script said, ``und`` when nothing), ``confidence`` (CLD2's share of the
        text in that language, or the script's share of the letters) and
        ``supported``.
    """
    import pycld2

    scripts = letter_scripts(text)
    non_latin = [script for script in scripts if script != "LATIN"]
    share = len(non_latin) / len(scripts) if scripts else 0.0
    detected, confidence, reliable = UNDETERMINED, 0.0, False
    try:
        reliable, _, details = pycld2.detect(text)
    except Exception:  # noqa: BLE001 - pycld2 raises a bare error on some malformed UTF-8
        details = ()
    if details and details[0][1] not in ("un", "xx"):
        detected, confidence = details[0][1].split("-")[0].lower(), details[0][2] / 100
    if share >= config.non_latin_share:
        if detected == UNDETERMINED:
            main = max(set(non_latin), key=non_latin.count)
            detected, confidence = SCRIPT_LANGUAGES.get(main, UNDETERMINED), share
        foreign = detected not in config.languages
    else:
        foreign = (reliable and detected != UNDETERMINED and detected not in config.languages
                   and confidence >= config.min_coverage)
    code = detected if foreign or detected in config.languages else config.languages[0]
    return {"code": code, "detected": detected, "confidence": round(float(confidence), 4),
            "supported": not foreign}


def language_entity(text: str, language: dict[str, Any], config: LanguageConfig,
                    taken: list[tuple[int, int]] | None = None) -> dict[str, Any] | None:
    """The ``language`` entity of a message in a supported language other than the
    first, or ``None`` (first language, unsupported, or no entity configured).

    It spans the first letter outside the Latin script (or the first letter, for a
    Latin-script language) that no other entity covers (``taken``: their spans): a
    label of the message that overlaps nothing.
    """
    code = language["code"]
    if not config.entity or not language["supported"] or code == config.languages[0] \
            or code not in config.languages:
        return None
    covered = {i for start, end in taken or [] for i in range(start, end)}
    letters = [(i, char) for i, char in enumerate(text) if char.isalpha() and i not in covered]
    anchor = next((i for i, char in letters if script_of(char) != "LATIN"),
                  letters[0][0] if letters else None)
    if anchor is None:
        return None
    return {"entity": config.entity, "value": code, "start": anchor, "end": anchor + 1,
            "confidence_entity": language["confidence"], "extractor": NAME}


def route_other_language(message: Message, language: dict[str, Any]) -> None:
    """Replaces the guessed intent of a message in another language by ``nlu_fallback``."""
    fallback = {INTENT_NAME_KEY: FALLBACK_INTENT,
                PREDICTED_CONFIDENCE_KEY: language["confidence"]}
    ranking = [entry for entry in message.get(INTENT_RANKING_KEY) or []
               if entry.get(INTENT_NAME_KEY) != FALLBACK_INTENT]
    message.set(INTENT, fallback, add_to_output=True)
    message.set(INTENT_RANKING_KEY, [fallback, *ranking], add_to_output=True)
    unknown = dict(message.get(UNKNOWN_INPUT) or {})
    unknown["reason"] = "other_language"
    message.set(UNKNOWN_INPUT, unknown, add_to_output=True)


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False
)
class LanguageIdentifier(GraphComponent):
    """Adds ``language``; routes messages in other languages to the fallback."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """Options and their defaults."""
        return {
            # Languages the assistant answers in (ISO 639-1); the first is assumed
            # when a message is too short to tell ("ok", "48213").
            "languages": list(LanguageConfig.languages),
            # Share of the text CLD2's top language must cover to call a
            # Latin-script message foreign (tuned in benchmarks/langid_choice.py).
            "min_coverage": LanguageConfig.min_coverage,
            # A message with at least this share of non-Latin letters is in the
            # language of its script.
            "non_latin_share": LanguageConfig.non_latin_share,
            # The entity a message in a supported language other than the first gets
            # (it fills the slot responses read); "" for none.
            "entity": LanguageConfig.entity,
        }

    @staticmethod
    def required_packages() -> list[str]:
        """Packages imported when processing."""
        return ["pycld2"]

    def __init__(self, config: LanguageConfig) -> None:
        self.config = config

    @classmethod
    def create(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> LanguageIdentifier:
        """The component; it has nothing to train or load."""
        return cls(_shared.parse_config(LanguageConfig, config, NAME))

    def train(self, training_data: TrainingData) -> Resource:  # pragma: no cover - not trainable
        raise NotImplementedError

    def process(self, messages: list[Message]) -> list[Message]:
        """Sets ``language`` on every message; other languages get ``nlu_fallback``."""
        for message in messages:
            text = _shared.message_texts([message])[0]
            language = identify(text, self.config)
            message.set(LANGUAGE, language, add_to_output=True)
            if not language["supported"]:
                route_other_language(message, language)
            entities = message.get(ENTITIES) or []
            spans = [(e["start"], e["end"]) for e in entities
                     if isinstance(e.get("start"), int) and isinstance(e.get("end"), int)]
            entity = language_entity(text, language, self.config, spans)
            if entity is not None:
                message.set(ENTITIES, [*entities, entity], add_to_output=True)
        return messages
