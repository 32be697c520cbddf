"""Ticket transcripts as rows (schema version 2): concurrent messages, the migration.

The ``ticket_db`` tests run on SQLite in a temporary file and, when
``TEST_POSTGRES_URL`` names a PostgreSQL server (``postgresql+asyncpg://user@host/postgres``,
a user that may create databases), on a fresh database there too; otherwise that
variant is skipped.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from actions.backend import NewTicket
from actions.db import SqlBackend
from actions.exceptions import BackendError
from actions.schema import MIGRATIONS, SCHEMA_VERSION

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "")

# A version-1 ticket: its transcript as the JSON document version 1 kept, with a
# message added after the hand-over and one line without a timestamp.
LEGACY_TRANSCRIPT = [
    {"role": "customer", "text": "where is my order 12345?", "timestamp": "2026-11-01T09:00:00"},
    {"role": "bot", "text": "Order 12345 has shipped.", "timestamp": "2026-11-01T09:00:01"},
    {"role": "customer", "text": "你好 😀 ' OR '1'='1", "timestamp": "2026-11-01T09:00:05"},
    {"role": "customer", "text": "hello? still there?"},
]


@pytest.fixture(params=["sqlite", "postgresql"])
async def ticket_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of an empty shop database: a temporary SQLite file, or a fresh PostgreSQL one."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("no PostgreSQL server: set TEST_POSTGRES_URL to run this variant")
    pytest.importorskip("asyncpg")
    name = f"shop_test_{secrets.token_hex(4)}"
    # CREATE/DROP DATABASE cannot run inside a transaction.
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def _database_at_version_1(url: str, transcripts: dict[str, str]) -> None:
    """Builds the schema as version 1 left it, with tickets holding JSON transcripts.

    Args:
        url: The (empty) database.
        transcripts: Ticket reference -> the ``tickets.transcript`` document.
    """
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE schema_version (version INTEGER NOT NULL)"))
            for statement in MIGRATIONS[1]:
                await connection.execute(text(statement))
            await connection.execute(text("INSERT INTO schema_version (version) VALUES (1)"))
            await connection.execute(text(
                "INSERT INTO tickets (reference, sender_id, reason, intent, priority, department, "
                "routed, order_id, description, status, transcript, sentiment_history, "
                "created_at) VALUES (:r, 'sender', 'requested', 'order_status', 'normal', "
                "'customer_service', 1, NULL, '', 'open', :t, '[]', :at)"),
                [{"r": r, "t": t, "at": f"2026-11-01T09:00:0{i}+00:00"}
                 for i, (r, t) in enumerate(transcripts.items())])
    finally:
        await engine.dispose()


async def _query(url: str, sql: str, params: dict[str, Any] | None = None) -> list[tuple]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return [tuple(row) for row in (await connection.execute(text(sql), params or {}))]
    finally:
        await engine.dispose()


async def test_twenty_concurrent_messages_are_all_kept_once(ticket_db: str) -> None:
    backend = SqlBackend(ticket_db, seed=False)
    opening = ({"role": "customer", "text": "I want a human", "timestamp": "t0"},
               {"role": "bot", "text": "Passing you on.", "timestamp": "t1"})
    ticket = await backend.create_ticket(NewTicket("sender", "requested", transcript=opening))
    sent = [{"role": "customer", "text": f"message {i}", "timestamp": f"t{i + 2}"}
            for i in range(20)]

    # Each call is its own connection and transaction, as in the action server; the
    # old read-modify-write of one JSON document kept only some of them.
    await asyncio.gather(*(backend.add_ticket_message(ticket.reference, m) for m in sent))

    transcript = (await backend.get_ticket(ticket.reference)).transcript
    await backend.close()
    assert transcript[:2] == opening  # the opening lines stay first, in order
    added = transcript[2:]
    assert len(added) == 20
    assert sorted(added, key=lambda line: int(line["text"].split()[1])) == sent


async def test_transcript_reads_back_in_order_exactly_as_written(ticket_db: str) -> None:
    backend = SqlBackend(ticket_db, seed=False)
    opening = tuple(LEGACY_TRANSCRIPT[:3])
    first = await backend.create_ticket(NewTicket("a", "requested", transcript=opening))
    other = await backend.create_ticket(NewTicket("b", "complaint"))
    empty = await backend.create_ticket(NewTicket("c", "requested"))
    hostile = {"role": "customer", "text": "'); DROP TABLE ticket_messages; --"}
    for message in (LEGACY_TRANSCRIPT[3], hostile):
        await backend.add_ticket_message(first.reference, message)
    await backend.add_ticket_message(other.reference, {"role": "customer", "text": "mine"})

    loaded = await backend.get_ticket(first.reference)

    # Lines without a timestamp come back without one: the same tuple as version 1 gave.
    assert loaded.transcript == (*opening, LEGACY_TRANSCRIPT[3], hostile)
    assert (await backend.get_ticket(other.reference)).transcript == (
        {"role": "customer", "text": "mine"},)
    assert (await backend.get_ticket(empty.reference)).transcript == ()
    await backend.close()


async def test_a_message_for_no_ticket_is_an_error_and_stores_nothing(ticket_db: str) -> None:
    backend = SqlBackend(ticket_db, seed=False)
    with pytest.raises(BackendError, match="no ticket T-NOPE"):
        await backend.add_ticket_message("T-NOPE", {"role": "customer", "text": "hello"})
    await backend.close()

    assert await _query(ticket_db, "SELECT COUNT(*) FROM ticket_messages") == [(0,)]


async def test_version_1_transcripts_migrate_into_rows_intact(ticket_db: str) -> None:
    other = [{"role": "customer", "text": "second ticket", "timestamp": ""}]
    await _database_at_version_1(ticket_db, {
        "T-LEGACY1": json.dumps(LEGACY_TRANSCRIPT, ensure_ascii=False),
        "T-EMPTY": "[]",
        "T-LEGACY2": json.dumps(other)})

    backend = SqlBackend(ticket_db, seed=False)
    legacy = await backend.get_ticket("T-LEGACY1")  # starting migrates

    assert legacy.transcript == tuple(LEGACY_TRANSCRIPT)
    assert (await backend.get_ticket("T-EMPTY")).transcript == ()
    assert (await backend.get_ticket("T-LEGACY2")).transcript == tuple(other)
    # A message after the migration follows the migrated lines.
    await backend.add_ticket_message("T-LEGACY1", {"role": "customer", "text": "after"})
    assert (await backend.get_ticket("T-LEGACY1")).transcript[-2:] == (
        LEGACY_TRANSCRIPT[-1], {"role": "customer", "text": "after"})
    await backend.close()
    versions = await _query(ticket_db, "SELECT version FROM schema_version ORDER BY version")
    assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
    # The JSON was moved, not copied: nothing reads the old column any more.
    assert await _query(ticket_db, "SELECT DISTINCT transcript FROM tickets") == [("[]",)]
    assert await _query(ticket_db, "SELECT COUNT(*) FROM ticket_messages") == [(6,)]


async def test_a_broken_transcript_stops_the_migration_and_changes_nothing(
        ticket_db: str) -> None:
    await _database_at_version_1(ticket_db, {
        "T-GOOD": json.dumps(LEGACY_TRANSCRIPT), "T-BROKEN": '[{"role": "customer", "te'})

    with pytest.raises(BackendError, match="T-BROKEN"):
        await SqlBackend(ticket_db, seed=False).start()

    # One transaction: still version 1, the JSON in place, no half-made table left to
    # make the next start fail on "table exists".
    assert await _query(ticket_db, "SELECT MAX(version) FROM schema_version") == [(1,)]
    assert await _query(ticket_db, "SELECT transcript FROM tickets WHERE reference = 'T-GOOD'"
                        ) == [(json.dumps(LEGACY_TRANSCRIPT),)]
    with pytest.raises(DBAPIError, match="ticket_messages"):
        await _query(ticket_db, "SELECT COUNT(*) FROM ticket_messages")

    # Once the ticket is mended, the next start migrates.
    engine = create_async_engine(ticket_db)
    async with engine.begin() as connection:
        await connection.execute(text(
            "UPDATE tickets SET transcript = '[]' WHERE reference = 'T-BROKEN'"))
    await engine.dispose()
    backend = SqlBackend(ticket_db, seed=False)
    assert (await backend.get_ticket("T-GOOD")).transcript == tuple(LEGACY_TRANSCRIPT)
    await backend.close()
