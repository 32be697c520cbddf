from __future__ import annotations

import logging
from pathlib import Path

import pytest
from rasa.engine.storage.resource import Resource
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.training_data.message import Message

from nlu_components.sentiment_analyzer import SentimentAnalyzer, to_sentiment
from tests.nlu_components.conftest import CASES, intent_training_data
from training.predict import Prediction

SENTIMENT_CASE = CASES[1]


def test_to_sentiment_is_plain() -> None:
    prediction = Prediction("negative", 0.8, [("negative", 0.8), ("neutral", 0.15),
                                              ("positive", 0.05)])

    assert to_sentiment(prediction) == {
        "label": "negative", "confidence": 0.8,
        "scores": {"negative": 0.8, "neutral": 0.15, "positive": 0.05}, "score": -0.75}


def test_to_sentiment_adds_the_intensity_when_the_model_has_one() -> None:
    prediction = Prediction("negative", 0.9, [("negative", 0.9), ("neutral", 0.06),
                                              ("positive", 0.04)], intensity=0.81234)

    assert to_sentiment(prediction)["intensity"] == 0.8123


def test_learned_the_tiny_sentiments(build) -> None:
    messages = build(SENTIMENT_CASE).process(
        [Message(data={"text": t}) for t in ["this is terrible awful", "great thanks love it"]])

    assert [m.get("sentiment")["label"] for m in messages] == ["negative", "positive"]


def test_an_intent_model_is_refused(tiny_artifact: Path, model_storage,
                                    execution_context) -> None:
    config = SentimentAnalyzer.get_default_config() | {"model_path": str(tiny_artifact)}
    component = SentimentAnalyzer.create(config, model_storage, Resource("x"), execution_context)

    with pytest.raises(InvalidConfigException, match="it holds a intent model"):
        component.train(intent_training_data())


def test_a_failure_while_serving_is_logged_once_and_messages_go_on(build, caplog) -> None:
    component = build(SENTIMENT_CASE)

    def broken(*args, **kwargs):
        raise RuntimeError("CUDA out of memory")

    component._predictor.predict = broken  # noqa: SLF001
    with caplog.at_level(logging.ERROR):
        first = component.process([Message(data={"text": "hello", "intent": {"name": "x"}})])
        component.process([Message(data={"text": "again"})])

    assert first[0].get("sentiment") is None
    assert first[0].get("intent") == {"name": "x"}
    assert caplog.text.count("SentimentAnalyzer failed") == 1


def test_a_message_in_a_language_the_model_cannot_read_gets_no_sentiment(build) -> None:
    chinese, english, unknown = build(SENTIMENT_CASE).process([
        Message(data={"text": "包裹到了但是坏了", "language": {"code": "zh"}}),
        Message(data={"text": "this is terrible awful", "language": {"code": "en"}}),
        Message(data={"text": "this is terrible awful"})])

    assert chinese.get("sentiment") is None
    assert english.get("sentiment")["label"] == "negative"
    assert unknown.get("sentiment")["label"] == "negative"  # no language: as before


@pytest.mark.parametrize("languages", ["en", [], [""], None])
def test_bad_languages_name_the_key(languages) -> None:
    from nlu_components.sentiment_analyzer import SentimentConfig

    with pytest.raises(InvalidConfigException, match="SentimentAnalyzer: 'languages"):
        SentimentConfig(languages=languages)


def test_an_analyzer_predicts_only_the_messages_of_its_languages(build) -> None:
    component = build(SENTIMENT_CASE)
    seen: list[list[str]] = []
    predict = component._predictor.predict  # noqa: SLF001

    def recording(texts, **kwargs):
        seen.append(list(texts))
        return predict(texts, **kwargs)

    component._predictor.predict = recording  # noqa: SLF001
    component.process([Message(data={"text": "包裹到了但是坏了", "language": {"code": "zh"}}),
                       Message(data={"text": "great thanks", "language": {"code": "en"}})])
    component.process([Message(data={"text": "坏了", "language": {"code": "zh"}})])

    assert seen == [["great thanks"]]  # no forward pass for a language it cannot read
