from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from rasa_sdk.events import (
    ActionExecuted,
    ActiveLoop,
    FollowupAction,
    ReminderCancelled,
    SessionStarted,
    SlotSet,
)
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import text

from actions.backend import NewTicket
from actions.complaints import ActionFileComplaint
from actions.exceptions import SettingsError
from actions.handoff import (
    ActionContinueWithBot,
    ActionHandoff,
    ActionHandoffPending,
    ActionHandoffTimeout,
    ActionReleaseHandoff,
    ActionStoreSatisfaction,
    duration,
    released,
    timeout_reminder_name,
)
from actions.session import ActionSessionStart
from actions.settings import Settings
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
    assert events[:2] == [SlotSet("handoff", True), SlotSet("ticket", reference)]
    assert events[3:] == [SlotSet("unknown_handoff", False), SlotSet("requested_slot", None),
                          ActiveLoop(None)]
    assert events[2]["event"] == "reminder"  # the timeout (see below)


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


# -- the hand-over's end ------------------------------------------------------------

DOMAIN = {"session_config": {"session_expiration_time": 60,
                             "carry_over_slots_to_new_session": True}}


async def open_ticket(services, sender_id: str = "alice") -> str:
    ticket = await services.backend.create_ticket(NewTicket(sender_id=sender_id,
                                                            reason="requested"))
    return ticket.reference


def external(make_tracker, intent: str, reference: str | None, *, sender_id: str = "alice",
             slots: dict | None = None, text: str | None = None, events: list | None = None):
    """The tracker as Rasa sends it after trigger_intent or a reminder (text "EXTERNAL: ...")."""
    entities = [{"entity": "ticket_reference", "value": reference}] if reference else []
    return make_tracker(slots, intent=intent, entities=entities, sender_id=sender_id,
                        text=f"EXTERNAL: {intent}" if text is None else text, events=events)


def handed_over_slots(reference: str) -> dict:
    return {"handoff": True, "ticket": reference, "escalation_reason": "strongly_negative",
            "unknown_handoff": False}


RELEASE_SLOTS = [SlotSet("handoff", False), SlotSet("unknown_handoff", False),
                 SlotSet("escalation_reason", None)]


async def test_a_handoff_schedules_its_timeout_reminder(services, dispatcher,
                                                        make_tracker) -> None:
    services.settings = replace(services.settings, handoff_timeout_s=600)
    before = datetime.now(timezone.utc)

    events = await ActionHandoff(services).run(dispatcher, make_tracker(), {})

    reference = events[1]["value"]
    reminder = events[2]
    assert (reminder["intent"], reminder["name"], reminder["kill_on_user_msg"]) == (
        "EXTERNAL_handoff_timeout", f"handoff_timeout_{reference}", False)
    assert reminder["entities"] == {"ticket_reference": reference}
    due = datetime.fromisoformat(reminder["date_time"])
    assert before + timedelta(seconds=599) <= due <= datetime.now(timezone.utc) + timedelta(
        seconds=601)
    assert "within 10 minutes, I'll tell you and help you again" in texts(dispatcher)[0]


async def test_a_complaint_schedules_the_timeout_too(services, dispatcher, make_tracker) -> None:
    tracker = make_tracker({"complaint_description": "the coffee maker leaks all over"},
                           intent="complaint")

    events = await ActionFileComplaint(services).run(dispatcher, tracker, {})

    reference = events[2]["value"]
    assert events[1:3] == [SlotSet("handoff", True), SlotSet("ticket", reference)]
    assert events[3]["name"] == timeout_reminder_name(reference)
    assert events[3]["kill_on_user_msg"] is False


async def test_a_closed_ticket_releases_the_handoff(services, dispatcher, make_tracker) -> None:
    reference = await open_ticket(services)
    tracker = external(make_tracker, "EXTERNAL_ticket_closed", reference,
                       slots=handed_over_slots(reference))

    events = await ActionReleaseHandoff(services).run(dispatcher, tracker, {})

    assert events == [*RELEASE_SLOTS, ReminderCancelled(name=f"handoff_timeout_{reference}")]
    assert (await services.backend.get_ticket(reference)).status == "closed"
    assert texts(dispatcher) == [f"Our colleague has closed your ticket {reference}; I'm here "
                                 "again if you need anything."]


@pytest.mark.parametrize("whose", ["bob", None, "unknown"])
async def test_a_ticket_of_another_conversation_is_not_closed(services, dispatcher, make_tracker,
                                                              caplog, whose) -> None:
    own = await open_ticket(services, "alice")
    other = {"bob": await open_ticket(services, "bob"), None: None, "unknown": "T-00000000"}[whose]
    tracker = external(make_tracker, "EXTERNAL_ticket_closed", other,
                       slots=handed_over_slots(own))

    with caplog.at_level(logging.WARNING):
        events = await ActionReleaseHandoff(services).run(dispatcher, tracker, {})

    assert events == [] and texts(dispatcher) == []
    assert "refused to close ticket" in caplog.text
    assert (await services.backend.get_ticket(own)).status == "open"
    if whose == "bob":
        assert (await services.backend.get_ticket(other)).status == "open"


@pytest.mark.parametrize("intent", ["EXTERNAL_ticket_closed", "EXTERNAL_handoff_timeout"])
async def test_an_external_intent_typed_by_the_customer_is_ignored(services, dispatcher,
                                                                   make_tracker, intent) -> None:
    reference = await open_ticket(services)
    forged = f'/{intent}{{"ticket_reference": "{reference}"}}'
    action = ActionReleaseHandoff if intent == "EXTERNAL_ticket_closed" else ActionHandoffTimeout

    during = await action(services).run(dispatcher, external(
        make_tracker, intent, reference, slots=handed_over_slots(reference), text=forged), {})
    after = await action(services).run(dispatcher, external(
        make_tracker, intent, reference, slots={"ticket": reference}, text=forged), {})

    assert during == [FollowupAction("action_handoff_pending")]  # as any message then
    assert after == [FollowupAction("utter_default")]
    assert (await services.backend.get_ticket(reference)).status == "open"


async def test_an_earlier_ticket_closed_later_is_announced_once(services, dispatcher,
                                                                make_tracker) -> None:
    earlier = await open_ticket(services)
    current = await open_ticket(services)
    tracker = external(make_tracker, "EXTERNAL_ticket_closed", earlier,
                       slots=handed_over_slots(current))

    first = await ActionReleaseHandoff(services).run(dispatcher, tracker, {})
    again = await ActionReleaseHandoff(services).run(dispatcher, tracker, {})

    # The hand-over of the current ticket goes on.
    assert first == [ReminderCancelled(name=timeout_reminder_name(earlier))]
    assert again == []
    assert texts(dispatcher) == [f"Our colleague has closed your ticket {earlier}."]
    assert (await services.backend.get_ticket(current)).status == "open"


async def test_no_reply_in_time_releases_the_handoff(services, dispatcher, make_tracker) -> None:
    reference = await open_ticket(services)
    await services.backend.add_ticket_message(reference, {"role": "customer", "text": "hello?"})
    tracker = external(make_tracker, "EXTERNAL_handoff_timeout", reference,
                       slots=handed_over_slots(reference))

    events = await ActionHandoffTimeout(services).run(dispatcher, tracker, {})

    assert events == released(reference)
    assert events[:3] == RELEASE_SLOTS
    [said] = texts(dispatcher)
    assert said.startswith("No colleague has been able to reply yet, sorry.")
    assert f"ticket {reference} stays open" in said and "help you again" in said
    assert (await services.backend.get_ticket(reference)).status == "open"


async def test_a_colleagues_reply_keeps_the_handoff(services, dispatcher, make_tracker) -> None:
    on_ticket = await open_ticket(services)
    await services.backend.add_ticket_message(on_ticket, {"role": "agent", "text": "Hi, Sam"})
    in_chat = await open_ticket(services)
    agent_event = {"event": "agent", "text": "Hi, this is Sam", "timestamp": 1_790_000_100.0}

    by_ticket = await ActionHandoffTimeout(services).run(dispatcher, external(
        make_tracker, "EXTERNAL_handoff_timeout", on_ticket,
        slots=handed_over_slots(on_ticket)), {})
    by_event = await ActionHandoffTimeout(services).run(dispatcher, external(
        make_tracker, "EXTERNAL_handoff_timeout", in_chat, slots=handed_over_slots(in_chat),
        events=[{"event": "slot", "name": "ticket", "value": in_chat}, agent_event]), {})

    assert by_ticket == by_event == [] and texts(dispatcher) == []


async def test_an_agent_event_before_this_handoff_does_not_count(services, dispatcher,
                                                                 make_tracker) -> None:
    reference = await open_ticket(services)
    events = [{"event": "agent", "text": "earlier hand-over"},
              {"event": "slot", "name": "ticket", "value": reference}]

    released_ = await ActionHandoffTimeout(services).run(dispatcher, external(
        make_tracker, "EXTERNAL_handoff_timeout", reference, slots=handed_over_slots(reference),
        events=events), {})

    assert released_[:3] == RELEASE_SLOTS


@pytest.mark.parametrize("slots", [{"handoff": False}, {"handoff": True, "ticket": "T-NEWER"}])
async def test_a_stale_timeout_changes_nothing(services, dispatcher, make_tracker,
                                               slots) -> None:
    reference = await open_ticket(services)

    events = await ActionHandoffTimeout(services).run(dispatcher, external(
        make_tracker, "EXTERNAL_handoff_timeout", reference, slots=slots), {})

    assert events == [] and texts(dispatcher) == []


async def test_a_timeout_on_a_ticket_closed_meanwhile_says_so(services, dispatcher,
                                                              make_tracker) -> None:
    reference = await open_ticket(services)
    await services.backend.close_ticket(reference)

    events = await ActionHandoffTimeout(services).run(dispatcher, external(
        make_tracker, "EXTERNAL_handoff_timeout", reference,
        slots=handed_over_slots(reference)), {})

    assert events[:3] == RELEASE_SLOTS
    assert texts(dispatcher) == [f"Your ticket {reference} has been closed; I'm here again if "
                                 "you need anything."]


async def test_a_timeout_with_the_database_down_looks_again_later(
        services, dispatcher, make_tracker, caplog, database_url) -> None:
    reference = await open_ticket(services)
    await services.backend.close()
    services.backend.url = database_url.replace("shop.db", "missing/shop.db")

    with caplog.at_level(logging.ERROR):
        events = await ActionHandoffTimeout(services).run(dispatcher, external(
            make_tracker, "EXTERNAL_handoff_timeout", reference,
            slots=handed_over_slots(reference)), {})

    [reminder] = events
    assert reminder["event"] == "reminder" and reminder["name"] == timeout_reminder_name(reference)
    assert texts(dispatcher) == []
    assert "looking again later" in caplog.text


async def test_the_customer_goes_back_to_the_assistant(services, dispatcher,
                                                       make_tracker) -> None:
    reference = await open_ticket(services)
    tracker = make_tracker(handed_over_slots(reference), intent="continue_with_bot",
                           events=[user_event("never mind, I'll keep chatting with the bot",
                                              intent="continue_with_bot")])

    events = await ActionContinueWithBot(services).run(dispatcher, tracker, {})

    assert events == released(reference)
    [said] = texts(dispatcher)
    assert said.startswith("Alright, you're back with me.")
    assert f"ticket {reference} stays open" in said
    ticket = await services.backend.get_ticket(reference)
    assert ticket.status == "open"
    assert ticket.transcript[-1]["text"] == "never mind, I'll keep chatting with the bot"


async def test_going_back_to_the_assistant_works_with_the_database_down(
        services, dispatcher, make_tracker, database_url) -> None:
    reference = await open_ticket(services)
    await services.backend.close()
    services.backend.url = database_url.replace("shop.db", "missing/shop.db")
    tracker = make_tracker(handed_over_slots(reference), intent="continue_with_bot",
                           events=[user_event("cancel the human request")])

    assert (await ActionContinueWithBot(services).run(dispatcher, tracker, {}))[:3] == \
        RELEASE_SLOTS


async def test_continue_with_bot_outside_a_handoff_just_answers(services, dispatcher,
                                                                make_tracker) -> None:
    events = await ActionContinueWithBot(services).run(
        dispatcher, make_tracker({"handoff": False}, intent="continue_with_bot"), {})

    assert events == []
    assert texts(dispatcher) == ["Sure, I'm here. What can I help you with?"]


async def test_a_new_session_keeps_the_slots_but_not_the_handoff(dispatcher,
                                                                 make_tracker) -> None:
    tracker = make_tracker({"order_id": "12345", "email": "a@example.com", "product": None,
                            "session_started_metadata": {"channel": "webchat"},
                            **handed_over_slots("T-ABCD1234"), "unknown_handoff": True},
                           anonymous=True)

    events = await ActionSessionStart().run(dispatcher, tracker, DOMAIN)

    assert events == [SessionStarted(), SlotSet("order_id", "12345"),
                      SlotSet("email", "a@example.com"),
                      SlotSet("session_started_metadata", {"channel": "webchat"}),
                      SlotSet("ticket", "T-ABCD1234"),
                      ReminderCancelled(name="handoff_timeout_T-ABCD1234"),
                      ActionExecuted("action_listen")]
    assert texts(dispatcher) == []


async def test_a_new_session_without_carry_over_keeps_nothing(dispatcher, make_tracker) -> None:
    domain = {"session_config": {"carry_over_slots_to_new_session": False}}

    events = await ActionSessionStart().run(
        dispatcher, make_tracker({"order_id": "12345", "handoff": False}), domain)

    assert events == [SessionStarted(), ActionExecuted("action_listen")]


async def test_close_ticket_in_the_database(services) -> None:
    reference = await open_ticket(services)

    closed = await services.backend.close_ticket(reference)

    assert (closed.reference, closed.status) == (reference, "closed")
    assert (await services.backend.get_ticket(reference)).status == "closed"
    assert await services.backend.close_ticket("T-00000000") is None


@pytest.mark.parametrize(("seconds", "said"), [(900, "15 minutes"), (3600, "an hour"),
                                               (7200, "2 hours"), (90, "90 seconds"),
                                               (1, "a second"), (60, "60 seconds")])
def test_timeouts_read_naturally(seconds, said) -> None:
    assert duration(seconds) == said


def test_the_timeout_setting() -> None:
    assert Settings().handoff_timeout_s == 900
    assert Settings.from_env({"HANDOFF_TIMEOUT_S": "30"}).handoff_timeout_s == 30.0
    assert "handoff_timeout_s" in Settings().redacted()


@pytest.mark.parametrize("value", ["0", "-5", "0.5", "abc", "inf", "nan", "604801"])
def test_a_bad_timeout_setting_is_named(value) -> None:
    with pytest.raises(SettingsError, match="HANDOFF_TIMEOUT_S"):
        Settings.from_env({"HANDOFF_TIMEOUT_S": value})


# -- the agent console's side (console/): a claimed ticket, its end, the rating ------------


async def claim(services, reference: str, agent: str = "A-1") -> None:
    """What the console does when an agent claims the ticket."""
    engine = await services.backend._connection()  # noqa: SLF001 - the test's own database
    async with engine.begin() as connection:
        await connection.execute(text(
            "UPDATE tickets SET assigned_agent = :a WHERE reference = :r"),
            {"a": agent, "r": reference})


async def agent_line(services, reference: str, line: str, delivered: int) -> None:
    engine = await services.backend._connection()  # noqa: SLF001
    async with engine.begin() as connection:
        await connection.execute(text(
            "INSERT INTO ticket_messages (reference, role, text, created_at, delivered, author) "
            "VALUES (:r, 'agent', :t, '2026-11-30T00:00:00+00:00', :d, 'A-1')"),
            {"r": reference, "t": line, "d": delivered})


async def test_while_an_agent_holds_the_ticket_the_assistant_is_silent(
        services, dispatcher, make_tracker) -> None:
    reference = await open_ticket(services)
    await claim(services, reference)
    tracker = make_tracker(handed_over_slots(reference), sender_id="alice",
                           events=[user_event("hello? anyone there")])

    events = await ActionHandoffPending(services).run(dispatcher, tracker, {})

    # Not empty: ActionFailurePolicy would read an empty result as a failure.
    assert events == [SlotSet("handoff", True)] and texts(dispatcher) == []
    ticket = await services.backend.get_ticket(reference)
    assert ticket.transcript[-1]["text"] == "hello? anyone there"


async def test_agent_lines_not_pushed_yet_come_with_the_next_answer_once(
        services, dispatcher, make_tracker) -> None:
    reference = await open_ticket(services)
    await claim(services, reference)
    await agent_line(services, reference, "Dana: pushed already", delivered=1)
    await agent_line(services, reference, "Dana: I've refunded you", delivered=0)
    await agent_line(services, reference, "Dana: anything else?", delivered=0)
    tracker = make_tracker(handed_over_slots(reference), sender_id="alice",
                           events=[user_event("ok")])

    await ActionHandoffPending(services).run(dispatcher, tracker, {})
    first = texts(dispatcher)
    again = CollectingDispatcher()
    await ActionHandoffPending(services).run(again, tracker, {})

    assert first == ["Dana: I've refunded you", "Dana: anything else?"]
    assert texts(again) == []


async def test_a_claimed_ticket_outlives_the_timeout(services, dispatcher, make_tracker) -> None:
    reference = await open_ticket(services)
    await claim(services, reference)

    events = await ActionHandoffTimeout(services).run(dispatcher, external(
        make_tracker, "EXTERNAL_handoff_timeout", reference,
        slots=handed_over_slots(reference)), {})

    assert events == [] and texts(dispatcher) == []


async def test_a_hand_back_greets_and_asks_for_a_rating(services, dispatcher,
                                                        make_tracker) -> None:
    reference = await open_ticket(services)
    await claim(services, reference)
    tracker = external(make_tracker, "EXTERNAL_ticket_closed", reference,
                       slots=handed_over_slots(reference))
    tracker.latest_message["entities"].append({"entity": "ticket_outcome",
                                               "value": "handback"})

    events = await ActionReleaseHandoff(services).run(dispatcher, tracker, {})

    assert events[:3] == RELEASE_SLOTS
    greeting, question = dispatcher.messages
    assert greeting["text"].startswith("Hello again, it's the shop assistant.")
    assert question["text"] == "How happy are you with the help you got from our colleague?"
    assert [b["payload"] for b in question["buttons"]] == [
        f'/rate_support{{"rating": "{n}"}}' for n in (5, 4, 3, 2, 1)]
    assert (await services.backend.get_ticket(reference)).status == "closed"


async def test_an_unclaimed_ticket_closed_gets_no_rating_question(services, dispatcher,
                                                                  make_tracker) -> None:
    reference = await open_ticket(services)

    await ActionReleaseHandoff(services).run(dispatcher, external(
        make_tracker, "EXTERNAL_ticket_closed", reference, slots=handed_over_slots(reference)),
        {})

    assert not any(m.get("buttons") for m in dispatcher.messages)


def rating(make_tracker, reference: str | None, value: str, sender_id: str = "alice",
           handoff: bool = False):
    return make_tracker({"ticket": reference, "handoff": handoff}, intent="rate_support",
                        entities=[{"entity": "rating", "value": value}], sender_id=sender_id,
                        text=f'/rate_support{{"rating": "{value}"}}')


async def test_the_rating_is_stored_on_the_customers_closed_ticket_once(
        services, dispatcher, make_tracker) -> None:
    reference = await open_ticket(services)
    await services.backend.close_ticket(reference)

    await ActionStoreSatisfaction(services).run(dispatcher, rating(make_tracker, reference, "4"),
                                                {})
    await ActionStoreSatisfaction(services).run(dispatcher, rating(make_tracker, reference, "1"),
                                                {})

    assert (await services.backend.get_ticket(reference)).extra["satisfaction"] == 4
    assert texts(dispatcher)[0].startswith("Thank you for telling us!")
    assert texts(dispatcher)[1].startswith("Thanks! There's nothing to rate just now")


@pytest.mark.parametrize("case", ["open ticket", "another's ticket", "not 1-5", "no ticket"])
async def test_a_rating_that_is_not_due_is_not_stored(services, dispatcher, make_tracker,
                                                      case: str) -> None:
    reference = await open_ticket(services)
    if case != "open ticket":
        await services.backend.close_ticket(reference)
    tracker = {"open ticket": rating(make_tracker, reference, "5"),
               "another's ticket": rating(make_tracker, reference, "5", sender_id="mallory"),
               "not 1-5": rating(make_tracker, reference, "9"),
               "no ticket": rating(make_tracker, None, "5")}[case]

    await ActionStoreSatisfaction(services).run(dispatcher, tracker, {})

    assert (await services.backend.get_ticket(reference)).extra["satisfaction"] is None
    assert texts(dispatcher)[0].startswith("Thanks! There's nothing to rate just now")
