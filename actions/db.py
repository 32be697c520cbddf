"""The shop database: ``SqlBackend`` over the schema of ``actions.schema``.

SQLAlchemy's asyncio engine runs the queries, so one URL picks the database:
``sqlite+aiosqlite:///shop.db`` (the embedded default, created and seeded on first
use) or ``postgresql+asyncpg://user@host/shop`` (``pip install asyncpg``). Every
query is a parameterised ``text()`` statement; nothing from a customer is ever
formatted into SQL.

The schema carries a version in ``schema_version``; ``actions.schema.MIGRATIONS``
lists the steps from one version to the next, applied here in order inside one
transaction.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import asdict, fields
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from actions.backend import NewTicket, Order, Ticket
from actions.exceptions import BackendError, BackendUnavailable
from actions.schema import (
    DEMO_CUSTOMERS,
    DEMO_ORDERS,
    DEMO_POSTCODES,
    DEMO_STOCK,
    INSERT_TICKET_MESSAGE,
    MIGRATIONS,
    SCHEMA_VERSION,
    ticket_message_line,
    ticket_message_row,
)

logger = logging.getLogger(__name__)

def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _reference(prefix: str) -> str:
    # Unguessable, so a reference cannot be used to look up someone else's ticket.
    return f"{prefix}-{secrets.token_hex(4).upper()}"


def _is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_path(url: str) -> Path | None:
    database = make_url(url).database
    return None if not database or database == ":memory:" else Path(database)


class SqlBackend:
    """``OrderBackend`` on an SQL database through SQLAlchemy's asyncio engine.

    The schema is created or migrated on first use (``start``), and a new, empty
    database gets the demo shop when ``seed`` is set.
    """

    def __init__(self, url: str, *, seed: bool = True, busy_timeout_s: float = 2.0) -> None:
        self.url = url
        self.seed = seed
        self.busy_timeout_s = busy_timeout_s
        self._engine: AsyncEngine | None = None
        self._started = False
        self._start_lock: asyncio.Lock | None = None

    # -- lifecycle -------------------------------------------------------------------
    def _create_engine(self, *, create: bool) -> AsyncEngine:
        if not _is_sqlite(self.url):
            return create_async_engine(self.url, pool_pre_ping=True)
        path = _sqlite_path(self.url)
        if path is None:
            raise BackendError(f"{self.url}: the shop database needs a file, not :memory:")
        # Serving opens the file read-write only: a deleted file is an error to
        # report, not a new empty database that forgets every order.
        mode = "rwc" if create else "rw"
        return create_async_engine(
            f"sqlite+aiosqlite:///file:{path.resolve()}?mode={mode}&uri=true",
            poolclass=NullPool, connect_args={"timeout": self.busy_timeout_s})

    async def start(self) -> None:
        """Creates or migrates the schema (and seeds demo data) once."""
        if self._started:
            return
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._started:
                return
            path = _sqlite_path(self.url) if _is_sqlite(self.url) else None
            if path is not None and not path.parent.is_dir():
                raise BackendUnavailable(f"the folder of the shop database {path} does not exist")
            engine = self._create_engine(create=True)
            try:
                async with engine.begin() as connection:
                    version = await self._migrate(connection)
                    if self.seed and await self._is_empty(connection):
                        await self._seed(connection)
                        logger.info("seeded the demo shop into %s", self._safe_url())
            except SQLAlchemyError as error:
                raise BackendUnavailable(f"cannot prepare the shop database: {error}") from error
            finally:
                await engine.dispose()
            self._engine = self._create_engine(create=False)
            self._started = True
            logger.info("shop database ready (schema version %d)", version)

    async def close(self) -> None:
        """Releases the engine's connections."""
        if self._engine is not None:
            await self._engine.dispose()
        self._engine, self._started = None, False

    def _safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    @staticmethod
    async def _migrate(connection: AsyncConnection) -> int:
        if connection.dialect.name == "sqlite":
            # pysqlite opens a transaction only at the first INSERT/UPDATE/DELETE, so
            # the DDL before it committed on its own: a migration that failed part-way
            # left its tables behind at the old version, and every later start then
            # failed on "table already exists". BEGIN IMMEDIATE makes the migration one
            # transaction, and takes the write lock before the version is read, so two
            # servers starting together migrate one after the other. (This connection
            # is new: start() migrates first thing.)
            await connection.exec_driver_sql("BEGIN IMMEDIATE")
        await connection.execute(text(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"))
        current = (await connection.execute(
            text("SELECT MAX(version) FROM schema_version"))).scalar() or 0
        if current > SCHEMA_VERSION:
            raise BackendError(f"the shop database has schema version {current}, newer than "
                               f"this code's {SCHEMA_VERSION}: update the action server")
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for step in MIGRATIONS[version]:
                # A data step is code (see actions.schema); it runs in this transaction.
                if callable(step):
                    await step(connection)
                else:
                    await connection.execute(text(step))
            await connection.execute(text("INSERT INTO schema_version (version) VALUES (:v)"),
                                     {"v": version})
            logger.info("migrated the shop database to schema version %d", version)
        return SCHEMA_VERSION

    @staticmethod
    async def _is_empty(connection: AsyncConnection) -> bool:
        return not (await connection.execute(text("SELECT COUNT(*) FROM orders"))).scalar()

    @staticmethod
    async def _seed(connection: AsyncConnection) -> None:
        now = _now()
        await connection.execute(
            text("INSERT INTO customers (customer_id, name, email) VALUES (:id, :name, :email)"),
            [{"id": c, "name": n, "email": e} for c, n, e in DEMO_CUSTOMERS])
        for order_id, customer, status, address, refund, items, shipment in DEMO_ORDERS:
            await connection.execute(text(
                "INSERT INTO orders (order_id, customer_id, status, address, postcode, "
                "refund_status, updated_at) "
                "VALUES (:id, :customer, :status, :address, :postcode, :refund, :now)"),
                {"id": order_id, "customer": customer, "status": status, "address": address,
                 "postcode": DEMO_POSTCODES[order_id], "refund": refund, "now": now})
            await connection.execute(text(
                "INSERT INTO order_items (order_id, position, product) VALUES (:id, :pos, :p)"),
                [{"id": order_id, "pos": i, "p": p} for i, p in enumerate(items)])
            if shipment:
                carrier, tracking, eta = shipment
                await connection.execute(text(
                    "INSERT INTO shipments (order_id, carrier, tracking_number, eta) "
                    "VALUES (:id, :carrier, :tracking, :eta)"),
                    {"id": order_id, "carrier": carrier, "tracking": tracking, "eta": eta})
        await connection.execute(text("INSERT INTO products (name, stock) VALUES (:n, :s)"),
                                 [{"n": n, "s": s} for n, s in DEMO_STOCK.items()])

    async def engine(self) -> AsyncEngine:
        """The started engine: for the agent console, which shares this database."""
        return await self._connection()

    async def _connection(self) -> AsyncEngine:
        await self.start()
        assert self._engine is not None  # set by start(); not an input check
        return self._engine

    async def _run(self, work: Any, *, write: bool = False) -> Any:
        """Runs ``work(connection)`` in a transaction; database failures become ours."""
        engine = await self._connection()
        try:
            async with (engine.begin() if write else engine.connect()) as connection:
                return await work(connection)
        except SQLAlchemyError as error:
            raise BackendUnavailable(str(error.orig if hasattr(error, "orig") else error)
                                     .splitlines()[0]) from error
        except OSError as error:  # e.g. the file's folder vanished
            raise BackendUnavailable(str(error)) from error

    # -- OrderBackend ----------------------------------------------------------------
    # Every order query names the customer: ownership is checked in the query itself.
    async def get_order(self, order_id: str, customer_id: str) -> Order | None:
        async def work(connection: AsyncConnection) -> Order | None:
            row = (await connection.execute(text(
                "SELECT o.order_id, o.status, o.address, o.refund_status, c.name, "
                "s.carrier, s.tracking_number, s.eta FROM orders o "
                "JOIN customers c ON c.customer_id = o.customer_id "
                "LEFT JOIN shipments s ON s.order_id = o.order_id "
                "WHERE o.order_id = :id AND o.customer_id = :customer"),
                {"id": order_id, "customer": customer_id})).first()
            if row is None:
                return None
            items = (await connection.execute(text(
                "SELECT product FROM order_items WHERE order_id = :id ORDER BY position"),
                {"id": order_id})).scalars().all()
            return Order(order_id=row[0], status=row[1], address=row[2], refund_status=row[3],
                         customer=row[4], carrier=row[5] or "", tracking_number=row[6] or "",
                         eta=row[7] or "", items=tuple(items))
        return await self._run(work)

    async def _update_processing(self, order_id: str, customer_id: str, assignments: str,
                                 values: dict[str, Any]) -> Order:
        async def work(connection: AsyncConnection) -> None:
            # The status condition makes the check-and-change one atomic statement.
            await connection.execute(text(
                f"UPDATE orders SET {assignments}, updated_at = :now "  # noqa: S608 (fixed SQL)
                "WHERE order_id = :id AND customer_id = :customer AND status = 'processing'"),
                {**values, "id": order_id, "customer": customer_id, "now": _now()})
        await self._run(work, write=True)
        order = await self.get_order(order_id, customer_id)
        if order is None:
            raise BackendError(f"order {order_id} is not this customer's, or vanished")
        return order

    async def cancel_order(self, order_id: str, customer_id: str) -> Order:
        return await self._update_processing(
            order_id, customer_id, "status = 'cancelled', refund_status = 'pending'", {})

    async def change_address(self, order_id: str, customer_id: str, address: str) -> Order:
        return await self._update_processing(order_id, customer_id, "address = :address",
                                             {"address": address})

    async def start_return(self, order_id: str, customer_id: str) -> str:
        reference = _reference(f"R-{order_id}")

        async def work(connection: AsyncConnection) -> int:
            return (await connection.execute(text(
                "INSERT INTO returns (reference, order_id, created_at) "
                "SELECT :r, order_id, :now FROM orders "
                "WHERE order_id = :id AND customer_id = :customer"),
                {"r": reference, "id": order_id, "customer": customer_id,
                 "now": _now()})).rowcount
        if not await self._run(work, write=True):
            raise BackendError(f"order {order_id} is not this customer's")
        return reference

    async def prove_order(self, order_id: str, email: str = "", postcode: str = ""
                          ) -> str | None:
        """The customer who owns ``order_id`` if ``email`` or ``postcode`` matches it.

        ``email`` is compared case-insensitively; ``postcode`` without spaces or case
        (give it already normalised: upper case, no spaces). Returns ``None`` for
        a wrong detail and for an order that does not exist alike.
        """
        if not email and not postcode:
            return None

        async def work(connection: AsyncConnection) -> str | None:
            return (await connection.execute(text(
                "SELECT o.customer_id FROM orders o "
                "JOIN customers c ON c.customer_id = o.customer_id WHERE o.order_id = :id "
                "AND ((:email <> '' AND LOWER(c.email) = :email) OR "
                "(:postcode <> '' AND REPLACE(UPPER(o.postcode), ' ', '') = :postcode))"),
                {"id": order_id, "email": email.strip().lower(),
                 "postcode": postcode})).scalar()
        return await self._run(work)

    async def customer_for(self, channel: str, external_id: str) -> str | None:
        """The customer a channel's verified user id belongs to (``channel_identities``)."""
        async def work(connection: AsyncConnection) -> str | None:
            return (await connection.execute(text(
                "SELECT customer_id FROM channel_identities "
                "WHERE channel = :channel AND external_id = :external"),
                {"channel": channel, "external": external_id})).scalar()
        return await self._run(work)

    async def proof_locked_until(self, scopes: Sequence[str]) -> str | None:
        """The latest lock (ISO time) still in force on any of ``scopes``, or ``None``."""
        async def work(connection: AsyncConnection) -> str | None:
            now = _now()
            locks = [(await connection.execute(text(
                "SELECT locked_until FROM proof_attempts WHERE scope = :scope "
                "AND locked_until IS NOT NULL AND locked_until > :now"),
                {"scope": scope, "now": now})).scalar() for scope in scopes]
            return max((lock for lock in locks if lock), default=None)
        return await self._run(work)

    async def record_failed_proof(self, scopes: Sequence[str], limit: int,
                                  lock_s: float) -> str | None:
        """Counts a failed ownership proof on each scope; the ``limit``-th locks the
        scope for ``lock_s`` seconds. Returns the lock's end (ISO) when one started."""
        async def work(connection: AsyncConnection) -> str | None:
            locked = None
            for scope in scopes:
                # One atomic upsert per scope: concurrent failures all count.
                await connection.execute(text(
                    "INSERT INTO proof_attempts (scope, failures, locked_until) "
                    "VALUES (:scope, 1, NULL) ON CONFLICT (scope) DO UPDATE SET "
                    "failures = proof_attempts.failures + 1"), {"scope": scope})
                failures = (await connection.execute(text(
                    "SELECT failures FROM proof_attempts WHERE scope = :scope"),
                    {"scope": scope})).scalar()
                if failures >= limit:
                    until = (datetime.now(timezone.utc) + timedelta(seconds=lock_s)
                             ).isoformat(timespec="seconds")
                    await connection.execute(text(
                        "UPDATE proof_attempts SET failures = 0, locked_until = :until "
                        "WHERE scope = :scope"), {"scope": scope, "until": until})
                    locked = until
            return locked
        return await self._run(work, write=True)

    async def clear_failed_proofs(self, scopes: Sequence[str]) -> None:
        """Forgets the failures of ``scopes`` after a successful proof (locks stay)."""
        async def work(connection: AsyncConnection) -> None:
            for scope in scopes:
                await connection.execute(text(
                    "UPDATE proof_attempts SET failures = 0 WHERE scope = :scope"),
                    {"scope": scope})
        await self._run(work, write=True)

    async def stock(self, product: str) -> int | None:
        async def work(connection: AsyncConnection) -> int | None:
            return (await connection.execute(text(
                "SELECT stock FROM products WHERE name = :name"),
                {"name": " ".join(product.lower().split())})).scalar()
        return await self._run(work)

    async def create_ticket(self, ticket: NewTicket) -> Ticket:
        """Records the ticket and its transcript's lines, one row each, in one transaction."""
        saved = Ticket(**asdict(ticket), reference=_reference("T"), created_at=_now())

        async def work(connection: AsyncConnection) -> None:
            await connection.execute(text(
                "INSERT INTO tickets (reference, sender_id, reason, intent, priority, "
                "department, routed, order_id, description, status, transcript, "
                "sentiment_history, created_at) VALUES (:reference, :sender_id, :reason, "
                ":intent, :priority, :department, :routed, :order_id, :description, :status, "
                ":transcript, :sentiment_history, :created_at)"),
                _ticket_row(saved))
            if saved.transcript:
                # Inserted in transcript order, so the database's ids keep that order.
                await connection.execute(text(INSERT_TICKET_MESSAGE), [
                    ticket_message_row(saved.reference, line, saved.created_at)
                    for line in saved.transcript])
        await self._run(work, write=True)
        return saved

    async def add_ticket_message(self, reference: str, message: dict[str, Any]) -> None:
        """Appends one line to the ticket's transcript.

        One INSERT, numbered by the database: concurrent messages are all kept, where
        rewriting a stored transcript lost all but the last writer's.

        Raises:
            BackendError: There is no such ticket.
        """
        row = ticket_message_row(reference, message, _now())

        async def work(connection: AsyncConnection) -> None:
            # Selecting from tickets checks the ticket exists in the same statement
            # (SQLite does not enforce the foreign key by default).
            added = await connection.execute(text(
                "INSERT INTO ticket_messages (reference, role, text, sent_at, created_at) "
                "SELECT reference, :role, :text, :sent_at, :created_at FROM tickets "
                "WHERE reference = :reference"), row)
            if added.rowcount == 0:
                raise BackendError(f"no ticket {reference}")
        await self._run(work, write=True)

    async def get_ticket(self, reference: str) -> Ticket | None:
        """The ticket, its transcript assembled from its rows in the order they were added."""
        async def work(connection: AsyncConnection) -> Ticket | None:
            row = (await connection.execute(text(
                "SELECT * FROM tickets WHERE reference = :r"), {"r": reference})).mappings().first()
            if row is None:
                return None
            lines = (await connection.execute(text(
                "SELECT role, text, sent_at FROM ticket_messages WHERE reference = :r "
                "ORDER BY id"), {"r": reference})).all()
            return _ticket_from_row(dict(row), [ticket_message_line(*line) for line in lines])
        return await self._run(work)

    async def close_ticket(self, reference: str) -> Ticket | None:
        async def work(connection: AsyncConnection) -> None:
            await connection.execute(text(
                "UPDATE tickets SET status = 'closed', closed_at = COALESCE(closed_at, :now) "
                "WHERE reference = :r"), {"r": reference, "now": _now()})
        await self._run(work, write=True)
        return await self.get_ticket(reference)

    async def take_undelivered_agent_lines(self, reference: str) -> list[str]:
        async def work(connection: AsyncConnection) -> list[str]:
            rows = (await connection.execute(text(
                "SELECT id, text FROM ticket_messages WHERE reference = :r AND role = 'agent' "
                "AND delivered = 0 ORDER BY id"), {"r": reference})).all()
            if rows:
                # By id, in the transaction that read them: a line is delivered once.
                await connection.execute(text(
                    "UPDATE ticket_messages SET delivered = 1 WHERE id = :id AND delivered = 0"),
                    [{"id": row[0]} for row in rows])
            return [row[1] for row in rows]
        return await self._run(work, write=True)

    async def rate_ticket(self, reference: str, sender_id: str, rating: int) -> bool:
        if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
            raise ValueError("a satisfaction rating is a whole number from 1 to 5")

        async def work(connection: AsyncConnection) -> bool:
            rated = await connection.execute(text(
                "UPDATE tickets SET satisfaction = :rating WHERE reference = :r AND "
                "sender_id = :sender AND status = 'closed' AND satisfaction IS NULL"),
                {"rating": rating, "r": reference, "sender": sender_id})
            return rated.rowcount == 1
        return await self._run(work, write=True)


def _ticket_row(ticket: Ticket) -> dict[str, Any]:
    row = {f.name: getattr(ticket, f.name) for f in fields(Ticket) if f.name != "extra"}
    row["routed"] = int(ticket.routed)
    # The transcript is in ticket_messages since schema version 2; the old column is
    # NOT NULL, so it gets an empty list.
    row["transcript"] = "[]"
    row["sentiment_history"] = json.dumps(list(ticket.sentiment_history), ensure_ascii=False)
    return row


TICKET_FIELDS = frozenset(f.name for f in fields(Ticket)) - {"extra"}


def _ticket_from_row(row: dict[str, Any], transcript: list[dict[str, Any]]) -> Ticket:
    row["routed"] = bool(row["routed"])
    row["transcript"] = tuple(transcript)
    row["sentiment_history"] = tuple(json.loads(row["sentiment_history"]))
    # Columns of later schema versions (the console's: assigned_agent, closed_at, ...).
    extra = {key: row.pop(key) for key in list(row) if key not in TICKET_FIELDS}
    return Ticket(**row, extra=extra)
