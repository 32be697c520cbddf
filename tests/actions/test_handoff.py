from __future__ import annotations

import logging

from rasa_sdk.events import ActiveLoop, SlotSet

from actions.handoff import ActionHandoff, ActionHandoffPending
from tests.actions.conftest import bot_event, texts, user_event

ANGRY_CONVERSATION = [
    user_event("where is my parcel, it's late", intent="track_delivery", label="negative",
               negative=0.7),
    bot_event("What is your order number?"),
    user_event("I told you already, this is useless", intent="deny", label="negative",
               negative=0.8),
    bot_event("Is there anything else I can help you with?"),
    user_event("worst shop ever", intent="out_of_scope", label="negative", negative=0.9),
]


async def test_escalation_ticket_holds_transcript_sentiment_intent_priority(
        services, dispatcher, make_tracker) -> None:
    tracker = make_tracker({"order_id": "12345", "escalation_reason": "persistently_negative"},
                           intent="out_of_scope", sender_id="alice", events=ANGRY_CONVERSATION)

    events = await ActionHandoff(services).run(dispatcher, tracker, {})

    reference = events[1]["value"]
    ticket = await services.backend.get_ticket(reference)
    assert (ticket.sender_id, ticket.reason, ticket.order_id) == (
        "alice", "persistently_negative", "12345")
    assert (ticket.intent, ticket.department, ticket.priority) == (
        "track_delivery", "logistics", "high")
    assert [line["text"] for line in ticket.transcript] == [
        "where is my parcel, it's late", "What is your order number?",
        "I told you already, this is useless", "Is there anything else I can help you with?",
        "worst shop ever"]
    assert [turn["negative"] for turn in ticket.sentiment_history] == [0.7, 0.8, 0.9]
    said = texts(dispatcher)[0]
    assert f"ticket {reference}" in said and "sorry" in said.lower()
    assert events == [SlotSet("handoff", True), SlotSet("ticket", reference),
                      SlotSet("unknown_handoff", False), SlotSet("requested_slot", None),
                      ActiveLoop(None)]


async def test_asking_for_a_human_is_a_normal_priority_request(services, dispatcher,
                                                               make_tracker) -> None:
    tracker = make_tracker(intent="request_human",
                           events=[user_event("a human please", intent="request_human")])

    events = await ActionHandoff(services).run(dispatcher, tracker, {})

    ticket = await services.backend.get_ticket(events[1]["value"])
    assert (ticket.reason, ticket.priority) == ("requested", "normal")
    assert texts(dispatcher)[0].startswith("I've passed our conversation")


async def test_messages_after_the_handoff_go_onto_the_ticket(services, dispatcher,
                                                             make_tracker) -> None:
    first = await ActionHandoff(services).run(
        dispatcher, make_tracker(events=[user_event("human!", intent="request_human")]), {})
    reference = first[1]["value"]
    later = make_tracker({"handoff": True, "ticket": reference}, intent="greet",
                         events=[user_event("human!"), user_event("hello? still there?")])

    assert await ActionHandoffPending(services).run(dispatcher, later, {}) == []

    ticket = await services.backend.get_ticket(reference)
    assert ticket.transcript[-1]["text"] == "hello? still there?"
    assert reference in texts(dispatcher)[-1]


async def test_a_failing_database_still_answers(services, dispatcher, make_tracker, caplog,
                                                database_url) -> None:
    await services.backend.close()
    services.backend.url = database_url.replace("shop.db", "missing/shop.db")

    with caplog.at_level(logging.ERROR):
        events = await ActionHandoff(services).run(dispatcher, make_tracker(), {})

    assert events == []
    assert "can't reach our order system" in texts(dispatcher)[0]
    assert "action_handoff failed" in caplog.text


async def test_three_messages_not_understood_hand_over_with_their_reason(
        services, dispatcher, make_tracker) -> None:
    tracker = make_tracker({"escalation_reason": "unknown_input", "unknown_handoff": True},
                           intent="nlu_fallback",
                           events=[user_event("asdkj qwpoe", intent="nlu_fallback")])

    events = await ActionHandoff(services).run(dispatcher, tracker, {})

    ticket = await services.backend.get_ticket(events[1]["value"])
    assert (ticket.reason, ticket.priority) == ("unknown_input", "normal")
    assert texts(dispatcher)[0].startswith("I've passed our conversation")
    assert SlotSet("unknown_handoff", False) in events
