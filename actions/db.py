"""The shop database: schema with migrations, demo data, and ``SqlBackend``.

SQLAlchemy's asyncio engine runs the queries, so one URL picks the database:
``sqlite+aiosqlite:///shop.db`` (the embedded default, created and seeded on first
use) or ``postgresql+asyncpg://user@host/shop`` (``pip install asyncpg``). Every
query is a parameterised ``text()`` statement; nothing from a customer is ever
formatted into SQL.

The schema carries a version in ``schema_version``; ``MIGRATIONS`` lists the
steps from one version to the next, applied in order inside one transaction.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import asdict, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from actions.backend import NewTicket, Order, Ticket
from actions.exceptions import BackendError, BackendUnavailable

logger = logging.getLogger(__name__)

# version -> statements that bring the schema from version - 1 to version.
MIGRATIONS: dict[int, Sequence[str]] = {
    1: (
        """CREATE TABLE customers (
               customer_id TEXT PRIMARY KEY,
               name TEXT NOT NULL,
               email TEXT NOT NULL)""",
        """CREATE TABLE orders (
               order_id TEXT PRIMARY KEY,
               customer_id TEXT NOT NULL REFERENCES customers (customer_id),
               status TEXT NOT NULL,
               address TEXT NOT NULL,
               refund_status TEXT NOT NULL DEFAULT 'none',
               updated_at TEXT NOT NULL)""",
        """CREATE TABLE order_items (
               order_id TEXT NOT NULL REFERENCES orders (order_id),
               position INTEGER NOT NULL,
               product TEXT NOT NULL,
               PRIMARY KEY (order_id, position))""",
        """CREATE TABLE shipments (
               order_id TEXT PRIMARY KEY REFERENCES orders (order_id),
               carrier TEXT NOT NULL,
               tracking_number TEXT NOT NULL,
               eta TEXT NOT NULL)""",
        """CREATE TABLE products (
               name TEXT PRIMARY KEY,
               stock INTEGER NOT NULL)""",
        """CREATE TABLE returns (
               reference TEXT PRIMARY KEY,
               order_id TEXT NOT NULL REFERENCES orders (order_id),
               created_at TEXT NOT NULL)""",
        """CREATE TABLE tickets (
               reference TEXT PRIMARY KEY,
               sender_id TEXT NOT NULL,
               reason TEXT NOT NULL,
               intent TEXT NOT NULL,
               priority TEXT NOT NULL,
               department TEXT NOT NULL,
               routed INTEGER NOT NULL,
               order_id TEXT,
               description TEXT NOT NULL,
               status TEXT NOT NULL,
               transcript TEXT NOT NULL,
               sentiment_history TEXT NOT NULL,
               created_at TEXT NOT NULL)""",
        "CREATE INDEX tickets_sender ON tickets (sender_id)",
    ),
}
SCHEMA_VERSION = max(MIGRATIONS)

DEMO_CUSTOMERS = [("C-001", "Alex Morgan", "alex@example.com"),
                  ("C-002", "Sam Patel", "sam@example.com"),
                  ("C-003", "Niamh Byrne", "niamh@example.com")]

# (order_id, customer, status, address, refund_status, items, shipment)
DEMO_ORDERS: list[tuple[str, str, str, str, str, tuple[str, ...],
                        tuple[str, str, str] | None]] = [
    ("12345", "C-001", "shipped", "14 Elm Road, Manchester M14 5RT", "none",
     ("wireless headphones",), ("DHL", "JD014600006281", "2026-12-03")),
    ("48213", "C-002", "processing", "42 Oak Avenue, Leeds LS6 2AB", "none",
     ("running shoes", "yoga mat"), None),
    ("55120", "C-003", "delivered", "7 Harbour View, Cork T12 X8P2", "pending",
     ("coffee maker",), ("UPS", "1Z999AA10123456784", "2026-11-20")),
    ("90871", "C-001", "cancelled", "221B Baker Street, London NW1 6XE", "paid",
     ("winter jacket",), None),
    ("36402", "C-002", "processing", "1550 Maple Drive, Toronto ON M4B 1B3", "none",
     ("office chair",), None),
]

DEMO_STOCK = {"running shoes": 14, "wireless headphones": 0, "winter jacket": 6,
              "coffee maker": 3, "yoga mat": 25, "smart watch": 0, "office chair": 2}


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
        await connection.execute(text(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"))
        current = (await connection.execute(
            text("SELECT MAX(version) FROM schema_version"))).scalar() or 0
        if current > SCHEMA_VERSION:
            raise BackendError(f"the shop database has schema version {current}, newer than "
                               f"this code's {SCHEMA_VERSION}: update the action server")
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version]:
                await connection.execute(text(statement))
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
                "INSERT INTO orders (order_id, customer_id, status, address, refund_status, "
                "updated_at) VALUES (:id, :customer, :status, :address, :refund, :now)"),
                {"id": order_id, "customer": customer, "status": status, "address": address,
                 "refund": refund, "now": now})
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
    async def get_order(self, order_id: str) -> Order | None:
        async def work(connection: AsyncConnection) -> Order | None:
            row = (await connection.execute(text(
                "SELECT o.order_id, o.status, o.address, o.refund_status, c.name, "
                "s.carrier, s.tracking_number, s.eta FROM orders o "
                "JOIN customers c ON c.customer_id = o.customer_id "
                "LEFT JOIN shipments s ON s.order_id = o.order_id WHERE o.order_id = :id"),
                {"id": order_id})).first()
            if row is None:
                return None
            items = (await connection.execute(text(
                "SELECT product FROM order_items WHERE order_id = :id ORDER BY position"),
                {"id": order_id})).scalars().all()
            return Order(order_id=row[0], status=row[1], address=row[2], refund_status=row[3],
                         customer=row[4], carrier=row[5] or "", tracking_number=row[6] or "",
                         eta=row[7] or "", items=tuple(items))
        return await self._run(work)

    async def _update_processing(self, order_id: str, assignments: str,
                                 values: dict[str, Any]) -> Order:
        async def work(connection: AsyncConnection) -> None:
            # The status condition makes the check-and-change one atomic statement.
            await connection.execute(text(
                f"UPDATE orders SET {assignments}, updated_at = :now "  # noqa: S608 (fixed SQL)
                "WHERE order_id = :id AND status = 'processing'"),
                {**values, "id": order_id, "now": _now()})
        await self._run(work, write=True)
        order = await self.get_order(order_id)
        if order is None:
            raise BackendError(f"order {order_id} vanished during an update")
        return order

    async def cancel_order(self, order_id: str) -> Order:
        return await self._update_processing(
            order_id, "status = 'cancelled', refund_status = 'pending'", {})

    async def change_address(self, order_id: str, address: str) -> Order:
        return await self._update_processing(order_id, "address = :address",
                                             {"address": address})

    async def start_return(self, order_id: str) -> str:
        reference = _reference(f"R-{order_id}")

        async def work(connection: AsyncConnection) -> None:
            await connection.execute(text(
                "INSERT INTO returns (reference, order_id, created_at) VALUES (:r, :id, :now)"),
                {"r": reference, "id": order_id, "now": _now()})
        await self._run(work, write=True)
        return reference

    async def stock(self, product: str) -> int | None:
        async def work(connection: AsyncConnection) -> int | None:
            return (await connection.execute(text(
                "SELECT stock FROM products WHERE name = :name"),
                {"name": " ".join(product.lower().split())})).scalar()
        return await self._run(work)

    async def create_ticket(self, ticket: NewTicket) -> Ticket:
        saved = Ticket(**asdict(ticket), reference=_reference("T"), created_at=_now())

        async def work(connection: AsyncConnection) -> None:
            await connection.execute(text(
                "INSERT INTO tickets (reference, sender_id, reason, intent, priority, "
                "department, routed, order_id, description, status, transcript, "
                "sentiment_history, created_at) VALUES (:reference, :sender_id, :reason, "
                ":intent, :priority, :department, :routed, :order_id, :description, :status, "
                ":transcript, :sentiment_history, :created_at)"),
                _ticket_row(saved))
        await self._run(work, write=True)
        return saved

    async def add_ticket_message(self, reference: str, message: dict[str, Any]) -> None:
        async def work(connection: AsyncConnection) -> None:
            row = (await connection.execute(text(
                "SELECT transcript FROM tickets WHERE reference = :r"), {"r": reference})).first()
            if row is None:
                raise BackendError(f"no ticket {reference}")
            transcript = [*json.loads(row[0]), message]
            await connection.execute(text(
                "UPDATE tickets SET transcript = :t WHERE reference = :r"),
                {"t": json.dumps(transcript, ensure_ascii=False), "r": reference})
        await self._run(work, write=True)

    async def get_ticket(self, reference: str) -> Ticket | None:
        async def work(connection: AsyncConnection) -> Ticket | None:
            row = (await connection.execute(text(
                "SELECT * FROM tickets WHERE reference = :r"), {"r": reference})).mappings().first()
            return None if row is None else _ticket_from_row(dict(row))
        return await self._run(work)


def _ticket_row(ticket: Ticket) -> dict[str, Any]:
    row = {f.name: getattr(ticket, f.name) for f in fields(Ticket) if f.name != "extra"}
    row["routed"] = int(ticket.routed)
    row["transcript"] = json.dumps(list(ticket.transcript), ensure_ascii=False)
    row["sentiment_history"] = json.dumps(list(ticket.sentiment_history), ensure_ascii=False)
    return row


def _ticket_from_row(row: dict[str, Any]) -> Ticket:
    row["routed"] = bool(row["routed"])
    row["transcript"] = tuple(json.loads(row["transcript"]))
    row["sentiment_history"] = tuple(json.loads(row["sentiment_history"]))
    return Ticket(**row)
