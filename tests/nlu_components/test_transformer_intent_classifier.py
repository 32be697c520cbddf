from __future__ import annotations

import logging
from pathlib import Path

import pytest
from rasa.engine.storage.resource import Resource
from rasa.nlu.classifiers.fallback_classifier import FallbackClassifier
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu_components.transformer_intent_classifier import (
    TransformerIntentClassifier,
    label_mismatch,
    to_rasa_intent,
)
from tests.nlu_components.conftest import CASES, intent_training_data
from training.predict import Prediction

INTENT_CASE = CASES[0]


@pytest.mark.parametrize(
    ("labels", "intents", "expected"),
    [
        (["a", "b"], {"a", "b"}, None),
        (["a"], {"a", "b"}, "intents the model cannot predict: b"),
        (["a", "b", "c"], {"a", "b"}, "labels that are not intents of this assistant: c"),
        (["a", "x"], {"a", "y"}, "intents the model cannot predict: y; labels that are not "
                                 "intents of this assistant: x"),
    ],
)
def test_label_mismatch(labels, intents, expected) -> None:
    assert label_mismatch(labels, intents) == expected


@pytest.mark.parametrize(("ranking_length", "kept"), [(0, 3), (2, 2), (10, 3)])
def test_to_rasa_intent_cuts_the_ranking(ranking_length: int, kept: int) -> None:
    prediction = Prediction("b", 0.7, [("b", 0.7), ("a", 0.2), ("c", 0.1)])

    intent, ranking = to_rasa_intent(prediction, ranking_length)

    assert intent == {"name": "b", "confidence": 0.7}
    assert len(ranking) == kept
    assert ranking[0] == {"name": "b", "confidence": 0.7}


def test_fine_tunes_on_rasa_training_data_without_model_path(
        tiny_checkpoint: Path, model_storage, execution_context, caplog) -> None:
    config = TransformerIntentClassifier.get_default_config() | {
        "base_model": str(tiny_checkpoint), "epochs": 8, "learning_rate": 3e-3,
        "batch_size": 8, "device": "cpu"}
    resource = Resource("fine-tuned")
    training_data = TrainingData(intent_training_data(12).intent_examples + [
        # Entity markup is already resolved in Rasa's messages; intent-less ones are skipped.
        Message(data={"text": "a message without intent"})])
    component = TransformerIntentClassifier.create(config, model_storage, resource,
                                                   execution_context)

    with caplog.at_level(logging.INFO):
        component.train(training_data)
    loaded = TransformerIntentClassifier.load(config, model_storage, resource, execution_context)
    messages = loaded.process([Message(data={"text": t}) for t in
                               ["where is my order 4242", "refund my money please", "hello hi"]])

    assert [m.get("intent")["name"] for m in messages] == ["order_status", "refund", "greet"]
    assert "fine-tuned on 36 examples of 3 intents" in caplog.text


def test_model_path_with_other_intents_is_refused(tiny_artifact: Path, model_storage,
                                                  execution_context) -> None:
    config = TransformerIntentClassifier.get_default_config() | {"model_path": str(tiny_artifact)}
    component = TransformerIntentClassifier.create(config, model_storage, Resource("x"),
                                                   execution_context)
    data = TrainingData(intent_training_data().intent_examples
                        + [Message(data={"text": "bye", "intent": "goodbye"})])

    with pytest.raises(InvalidConfigException,
                       match="does not match the assistant's intents \\(intents the model "
                             "cannot predict: goodbye\\)"):
        component.train(data)


def test_model_path_of_a_sentiment_model_is_refused(tiny_sentiment_artifact: Path,
                                                    model_storage, execution_context) -> None:
    config = {"model_path": str(tiny_sentiment_artifact)}
    component = TransformerIntentClassifier.create(
        TransformerIntentClassifier.get_default_config() | config, model_storage,
        Resource("x"), execution_context)

    with pytest.raises(InvalidConfigException, match="it holds a sentiment model"):
        component.train(intent_training_data())


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [("epochs", 0, "use a number above 0"), ("learning_rate", 5, "use e.g. 1e-4"),
     ("max_length", 4, "between 8 and 512"), ("validation_split", 0.9, "between 0 and 0.5"),
     ("ranking_length", -1, "0 \\(all intents\\) or more"), ("model_path", 3, "directory path"),
     ("batch_size", True, "whole number"), ("epochs", "many", "give a number")],
)
def test_intent_specific_bad_config(key, value, message, model_storage,
                                    execution_context) -> None:
    config = TransformerIntentClassifier.get_default_config() | {key: value}

    with pytest.raises(InvalidConfigException, match=f"'{key}: .*{message}"):
        TransformerIntentClassifier.create(config, model_storage, Resource("x"),
                                           execution_context)


@pytest.mark.parametrize(("threshold", "fallback"), [(0.0, False), (0.999, True)])
def test_rasa_fallback_classifier_works_after_it(build, threshold: float,
                                                 fallback: bool) -> None:
    component = build(INTENT_CASE)
    messages = component.process([Message(data={"text": "zzz qqq"})])

    [message] = FallbackClassifier({"threshold": threshold, "ambiguity_threshold": 0.0}) \
        .process(messages)

    assert (message.get("intent")["name"] == "nlu_fallback") is fallback
