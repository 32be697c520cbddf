"""Who may act on an order: verified customers, proofs of ownership, their rate limit."""

from __future__ import annotations

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.exceptions import BackendError
from actions.forms import LOCKED_TEXT, NO_MATCH_TEXT, ValidateCancelForm, ValidateOrderForm
from actions.orders import ActionCancelOrder
from actions.ownership import order_owner, parse_proof, proof_scopes, verified_customer
from tests.actions.conftest import DEMO_OWNERS, texts, verified_user_event

FORM_SLOTS = ["order_id", "order_proof", "cancel_confirmed"]


@pytest.mark.parametrize(("text", "expected"), [
    ("alex@example.com", ("alex@example.com", "")),
    ("it is Alex@Example.COM thanks", ("alex@example.com", "")),
    ("m14 5rt", ("", "M145RT")), ("LS6-2AB.", ("", "LS62AB")), ("T12 X8P2", ("", "T12X8P2")),
    ("10115", ("", "10115")), ("no idea", ("", "")), ("yes", ("", "")), ("", ("", "")),
    (None, ("", "")), ("a" * 5000, ("", "")),
    # Chinese around the proof: not part of the address or the postcode.
    ("我的邮箱是alex@example.com", ("alex@example.com", "")),
    ("邮编是M14 5RT。", ("", "M145RT")), ("不知道", ("", "")),
])
def test_parse_proof(text, expected) -> None:
    assert parse_proof(text) == expected


@pytest.mark.parametrize("order_id", ["48213", "99999"])
async def test_an_anonymous_order_number_is_asked_for_proof_whether_it_exists_or_not(
        services, dispatcher, make_tracker, order_id) -> None:
    result = await ValidateOrderForm(services).validate_order_id(
        order_id, dispatcher, make_tracker(anonymous=True), {})

    assert result == {"order_id": order_id, "order_proof": None}
    assert texts(dispatcher) == []  # nothing says whether the order exists


@pytest.mark.parametrize("proof", ["sam@example.com", "SAM@example.com", "ls6 2ab"])
async def test_the_e_mail_or_postcode_on_the_order_proves_it(services, dispatcher,
                                                              make_tracker, proof) -> None:
    tracker = make_tracker({"order_id": "48213"}, anonymous=True)

    result = await ValidateOrderForm(services).validate_order_proof(proof, dispatcher,
                                                                    tracker, {})

    assert result == {"order_proof": "verified", "verified_orders": {"48213": "C-002"}}


@pytest.mark.parametrize(("order_id", "proof"), [
    ("48213", "alex@example.com"),  # someone else's e-mail
    ("48213", "M14 5RT"),  # someone else's postcode
    ("99999", "sam@example.com"),  # no such order
])
async def test_not_your_order_and_no_such_order_get_the_same_answer(
        services, dispatcher, make_tracker, order_id, proof) -> None:
    tracker = make_tracker({"order_id": order_id}, anonymous=True)

    result = await ValidateOrderForm(services).validate_order_proof(proof, dispatcher,
                                                                    tracker, {})

    assert result == {"order_proof": None, "order_id": None}
    assert texts(dispatcher) == [NO_MATCH_TEXT.format(order_id=order_id)]


async def test_an_answer_that_is_no_proof_does_not_count(services, dispatcher,
                                                         make_tracker) -> None:
    tracker = make_tracker({"order_id": "48213"}, anonymous=True)

    for _ in range(8):
        result = await ValidateOrderForm(services).validate_order_proof(
            "I don't know", dispatcher, tracker, {})
        assert result == {"order_proof": None}

    assert await services.backend.proof_locked_until(proof_scopes("test-user", "48213")) is None


async def test_five_failed_proofs_lock_the_conversation_and_the_order(services, make_tracker
                                                                     ) -> None:
    form = ValidateOrderForm(services)
    attacker = make_tracker({"order_id": "48213"}, anonymous=True, sender_id="attacker")
    for attempt in range(5):
        dispatcher = CollectingDispatcher()
        await form.validate_order_proof(f"guess{attempt}@example.com", dispatcher, attacker, {})
    locked = LOCKED_TEXT.format(minutes=15)
    assert texts(dispatcher)[-1] == locked

    # Locked: even the right e-mail is refused now ...
    dispatcher = CollectingDispatcher()
    result = await form.validate_order_proof("sam@example.com", dispatcher, attacker, {})
    assert result == {"order_proof": None, "order_id": None}
    assert texts(dispatcher) == [locked]
    # ... and so is this order from a new conversation (per-order limit) ...
    dispatcher = CollectingDispatcher()
    other = make_tracker({"order_id": "48213"}, anonymous=True, sender_id="another")
    assert await form.validate_order_proof("sam@example.com", dispatcher, other, {}) == {
        "order_proof": None, "order_id": None}
    # ... and any other order from the locked conversation (per-conversation limit).
    dispatcher = CollectingDispatcher()
    assert await form.validate_order_id("36402", dispatcher, attacker, {}) == {"order_id": None}
    assert texts(dispatcher) == [locked]


async def test_the_lock_ends_after_its_time(services, make_tracker) -> None:
    form = ValidateOrderForm(services)
    tracker = make_tracker({"order_id": "48213"}, anonymous=True)
    for attempt in range(5):
        await form.validate_order_proof(f"x{attempt}@example.com", CollectingDispatcher(),
                                        tracker, {})
    scopes = proof_scopes("test-user", "48213")
    assert await services.backend.proof_locked_until(scopes)

    await services.backend._run(lambda c: c.exec_driver_sql(  # noqa: SLF001 - wind the clock
        "UPDATE proof_attempts SET locked_until = '2000-01-01T00:00:00+00:00'"), write=True)

    assert await services.backend.proof_locked_until(scopes) is None
    result = await form.validate_order_proof("sam@example.com", CollectingDispatcher(),
                                             tracker, {})
    assert result["order_proof"] == "verified"


async def test_a_verified_customer_needs_no_proof_for_their_own_orders(services, dispatcher,
                                                                      make_tracker) -> None:
    own = make_tracker({"order_id": "48213"}, anonymous=True,
                       events=[verified_user_event("cancel it", customer_id="C-002")])
    foreign = make_tracker({"order_id": "12345"}, anonymous=True,
                           events=[verified_user_event("cancel it", customer_id="C-002")])
    form = ValidateCancelForm(services)

    assert await form.required_slots(FORM_SLOTS, dispatcher, own, {}) == [
        "order_id", "cancel_confirmed"]
    assert await form.required_slots(FORM_SLOTS, dispatcher, foreign, {}) == FORM_SLOTS
    assert await form.validate_order_id("48213", dispatcher, own, {}) == {"order_id": "48213"}
    assert await form.validate_order_id("12345", dispatcher, foreign, {}) == {
        "order_id": "12345", "order_proof": None}


async def test_a_dingtalk_user_is_a_customer_through_the_identity_table(services,
                                                                       make_tracker) -> None:
    await services.backend._run(lambda c: c.exec_driver_sql(  # noqa: SLF001 - link an account
        "INSERT INTO channel_identities VALUES ('dingtalk', 'staff-7', 'C-001')"), write=True)
    linked = make_tracker(anonymous=True, events=[
        verified_user_event("hi", channel="dingtalk", external_id="staff-7")])
    unlinked = make_tracker(anonymous=True, events=[
        verified_user_event("hi", channel="dingtalk", external_id="staff-8")])

    assert await verified_customer(linked, services.backend) == "C-001"
    assert await order_owner(linked, services.backend, "12345") == "C-001"
    assert await verified_customer(unlinked, services.backend) is None
    assert await order_owner(unlinked, services.backend, "12345") is None


async def test_identity_in_a_slot_or_an_older_message_does_not_count(services,
                                                                    make_tracker) -> None:
    # Only the latest message's channel metadata counts; a customer cannot type it.
    tracker = make_tracker({"verified_identity": {"customer_id": "C-001"}}, anonymous=True,
                           events=[verified_user_event("hi", customer_id="C-001"),
                                   {"event": "user", "text": "cancel 12345", "metadata": {}}])

    assert await order_owner(tracker, services.backend, "12345") is None


async def test_an_unproven_order_is_not_cancelled_even_with_its_slot_set(
        services, dispatcher, make_tracker) -> None:
    tracker = make_tracker({"order_id": "48213", "cancel_confirmed": True}, anonymous=True)

    await ActionCancelOrder(services).run(dispatcher, tracker, {})

    assert texts(dispatcher) == ["Sorry, I couldn't find that order."]
    assert (await services.backend.get_order("48213", "C-002")).status == "processing"


async def test_the_database_refuses_another_customers_order(services) -> None:
    backend = services.backend

    assert await backend.get_order("48213", "C-001") is None
    with pytest.raises(BackendError):
        await backend.cancel_order("48213", "C-001")
    with pytest.raises(BackendError):
        await backend.start_return("55120", "C-001")
    assert (await backend.get_order("48213", DEMO_OWNERS["48213"])).status == "processing"
