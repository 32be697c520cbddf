"""LanguageIdentifier: short English is English; other languages get the fallback."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rasa.engine.storage.resource import Resource
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.training_data.message import Message

from nlu_components.language_identifier import (
    LanguageConfig,
    LanguageIdentifier,
    identify,
    language_entity,
    letter_scripts,
    route_other_language,
    script_of,
)

ENGLISH = LanguageConfig()
RANKING = [{"name": "order_status", "confidence": 0.8}, {"name": "refund", "confidence": 0.15},
           {"name": "greet", "confidence": 0.05}]


@pytest.mark.parametrize(
    "text",
    ["ok", "yep", "48213", "wheres my ordr 48213", "thx!!", "", "   ", "😀👍", "k",
     "where is my order please, I ordered it last week", "hi there", "refund pls"],
)
def test_english_and_too_short_to_tell_are_supported_as_english(text: str) -> None:
    language = identify(text, ENGLISH)

    assert language["supported"] is True
    assert language["code"] == "en"
    assert 0.0 <= language["confidence"] <= 1.0


@pytest.mark.parametrize(
    ("text", "code"),
    [("¿dónde está mi pedido?", "es"), ("我要退货", "zh"),
     ("Wo ist meine Bestellung, bitte?", "de"),
     ("Où est ma commande, s’il vous plaît ?", "fr"), ("Где мой заказ?", "ru")],
)
def test_other_languages_are_unsupported(text: str, code: str) -> None:
    language = identify(text, ENGLISH)

    assert language["supported"] is False
    assert language["code"] == language["detected"] == code
    assert language["confidence"] > 0.5


@pytest.mark.parametrize(("text", "code"), [("我要退货", "zh"), ("ok", "en"),
                                            ("where is my order 1", "en")])
def test_a_listed_language_is_supported(text: str, code: str) -> None:
    language = identify(text, LanguageConfig(languages=["en", "ZH"]))

    assert language["supported"] is True
    assert language["code"] == code


def test_the_first_language_is_assumed_when_unsure() -> None:
    language = identify("ok 48213", LanguageConfig(languages=["de", "en"]))

    assert (language["code"], language["detected"], language["supported"]) == ("de", "und", True)


def test_script_decides_when_cld2_cannot() -> None:
    language = identify("ааа", ENGLISH)  # Cyrillic letters, no word CLD2 knows

    assert language["supported"] is False
    assert language["code"] == "ru"


@pytest.mark.parametrize("text", ["\ud800abc", "ab\udcff\x00\xff", "\udfff" * 50,
                                  "\x00\x01\x02", "order \ufffe\uffff 48213", "x" * 50_000,
                                  "\u202eredro ym si erehw"])
def test_malformed_text_never_raises(text: str) -> None:
    language = identify(text, ENGLISH)

    assert set(language) == {"code", "detected", "confidence", "supported"}
    assert json.loads(json.dumps(language)) == language


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=200))
def test_any_text_gets_a_plain_language_value(text: str) -> None:
    language = identify(text, ENGLISH)

    assert isinstance(language["code"], str) and language["code"]
    assert isinstance(language["supported"], bool)
    assert 0.0 <= language["confidence"] <= 1.0
    assert language["supported"] == (language["code"] in ENGLISH.languages)


def test_script_helpers() -> None:
    assert script_of("a") == "LATIN"
    assert script_of("我") == "CJK"
    assert script_of("ж") == "CYRILLIC"
    assert script_of("\ud800") == ""
    assert letter_scripts("a1 我!") == ["LATIN", "CJK"]


@pytest.mark.parametrize(
    ("key", "value", "fix"),
    [("languages", "en", "give a list of ISO 639-1 codes"),
     ("languages", [], "give a list of ISO 639-1 codes"),
     ("languages", ["en", ""], "give a list of ISO 639-1 codes"),
     ("languages", ["en", 3], "give a list of ISO 639-1 codes"),
     ("languages", None, "give a list of ISO 639-1 codes"),
     ("min_coverage", 0, "use a share in \\(0, 1\\]"),
     ("min_coverage", 2, "use a share in \\(0, 1\\]"),
     ("min_coverage", "most", "give a number"),
     ("non_latin_share", -0.5, "use a share in \\(0, 1\\]"),
     ("non_latin_share", True, "give a number")],
)
def test_bad_config_names_the_key(key, value, fix: str) -> None:
    with pytest.raises(InvalidConfigException, match=f"LanguageIdentifier: '{key}: .*{fix}"):
        LanguageConfig(**{key: value})


def test_config_is_normalised() -> None:
    config = LanguageConfig(languages=["EN", "Zh"], min_coverage="0.9")

    assert config.languages == ("en", "zh")
    assert config.min_coverage == 0.9


@pytest.fixture
def identifier(model_storage, execution_context):
    """Factory: the component as Rasa creates it from config.yml."""

    def create(**config) -> LanguageIdentifier:
        return LanguageIdentifier.create(LanguageIdentifier.get_default_config() | config,
                                         model_storage, Resource("language"),
                                         execution_context)

    return create


def test_unknown_option_is_refused(identifier) -> None:
    with pytest.raises(InvalidConfigException, match="unknown option\\(s\\) langauges"):
        identifier(langauges=["en"])


def classified(text: str) -> Message:
    """A message as the intent classifier leaves it."""
    return Message(data={"text": text, "intent": dict(RANKING[0]),
                         "intent_ranking": [dict(entry) for entry in RANKING],
                         "unknown_input": {"reason": "", "predicted_intent": "order_status"}})


def test_process_sets_language_and_routes_spanish_to_the_fallback(identifier) -> None:
    english, spanish = identifier().process([classified("where is my order 48213"),
                                             classified("¿dónde está mi pedido?")])

    assert english.get("language")["code"] == "en" and english.get("language")["supported"]
    assert english.get("intent") == RANKING[0]
    assert english.get("intent_ranking") == RANKING
    assert english.get("unknown_input")["reason"] == ""

    language = spanish.get("language")
    assert (language["code"], language["supported"]) == ("es", False)
    assert spanish.get("intent") == {"name": "nlu_fallback",
                                     "confidence": language["confidence"]}
    assert spanish.get("intent_ranking") == [spanish.get("intent"), *RANKING]
    assert spanish.get("unknown_input") == {"reason": "other_language",
                                            "predicted_intent": "order_status"}
    assert {"language", "intent", "intent_ranking", "unknown_input"} <= set(
        spanish.as_dict_nlu())


def test_a_listed_language_keeps_its_intent(identifier) -> None:
    [message] = identifier(languages=["en", "es"]).process([classified("¿dónde está mi pedido?")])

    assert message.get("language")["supported"] is True
    assert message.get("intent") == RANKING[0]


def test_process_takes_messages_without_text_or_intent(identifier) -> None:
    empty, bare = identifier().process([Message(data={}), Message(data={"text": "我要退货"})])

    assert empty.get("language")["code"] == "en"
    assert empty.get("intent") is None
    assert bare.get("intent")["name"] == "nlu_fallback"
    assert bare.get("intent_ranking") == [bare.get("intent")]
    assert bare.get("unknown_input") == {"reason": "other_language"}


def test_routing_replaces_an_earlier_fallback_instead_of_repeating_it() -> None:
    message = Message(data={"text": "x", "intent": {"name": "nlu_fallback", "confidence": 0.3},
                            "intent_ranking": [{"name": "nlu_fallback", "confidence": 0.3},
                                               *RANKING]})

    route_other_language(message, {"code": "de", "confidence": 0.96, "supported": False})

    names = [entry["name"] for entry in message.get("intent_ranking")]
    assert names == ["nlu_fallback", "order_status", "refund", "greet"]
    assert message.get("intent") == {"name": "nlu_fallback", "confidence": 0.96}


BILINGUAL = LanguageConfig(languages=("en", "zh"))


@pytest.mark.parametrize(("text", "start"), [("我的订单48213到哪了？", 0), ("48213号订单呢", 5),
                                             ("alex@example.com 是我的邮箱", 17)])
def test_a_second_language_message_gets_a_one_character_entity(text: str, start: int) -> None:
    entity = language_entity(text, identify(text, BILINGUAL), BILINGUAL)

    assert (entity["entity"], entity["value"], entity["start"], entity["end"]) == (
        "language", "zh", start, start + 1)
    assert entity["extractor"] == "LanguageIdentifier"


@pytest.mark.parametrize("text", ["where is my order 12345?", "48213", "ok", "", "😀"])
def test_the_first_language_and_the_undecidable_get_no_entity(text: str) -> None:
    assert language_entity(text, identify(text, BILINGUAL), BILINGUAL) is None


def test_no_entity_when_unsupported_or_switched_off() -> None:
    text = "我要退货"
    assert language_entity(text, identify(text, ENGLISH), ENGLISH) is None
    silent = LanguageConfig(languages=("en", "zh"), entity="")
    assert language_entity(text, identify(text, silent), silent) is None


def test_process_adds_the_entity_after_the_others(identifier) -> None:
    message = classified("我的订单48213到哪了")
    message.set("entities", [{"entity": "order_id", "value": "48213", "start": 4, "end": 9}])

    [processed] = identifier(languages=["en", "zh"]).process([message])

    assert [e["entity"] for e in processed.get("entities")] == ["order_id", "language"]
    assert processed.get("intent") == RANKING[0]  # Chinese is spoken: no fallback


def test_a_bad_entity_option_names_the_key() -> None:
    with pytest.raises(InvalidConfigException, match="LanguageIdentifier: 'entity: 3"):
        LanguageConfig(entity=3)


def test_the_entity_skips_letters_another_entity_covers() -> None:
    text = "跑步鞋还有货吗"
    entity = language_entity(text, identify(text, BILINGUAL), BILINGUAL, [(0, 3)])

    assert (entity["start"], entity["end"]) == (3, 4)
