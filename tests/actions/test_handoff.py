from __future__ import annotations

from rasa_sdk.events import SlotSet

from actions.handoff import ActionHandoff
from tests.actions.conftest import texts


async def test_handoff_opens_a_ticket_and_stops_self_service(services, dispatcher,
                                                             make_tracker) -> None:
    tracker = make_tracker({"order_id": "12345"}, intent="complaint", sender_id="alice")

    events = await ActionHandoff(services).run(dispatcher, tracker, {})

    [ticket] = services.backend.tickets
    assert (ticket.sender_id, ticket.reason, ticket.order_id) == ("alice", "complaint", "12345")
    assert f"ticket {ticket.reference}" in texts(dispatcher)[0]
    assert events == [SlotSet("handoff", True)]
