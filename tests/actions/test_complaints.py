from __future__ import annotations

import logging

import pytest
from rasa_sdk.events import SlotSet

from actions.complaints import ActionFileComplaint, ValidateComplaintForm, routing
from actions.nlu_client import Parsed
from actions.settings import EscalationRules
from tests.actions.conftest import FakeClassifier, texts, user_event

DESCRIPTION = "the coffee maker from order 55120 leaks water all over the counter"


def parsed(intent: str, label: str, negative: float, intensity: float = 0.4) -> Parsed:
    return Parsed(intent, 0.9, {"label": label, "confidence": negative,
                                "scores": {"negative": negative, "neutral": 1 - negative,
                                           "positive": 0.0}, "intensity": intensity})


@pytest.mark.parametrize(
    ("answer", "expected"),
    [(parsed("return_item", "negative", 0.95, intensity=0.9), ("returns", "urgent", True)),
     (parsed("return_item", "negative", 0.9995, intensity=0.4), ("returns", "high", True)),
     (parsed("payment_problem", "negative", 0.8), ("billing", "high", True)),
     (parsed("track_delivery", "neutral", 0.1), ("logistics", "normal", True)),
     (parsed("greet", "neutral", 0.1), ("customer_service", "normal", True)),
     (Parsed("order_status", 0.9, None), ("logistics", "normal", True)),
     (Parsed("complaint", 0.9, None, (("complaint", 0.9), ("return_item", 0.06))),
      ("returns", "normal", True)),
     (Parsed("complaint", 0.9, None, (("complaint", 0.9), ("return_item", 0.01))),
      ("customer_service", "normal", True)),
     (None, ("unrouted", "normal", False))])
def test_routing(answer, expected) -> None:
    assert routing(answer, EscalationRules()) == expected


async def test_complaint_is_classified_and_routed(services, dispatcher, make_tracker) -> None:
    services.classifier = FakeClassifier(parsed("return_item", "negative", 0.8))
    tracker = make_tracker({"complaint_description": DESCRIPTION}, intent="complaint",
                           events=[user_event(DESCRIPTION, intent="complaint")])

    events = await ActionFileComplaint(services).run(dispatcher, tracker, {})

    reference = events[2]["value"]
    ticket = await services.backend.get_ticket(reference)
    assert services.classifier.texts == [DESCRIPTION]
    assert (ticket.reason, ticket.department, ticket.priority, ticket.routed) == (
        "complaint", "returns", "high", True)
    assert (ticket.order_id, ticket.description) == ("55120", DESCRIPTION)
    assert ticket.transcript[0]["text"] == DESCRIPTION
    assert f"ticket {reference} for our returns team" in texts(dispatcher)[0]
    assert events[:2] == [SlotSet("complaint_description", None), SlotSet("handoff", True)]


async def test_classifier_failure_still_creates_an_unrouted_ticket(services, dispatcher,
                                                                   make_tracker, caplog) -> None:
    services.classifier = FakeClassifier(None)
    tracker = make_tracker({"complaint_description": DESCRIPTION}, intent="complaint")

    with caplog.at_level(logging.ERROR):
        events = await ActionFileComplaint(services).run(dispatcher, tracker, {})

    ticket = await services.backend.get_ticket(events[2]["value"])
    assert (ticket.department, ticket.routed, ticket.description) == (
        "unrouted", False, DESCRIPTION)
    assert "for our customer service team" in texts(dispatcher)[0]
    assert "not routed" in caplog.text


@pytest.mark.parametrize(
    ("value", "expected"),
    [("I want to complain", None), ("I want to make a formal complaint", None),
     ("bad", None), ("", None), (None, None), ("the parcel is late", "the parcel is late"),
     ("  the parcel   arrived broken  ", "the parcel arrived broken"),
     ("x " * 10_000, ("x " * 2500).strip())],
    ids=lambda value: repr(value)[:30])
async def test_description_says_what_went_wrong(dispatcher, make_tracker, value,
                                                expected) -> None:
    result = await ValidateComplaintForm().validate_complaint_description(
        value, dispatcher, make_tracker(), {})

    assert result == {"complaint_description": expected}
