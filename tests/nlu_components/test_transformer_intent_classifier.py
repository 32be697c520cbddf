from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from rasa.engine.storage.resource import Resource
from rasa.nlu.classifiers.fallback_classifier import FallbackClassifier
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu_components.intent_output import (
    GIBBERISH_SHARE,
    apply_unknown,
    gibberish_share,
    label_mismatch,
    to_rasa_intent,
    unknown_reason,
)
from nlu_components.transformer_intent_classifier import (
    IntentClassifierConfig,
    TransformerIntentClassifier,
)
from tests.nlu_components.conftest import CASES, intent_training_data
from training.ood import METHODS
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
    # No validation split: nothing is held out, so no fallback threshold or detector.
    config = TransformerIntentClassifier.get_default_config() | {
        "base_model": str(tiny_checkpoint), "epochs": 8, "learning_rate": 3e-3,
        "batch_size": 8, "device": "cpu", "validation_split": 0.0, "typo_augmentation": 0.0}
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
    """Rasa's own FallbackClassifier still works with our own fallback turned off."""
    component = build(INTENT_CASE, fallback_threshold=None, out_of_scope="none")
    messages = component.process([Message(data={"text": "zzz qqq"})])

    [message] = FallbackClassifier({"threshold": threshold, "ambiguity_threshold": 0.0}) \
        .process(messages)

    assert (message.get("intent")["name"] == "nlu_fallback") is fallback


# -- saying "I don't know": gibberish, out of scope, low confidence ----------------

# Pieces a fake WordPiece vocabulary spells each word in (1 for the others).
PIECES = {"asdkj": 4, "qwpoiu": 5, "ordr": 2, "xyz": 3, "zxcvbnmlkj": 3, "zxcvbnml": 4}


def fake_tokenize(word: str) -> list[str]:
    assert len(word) >= 3, f"words under 3 letters are never tokenized: {word!r}"
    return ["piece"] * PIECES.get(word, 1)


@pytest.mark.parametrize(
    ("text", "share"),
    [
        ("", 0.0),
        ("48213 !!! 😀", 0.0),
        ("asdkj", 1.0),
        ("ASDKJ!!", 1.0),
        ("asdkj,qwpoiu", 1.0),
        ("asdkj refund", 0.5),
        ("asdkj qwpoiu hi ok", 0.5),
        ("wheres my ordr 48213", 0.0),  # a typo is two pieces
        ("xyz", 1.0),
        ("zxcvbnmlkj", 0.0),  # 3 pieces for 10 letters: a long rare word
        ("zxcvbnml", 1.0),  # 4 pieces for 8 letters
        ("a b", 0.0),
        # Chinese runs have no spaces: a sentence, never a mashed word.
        ("我的订单48213到哪了？", 0.0),
        ("帮我查一下订单 asdkj", 1.0),  # only the Latin word counts
        ("café crème", 0.0),  # accented Latin letters still count as letters
    ],
)
def test_gibberish_share(text: str, share: float) -> None:
    assert gibberish_share(text, fake_tokenize) == pytest.approx(share)


def prediction(confidence: float = 0.9, unknown: bool = False) -> Prediction:
    return Prediction("b", confidence, [("b", confidence), ("a", 1 - confidence)],
                      unknown_score=0.4, unknown=unknown)


@pytest.mark.parametrize(
    ("confidence", "unknown", "threshold", "mash", "reason"),
    [
        (0.9, True, 0.5, GIBBERISH_SHARE, "gibberish"),
        (0.9, True, 0.5, 1.0, "gibberish"),
        (0.9, True, 0.5, GIBBERISH_SHARE - 0.01, "out_of_scope"),
        (0.1, True, 0.5, 0.0, "out_of_scope"),  # the detector comes first
        (0.3, False, 0.5, 0.0, "low_confidence"),
        (0.3, False, 0.5, 1.0, "gibberish"),
        (0.5, False, 0.5, 0.0, ""),  # at the threshold is confident enough
        (0.01, False, None, 0.0, ""),
        (0.9, False, 0.5, 1.0, "gibberish"),  # mash is rejected whatever the detector says
        (0.9, False, 0.5, GIBBERISH_SHARE - 0.01, ""),
        (0.9, False, None, 1.0, ""),  # with the fallback off, mash alone rejects nothing
    ],
)
def test_unknown_reason(confidence, unknown, threshold, mash, reason) -> None:
    assert unknown_reason(prediction(confidence, unknown), threshold, mash) == reason


RANKING = [{"name": "b", "confidence": 0.7}, {"name": "a", "confidence": 0.2},
           {"name": "nlu_fallback", "confidence": 0.1}]


def test_apply_unknown_without_reason_changes_nothing() -> None:
    intent = {"name": "b", "confidence": 0.7}

    result = apply_unknown("", intent, RANKING, "out_of_scope")

    assert result[0] is intent and result[1] is RANKING


@pytest.mark.parametrize(
    ("reason", "unknown_intent", "name", "rest"),
    [
        ("out_of_scope", "out_of_scope", "out_of_scope", ["b", "a", "nlu_fallback"]),
        ("out_of_scope", "a", "a", ["b", "nlu_fallback"]),
        ("out_of_scope", "nlu_fallback", "nlu_fallback", ["b", "a"]),
        ("gibberish", "out_of_scope", "nlu_fallback", ["b", "a"]),
        ("low_confidence", "out_of_scope", "nlu_fallback", ["b", "a"]),
    ],
)
def test_apply_unknown_puts_the_replacement_first(reason, unknown_intent, name, rest) -> None:
    intent, ranking = apply_unknown(reason, {"name": "b", "confidence": 0.7}, RANKING,
                                    unknown_intent)

    assert intent == {"name": name, "confidence": 0.7}
    assert ranking[0] == intent
    assert [entry["name"] for entry in ranking[1:]] == rest
    assert RANKING[0] == {"name": "b", "confidence": 0.7}  # the input is not modified


@pytest.mark.parametrize(("value", "parsed"), [("auto", "auto"), (None, None), (0, 0.0),
                                               (0.35, 0.35), ("0.35", 0.35), (0.999, 0.999)])
def test_fallback_threshold_values(value, parsed) -> None:
    assert IntentClassifierConfig(fallback_threshold=value).fallback_threshold == parsed


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [("fallback_threshold", 1.5, "auto \\(measured\\), null \\(off\\) or a number in \\[0, 1\\)"),
     ("fallback_threshold", 1, "a number in \\[0, 1\\)"),
     ("fallback_threshold", -0.1, "a number in \\[0, 1\\)"),
     ("fallback_threshold", float("nan"), "a number in \\[0, 1\\)"),
     ("fallback_threshold", "high", "give a number"),
     ("fallback_threshold", "AUTO", "give a number"),
     ("fallback_threshold", True, "give a number"),
     ("fallback_threshold", [0.5], "give a number"),
     ("out_of_scope", "lof", "use one of msp, energy, mahalanobis, knn or none"),
     ("out_of_scope", "KNN", "use one of msp, energy, mahalanobis, knn or none"),
     ("out_of_scope", None, "use one of"),
     ("unknown_intent", 3, "name an intent of the domain, or nlu_fallback"),
     ("unknown_intent", None, "name an intent of the domain"),
     ("freeze_word_embeddings", "yes", "use true or false"),
     ("spelling_correction", 1, "use true or false")],
)
def test_unknown_input_options_refuse_bad_values(key, value, message, model_storage,
                                                 execution_context) -> None:
    config = TransformerIntentClassifier.get_default_config() | {key: value}

    with pytest.raises(InvalidConfigException, match=f"'{key}: .*{message}"):
        TransformerIntentClassifier.create(config, model_storage, Resource("x"),
                                           execution_context)


@pytest.mark.parametrize("method", [*METHODS, "none"])
def test_every_out_of_scope_method_is_accepted(method: str) -> None:
    assert IntentClassifierConfig(out_of_scope=method).out_of_scope == method


def test_the_unknown_intent_must_be_an_intent_of_the_data(tiny_artifact: Path, model_storage,
                                                          execution_context) -> None:
    config = TransformerIntentClassifier.get_default_config() | {
        "model_path": str(tiny_artifact), "unknown_intent": "out_of_scope"}
    component = TransformerIntentClassifier.create(config, model_storage, Resource("x"),
                                                   execution_context)

    with pytest.raises(InvalidConfigException,
                       match="'unknown_intent: 'out_of_scope'' is invalid; add the intent "
                             "with examples to data/, or use auto or nlu_fallback"):
        component.train(intent_training_data())


@pytest.mark.parametrize(("labels", "expected"), [
    (("greet", "out_of_scope"), "out_of_scope"), (("greet", "refund"), "nlu_fallback")])
def test_auto_unknown_intent_is_out_of_scope_only_where_the_assistant_has_it(
        labels, expected) -> None:
    from nlu_components.transformer_intent_classifier import IntentClassifierConfig

    predictor = type("FakePredictor", (), {"labels": list(labels)})()
    component = TransformerIntentClassifier(IntentClassifierConfig(), None, None, predictor)

    assert component.unknown_intent() == expected


@pytest.fixture
def serving(build):
    """Factory: the intent component on the tiny artifact, served with torch."""

    def make(**config):
        return build(INTENT_CASE, **({"unknown_intent": "nlu_fallback", "backend": "torch"}
                                     | config))

    return make


def test_fallback_threshold_in_force(serving, tiny_artifact: Path, model_storage,
                                     execution_context) -> None:
    measured = json.loads((tiny_artifact / "classifier.json").read_text())[
        "calibration"]["fallback_threshold"]
    untrained = TransformerIntentClassifier.create(
        TransformerIntentClassifier.get_default_config(), model_storage, Resource("y"),
        execution_context)

    assert serving().fallback_threshold() == measured
    assert serving(resource_name="fixed", fallback_threshold=0.3).fallback_threshold() == 0.3
    assert serving(resource_name="off", fallback_threshold=None).fallback_threshold() is None
    assert untrained.fallback_threshold() is None


def test_processed_messages_carry_unknown_input(serving) -> None:
    component = serving()
    texts = ["where is my order 4242", "refund my money please", "hello hi", "zzz qqq",
             "asdkjh qwpoiu zxcvbn", "", "¿dónde está mi pedido?"]

    messages = component.process([Message(data={"text": text}) for text in texts])

    for message in messages:
        unknown = message.get("unknown_input")
        assert unknown["reason"] in ("", "out_of_scope", "gibberish", "low_confidence")
        assert unknown["predicted_intent"] in INTENT_CASE.labels
        for key in ("confidence", "fallback_threshold", "out_of_scope_score",
                    "out_of_scope_threshold"):
            assert type(unknown[key]) is float, key
        assert unknown["out_of_scope_threshold"] == component._predictor.detector.threshold
        expected = unknown["predicted_intent"] if not unknown["reason"] else "nlu_fallback"
        assert message.get("intent")["name"] == expected
        assert message.get("intent_ranking")[0] == message.get("intent")
        assert "unknown_input" in message.as_dict_nlu()
        assert json.loads(json.dumps(unknown)) == unknown


def test_out_of_scope_and_gibberish_are_told_apart(serving) -> None:
    component = serving(fallback_threshold=None)
    component._predictor.detector.threshold = -1.0  # everything is out of scope

    messages = component.process([Message(data={"text": text}) for text in
                                  ["where is my order 4242", "asdkjh qwpoiu zxcvbn"]])

    assert [m.get("unknown_input")["reason"] for m in messages] == ["out_of_scope", "gibberish"]
    for message in messages:
        assert message.get("intent")["name"] == "nlu_fallback"
        rest = message.get("intent_ranking")[1:]
        assert sorted(entry["name"] for entry in rest) == list(INTENT_CASE.labels)
        confidences = [entry["confidence"] for entry in rest]
        assert confidences == sorted(confidences, reverse=True)
        assert message.get("unknown_input")["fallback_threshold"] == -1.0


def test_low_confidence_becomes_the_fallback(serving) -> None:
    component = serving(fallback_threshold=0.5)
    component._predictor.detector.threshold = float("inf")  # nothing is out of scope
    component._predictor.temperature = 1000.0  # every probability about 1/3

    [message] = component.process([Message(data={"text": "where is my order 4242"})])

    unknown = message.get("unknown_input")
    assert unknown["reason"] == "low_confidence"
    assert unknown["confidence"] < 0.5
    assert message.get("intent") == {"name": "nlu_fallback",
                                     "confidence": unknown["confidence"]}
    assert len(message.get("intent_ranking")) == 4


def test_trusted_predictions_keep_their_intent(serving) -> None:
    component = serving(fallback_threshold=None)
    component._predictor.detector.threshold = float("inf")

    messages = component.process([Message(data={"text": t}) for t in
                                  ["where is my order 4242", "refund my money please",
                                   "hello hi", "asdkjh qwpoiu"]])

    assert [m.get("unknown_input")["reason"] for m in messages] == [""] * 4
    assert [m.get("intent")["name"] for m in messages][:3] == ["order_status", "refund", "greet"]
    assert all(m.get("intent")["name"] == m.get("unknown_input")["predicted_intent"]
               for m in messages)
