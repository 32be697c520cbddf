"""Agents, sessions and tickets in the shop database (console/store.py)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from console.store import AgentExists, NotYours, StoreError, channel_of
from tests.console.conftest import PASSWORD


async def test_an_agent_signs_in_with_their_password_only(store, make_agent) -> None:
    dana = await make_agent("Dana", "Dana Reyes")

    assert await store.authenticate("dana", PASSWORD) == dana
    assert await store.authenticate("DANA ", PASSWORD) == dana
    assert await store.authenticate("dana", PASSWORD + "!") is None
    assert await store.authenticate("nobody", PASSWORD) is None


async def test_the_password_is_stored_as_a_scrypt_hash(store, make_agent) -> None:
    await make_agent()

    async with store.engine.connect() as connection:
        stored = (await connection.execute(text("SELECT password_hash FROM agents"))).scalar()
    assert stored.startswith("scrypt$") and PASSWORD not in stored


async def test_user_names_are_unique(make_agent) -> None:
    await make_agent("dana")
    with pytest.raises(AgentExists):
        await make_agent("Dana")


@pytest.mark.parametrize("username", ["", "two words", "x" * 65])
async def test_unusable_user_names_are_refused(store, username: str) -> None:
    with pytest.raises(StoreError):
        await store.create_agent(username, "", PASSWORD)


async def test_a_session_lives_until_it_expires(store, make_agent) -> None:
    dana = await make_agent()
    start = datetime(2026, 11, 30, 12, tzinfo=timezone.utc)
    token, opened = await store.open_session(dana, 3600, now=start)

    live = await store.session(token, now=start + timedelta(minutes=59))
    expired = await store.session(token, now=start + timedelta(minutes=61))

    assert live == opened and live.agent == dana
    assert expired is None
    assert await store.session("not-a-token") is None


async def test_sessions_are_stored_hashed_and_end_at_sign_out(store, make_agent) -> None:
    token, _ = await store.open_session(await make_agent(), 3600)

    async with store.engine.connect() as connection:
        stored = (await connection.execute(text("SELECT token_hash FROM agent_sessions"))).all()
    await store.close_session(token)

    assert stored and token not in {row[0] for row in stored}
    assert await store.session(token) is None


async def test_the_queue_puts_urgent_first_then_newest(store, make_ticket) -> None:
    normal_old = await make_ticket(priority="normal")
    urgent = await make_ticket(priority="urgent")
    await asyncio.sleep(1.1)  # created_at has second resolution
    normal_new = await make_ticket(priority="normal", sender_id="rest:bob", reason="requested")

    queue = await store.queue()

    assert [item.reference for item in queue] == [urgent, normal_new, normal_old]
    assert queue[1].channel == "rest" and queue[0].negativity == (0.2, 0.9)
    assert [i.reference for i in await store.queue(reason="requested")] == [normal_new]
    assert [i.reference for i in await store.queue(channel="rest")] == [normal_new]


async def test_two_agents_claiming_at_once_one_gets_it(store, make_agent, make_ticket) -> None:
    reference = await make_ticket()
    agents = [await make_agent(f"agent{i}") for i in range(8)]

    won = await asyncio.gather(*(store.claim(reference, agent) for agent in agents))

    assert sum(won) == 1
    ticket = await store.ticket(reference)
    assert ticket.assigned_agent == agents[won.index(True)].agent_id


async def test_only_the_holder_replies_and_the_first_reply_is_timed(store, make_agent,
                                                                    make_ticket) -> None:
    dana, sam = await make_agent("dana"), await make_agent("sam")
    reference = await make_ticket()
    await store.claim(reference, dana)

    with pytest.raises(NotYours):
        await store.add_reply(reference, sam, "hi", delivered=True)
    await store.add_reply(reference, dana, "Hello, I'm Dana", delivered=False)
    ticket = await store.ticket(reference)

    assert ticket.first_reply_at is not None
    assert [(line.role, line.text, line.delivered) for line in ticket.lines][-1] == (
        "agent", "Hello, I'm Dana", False)


async def test_finishing_records_the_resolution(store, make_agent, make_ticket) -> None:
    dana, sam = await make_agent("dana"), await make_agent("sam")
    reference = await make_ticket()
    await store.claim(reference, dana)

    with pytest.raises(NotYours):
        await store.finish(reference, sam, "not mine")
    await store.finish(reference, dana, "refunded")
    ticket = await store.ticket(reference)

    assert (ticket.status, ticket.resolution) == ("closed", "refunded")
    assert ticket.closed_at is not None
    assert not await store.claim(reference, sam)


@pytest.mark.parametrize("sender, channel", [("webchat:abc", "webchat"), ("rest:x:y", "rest"),
                                             ("dingtalk:u1", "dingtalk"), ("legacy", "other")])
def test_the_channel_comes_from_the_namespace(sender: str, channel: str) -> None:
    assert channel_of(sender) == channel
