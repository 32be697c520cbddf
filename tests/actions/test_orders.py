from __future__ import annotations

import pytest
from rasa_sdk.events import SlotSet

from actions.orders import (
    ActionCancelOrder,
    ActionChangeAddress,
    ActionHandleOrderRequest,
    ActionProductAvailability,
)
from tests.actions.conftest import DEMO_OWNERS, texts


@pytest.mark.parametrize(
    ("order_id", "request_", "expected"),
    [
        ("12345", "order_status", "has shipped with DHL and should arrive on 2026-12-03"),
        ("48213", "order_status", "is being prepared"),
        ("12345", "track_delivery", "tracking number JD014600006281"),
        ("48213", "track_delivery", "hasn't shipped yet"),
        ("55120", "refund_status", "is being processed"),
        ("90871", "refund_status", "has been paid"),
        ("12345", "refund_status", "There is no refund on order 12345"),
        ("55120", "return_item", "Your return reference is R-55120-"),
        ("48213", "return_item", "you can cancel it instead"),
        ("12345", "return_item", "still on its way"),
        ("90871", "return_item", "nothing to return"),
    ],
)
async def test_order_requests(services, dispatcher, make_tracker, order_id, request_,
                              expected) -> None:
    tracker = make_tracker({"order_id": order_id, "order_request": request_})

    events = await ActionHandleOrderRequest(services).run(dispatcher, tracker, {})

    assert events == []
    assert expected in texts(dispatcher)[0]


async def test_unknown_order_is_said_and_forgotten(services, dispatcher, make_tracker) -> None:
    events = await ActionHandleOrderRequest(services).run(
        dispatcher, make_tracker({"order_id": "99999"}), {})

    assert "couldn't find" in texts(dispatcher)[0]
    assert events == [SlotSet("order_id", None)]


@pytest.mark.parametrize(
    ("order_id", "confirmed", "expected", "status"),
    [
        ("48213", True, "Done: order 48213 is cancelled", "cancelled"),
        ("48213", False, "utter_keep_order", "processing"),
        ("12345", True, "already shipped and can't be cancelled", "shipped"),
        ("55120", False, "already delivered", "delivered"),
    ],
)
async def test_cancel_order(services, dispatcher, make_tracker, order_id, confirmed, expected,
                            status) -> None:
    tracker = make_tracker({"order_id": order_id, "cancel_confirmed": confirmed})

    events = await ActionCancelOrder(services).run(dispatcher, tracker, {})

    assert expected in texts(dispatcher)[0]
    assert (await services.backend.get_order(order_id, DEMO_OWNERS[order_id])).status == status
    assert events == [SlotSet("cancel_confirmed", None)]


@pytest.mark.parametrize(
    ("order_id", "expected", "changed"),
    [("36402", "will be delivered to 5 New Street, Leeds LS1 1AA", True),
     ("12345", "already left our warehouse", False)],
)
async def test_change_address(services, dispatcher, make_tracker, order_id, expected,
                              changed) -> None:
    address = "5 New Street, Leeds LS1 1AA"
    tracker = make_tracker({"order_id": order_id, "new_address": address})

    events = await ActionChangeAddress(services).run(dispatcher, tracker, {})

    assert expected in texts(dispatcher)[0]
    order = await services.backend.get_order(order_id, DEMO_OWNERS[order_id])
    assert (order.address == address) is changed
    assert events == [SlotSet("new_address", None)]


@pytest.mark.parametrize(
    ("product", "expected"),
    [("yoga mat", "we have yoga mat in stock (25 available)"),
     ("Smart Watch", "out of Smart Watch right now"),
     ("spaceship", "we don't sell spaceship"),
     (None, "Which product")],
)
async def test_product_availability(services, dispatcher, make_tracker, product,
                                    expected) -> None:
    entities = [{"entity": "product", "value": product}] if product else []
    tracker = make_tracker(intent="product_availability", entities=entities)

    await ActionProductAvailability(services).run(dispatcher, tracker, {})

    assert expected in texts(dispatcher)[0]


@pytest.mark.parametrize("order_id", ["1234", "12a45", "1234; DROP TABLE orders",
                                      "12345 or 48213", "", None])
async def test_malformed_order_number_is_not_found(services, dispatcher, make_tracker,
                                                   order_id) -> None:
    events = await ActionHandleOrderRequest(services).run(
        dispatcher, make_tracker({"order_id": order_id}), {})

    assert "couldn't find" in texts(dispatcher)[0]
    assert events == [SlotSet("order_id", None)]


@pytest.mark.parametrize("action", [ActionHandleOrderRequest, ActionCancelOrder,
                                    ActionChangeAddress, ActionProductAvailability])
async def test_locked_database_gets_a_clear_message(services, dispatcher, make_tracker, caplog,
                                                    database_url, action) -> None:
    import sqlite3

    tracker = make_tracker({"order_id": "48213", "cancel_confirmed": True,
                            "new_address": "5 New Street, Leeds LS1 1AA"},
                           entities=[{"entity": "product", "value": "yoga mat"}])
    locker = sqlite3.connect(database_url.removeprefix("sqlite+aiosqlite:///"))
    locker.execute("BEGIN EXCLUSIVE")
    try:
        events = await action(services).run(dispatcher, tracker, {})
    finally:
        locker.rollback()
        locker.close()

    assert events == []
    assert texts(dispatcher) == [
        "Sorry, I can't reach our order system right now. Please try again in a few minutes, "
        "or ask me for a human colleague."]
    assert "database is locked" in caplog.text
