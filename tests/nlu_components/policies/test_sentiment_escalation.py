"""SentimentEscalationPolicy on trackers built from events (no model, no network)."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from rasa.engine.storage.resource import Resource
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import InvalidConfigException

from nlu_components import SentimentEscalationPolicy

DOMAIN_YAML = """
version: "3.1"
intents: [greet, order_status, complaint, request_human, deny, continue_with_bot,
          EXTERNAL_ticket_closed, EXTERNAL_handoff_timeout]
slots:
  handoff:
    type: bool
    influence_conversation: true
    mappings:
      - type: custom
  escalation_reason:
    type: categorical
    values: [requested, strongly_negative, persistently_negative, unknown_input]
    influence_conversation: false
    mappings:
      - type: custom
actions: [action_handoff, action_handoff_pending]
responses:
  utter_greet: [{text: hi}]
"""


def _domain(data: dict | None = None) -> Domain:
    # Rasa 3.6 warns "slot auto-fill has been removed" on every domain it builds.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return Domain.from_dict(data) if data else Domain.from_yaml(DOMAIN_YAML)


DOMAIN = _domain()


@pytest.fixture
def make_policy(model_storage, execution_context):
    def make(**config: Any) -> SentimentEscalationPolicy:
        merged = {**SentimentEscalationPolicy.get_default_config(), **config}
        return SentimentEscalationPolicy.create(merged, model_storage, Resource("policy"),
                                                execution_context)
    return make


def said(text: str, intent: str = "order_status", negative: float | None = 0.1,
         intensity: float | None = 0.3) -> UserUttered:
    parse_data: dict[str, Any] = {"intent": {"name": intent, "confidence": 0.9}}
    if negative is not None:
        label = "negative" if negative >= 0.5 else "neutral"
        parse_data["sentiment"] = {"label": label, "confidence": max(negative, 1 - negative),
                                   "scores": {"negative": negative, "neutral": 1 - negative,
                                              "positive": 0.0}}
        if intensity is not None:
            parse_data["sentiment"]["intensity"] = intensity
    return UserUttered(text, intent=parse_data["intent"], parse_data=parse_data)


def tracker_after(*turns: UserUttered, extra: list | None = None) -> DialogueStateTracker:
    events: list = [ActionExecuted("action_session_start"), SessionStarted(),
                    ActionExecuted("action_listen")]
    for index, turn in enumerate(turns):
        events.append(turn)
        if index < len(turns) - 1:
            events += [ActionExecuted("utter_greet"), ActionExecuted("action_listen")]
    return DialogueStateTracker.from_events("customer", events + (extra or []), DOMAIN.slots)


def predicted(policy: SentimentEscalationPolicy, tracker: DialogueStateTracker) -> str | None:
    prediction = policy.predict_action_probabilities(tracker, DOMAIN)
    if max(prediction.probabilities) == 0:
        return None
    return DOMAIN.action_names_or_texts[prediction.max_confidence_index]


NEG, CALM = 0.9, 0.1
FURIOUS = (0.95, 0.99)  # (negative score, intensity)
MILD_BUT_SURE = (0.9995, 0.3)


@pytest.mark.parametrize(
    ("negatives", "expected", "reason"),
    [
        ([CALM], None, None),
        ([NEG], None, None),
        ([NEG, NEG], None, None),
        ([NEG, NEG, NEG], "action_handoff", "persistently_negative"),
        ([CALM, NEG, NEG, NEG], "action_handoff", "persistently_negative"),
        ([NEG, CALM, NEG, NEG], None, None),
        ([FURIOUS], "action_handoff", "strongly_negative"),
        ([MILD_BUT_SURE], None, None),  # a confident label is not an intense feeling
        ([NEG, None, NEG], None, None),  # a turn without sentiment breaks the run
    ],
)
def test_escalation_table(make_policy, negatives, expected, reason) -> None:
    tracker = tracker_after(*[
        said(f"turn {i}", negative=n[0], intensity=n[1]) if isinstance(n, tuple)
        else said(f"turn {i}", negative=n) for i, n in enumerate(negatives)])

    prediction = make_policy().predict_action_probabilities(tracker, DOMAIN)

    assert predicted(make_policy(), tracker) == expected
    if expected:
        assert prediction.optional_events == [SlotSet("escalation_reason", reason)]
        assert prediction.is_no_user_prediction  # wins over an active form too
        assert prediction.policy_priority == 7


def test_only_this_session_counts(make_policy) -> None:
    tracker = tracker_after(said("a", negative=NEG), said("b", negative=NEG), extra=[
        ActionExecuted("action_session_start"), SessionStarted(),
        ActionExecuted("action_listen"), said("c", negative=NEG)])

    assert predicted(make_policy(), tracker) is None


def test_after_a_handoff_every_message_goes_to_the_ticket(make_policy) -> None:
    tracker = tracker_after(said("hello?", intent="greet", negative=CALM),
                            extra=[SlotSet("handoff", True)])
    # The slot was set before the user message in a real conversation; order is irrelevant.
    assert predicted(make_policy(), tracker) == "action_handoff_pending"


@pytest.mark.parametrize("intent", ["continue_with_bot", "EXTERNAL_ticket_closed",
                                    "EXTERNAL_handoff_timeout"])
def test_messages_that_end_a_handoff_are_left_to_the_rules(make_policy, intent) -> None:
    tracker = tracker_after(said("x", intent=intent, negative=None),
                            extra=[SlotSet("handoff", True)])

    assert predicted(make_policy(), tracker) is None


def test_other_messages_during_a_handoff_still_go_to_the_ticket(make_policy) -> None:
    # Only the configured release intents end it; "no" or an order question do not.
    for intent in ("deny", "order_status", "request_human"):
        tracker = tracker_after(said("x", intent=intent), extra=[SlotSet("handoff", True)])
        assert predicted(make_policy(), tracker) == "action_handoff_pending", intent
    tracker = tracker_after(said("x", intent="continue_with_bot"),
                            extra=[SlotSet("handoff", True)])
    assert predicted(make_policy(release_intents=[]), tracker) == "action_handoff_pending"


def test_release_intents_change_nothing_outside_a_handoff(make_policy) -> None:
    # Three negative turns escalate whatever the last one's intent, as before.
    tracker = tracker_after(said("a", negative=NEG), said("b", negative=NEG),
                            said("c", intent="continue_with_bot", negative=NEG))
    assert predicted(make_policy(), tracker) == "action_handoff"
    tracker = tracker_after(said("x", intent="EXTERNAL_ticket_closed", negative=None))
    assert predicted(make_policy(), tracker) is None


@pytest.mark.parametrize("action", ["action_handoff", "action_handoff_pending"])
def test_listens_after_its_actions(make_policy, action) -> None:
    tracker = tracker_after(said("x"), extra=[ActionExecuted(action)])

    assert predicted(make_policy(), tracker) == "action_listen"


@pytest.mark.parametrize("intent", ["request_human", "restart", "session_start"])
def test_abstains_on_skipped_and_control_intents(make_policy, intent) -> None:
    tracker = tracker_after(*[said(f"{i}", intent=intent, negative=NEG) for i in range(3)])

    assert predicted(make_policy(), tracker) is None


def test_abstains_when_not_right_after_a_user_message(make_policy) -> None:
    tracker = tracker_after(*[said(f"{i}", negative=NEG) for i in range(3)],
                            extra=[ActionExecuted("utter_greet")])

    assert predicted(make_policy(), tracker) is None


def test_thresholds_come_from_config(make_policy) -> None:
    tracker = tracker_after(said("a", negative=0.7, intensity=0.65))

    assert predicted(make_policy(negative_turns=1), tracker) == "action_handoff"
    assert predicted(make_policy(), tracker) is None
    assert predicted(make_policy(strong_intensity=0.6), tracker) == "action_handoff"
    assert predicted(make_policy(negative_turns=1, negative_score=0.8), tracker) is None


@pytest.mark.parametrize(
    ("key", "value"),
    [("strong_intensity", 2), ("strong_intensity", "high"), ("negative_turns", 0),
     ("negative_turns", 1.5), ("negative_score", 0), ("skip_intents", "complaint"),
     ("release_intents", "continue_with_bot"), ("release_intents", [1]),
     ("handoff_action", 3), ("priority", "7")])
def test_bad_config_names_key_and_value(make_policy, key, value) -> None:
    with pytest.raises(InvalidConfigException, match=key):
        make_policy(**{key: value})


def test_unknown_option_is_refused(make_policy) -> None:
    with pytest.raises(InvalidConfigException, match="negative_turn"):
        make_policy(negative_turn=3)


@pytest.mark.parametrize(("missing", "key"), [("action_handoff_pending", "pending_action"),
                                              ("handoff", "handoff_slot")])
def test_training_checks_the_domain(make_policy, missing, key) -> None:
    domain = _domain({**DOMAIN.as_dict(),
                      "actions": [a for a in DOMAIN.user_actions if a != missing],
                      "slots": {k: v for k, v in DOMAIN.as_dict()["slots"].items()
                                if k != missing}})

    with pytest.raises(InvalidConfigException, match=key):
        make_policy().train([], domain)
