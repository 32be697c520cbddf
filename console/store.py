"""The console's data in the shop database: agents, their sessions, and tickets.

Every statement is portable SQL (SQLite and PostgreSQL). Races are settled by the
database: a claim is one conditional UPDATE, so of two agents claiming the same
ticket at once exactly one gets it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from console.passwords import dummy_hash, hash_password, verify_password

# Queue order: the most urgent first (actions.escalation's priorities), then newest.
PRIORITY_RANK = {"urgent": 0, "high": 1, "normal": 2, "low": 3}
REASONS = ("persistently_negative", "strongly_negative", "complaint", "requested",
           "unknown_input")
CHANNELS = ("webchat", "rest", "dingtalk")
MAX_USERNAME = 64
MAX_REPLY = 4000


class StoreError(Exception):
    """A console operation that the data does not allow (the message says why)."""


class AgentExists(StoreError):
    """The user name is taken."""


class NotYours(StoreError):
    """The ticket is not claimed by this agent (or is closed)."""


def now_iso(now: datetime | None = None) -> str:
    return (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")


def channel_of(sender_id: str) -> str:
    """The channel of a namespaced Rasa sender id (``bot/trust.py``): webchat, rest, ..."""
    prefix, sep, _ = sender_id.partition(":")
    return prefix if sep and prefix in CHANNELS else "other"


@dataclass(frozen=True)
class Agent:
    agent_id: str
    username: str
    display_name: str


@dataclass(frozen=True)
class AgentSession:
    agent: Agent
    csrf_token: str
    expires_at: str


@dataclass(frozen=True)
class QueueItem:
    """One open ticket as the queue shows it."""

    reference: str
    sender_id: str
    channel: str
    reason: str
    priority: str
    intent: str
    created_at: str
    waiting_s: float
    negativity: tuple[float, ...]
    assigned_agent: str | None
    assigned_name: str | None


@dataclass(frozen=True)
class TicketLine:
    role: str
    text: str
    author: str | None
    created_at: str
    delivered: bool


@dataclass(frozen=True)
class TicketDetail:
    """A ticket with its stored lines (customer messages, agent replies)."""

    reference: str
    sender_id: str
    channel: str
    reason: str
    priority: str
    intent: str
    status: str
    created_at: str
    assigned_agent: str | None
    first_reply_at: str | None
    closed_at: str | None
    resolution: str | None
    satisfaction: int | None
    negativity: tuple[float, ...]
    lines: tuple[TicketLine, ...]


def _token_hash(token: str) -> str:
    # Sessions are stored by hash: a leaked table (or backup) holds no usable cookie.
    return hashlib.sha256(token.encode()).hexdigest()


def _negativity(history: str) -> tuple[float, ...]:
    """The customer's P(negative) per turn, from the ticket's sentiment history."""
    try:
        turns = json.loads(history or "[]")
    except ValueError:
        return ()
    values = []
    for turn in turns if isinstance(turns, list) else []:
        value = turn.get("negative") if isinstance(turn, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            values.append(min(max(float(value), 0.0), 1.0))
    return tuple(values)


def _seconds_since(iso: str, now: datetime) -> float:
    try:
        return max((now - datetime.fromisoformat(iso)).total_seconds(), 0.0)
    except ValueError:
        return 0.0


class ConsoleStore:
    """Agents, sessions and tickets over an async engine of the shop database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    # -- agents ------------------------------------------------------------------------

    async def create_agent(self, username: str, display_name: str, password: str) -> Agent:
        """Stores a new agent with a scrypt hash of ``password``.

        Raises:
            AgentExists: The user name is taken.
            StoreError: The user name or display name is unusable.
            console.passwords.WeakPassword: The password is too short or long.
        """
        username = username.strip().lower()
        if not (0 < len(username) <= MAX_USERNAME and username.isprintable()
                and " " not in username):
            raise StoreError(f"a user name is 1-{MAX_USERNAME} printable characters, no spaces")
        display_name = " ".join(display_name.split()) or username
        agent = Agent(f"A-{secrets.token_hex(4).upper()}", username, display_name[:80])
        row = {"id": agent.agent_id, "username": username, "name": agent.display_name,
               "hash": hash_password(password), "now": now_iso()}
        try:
            async with self.engine.begin() as connection:
                await connection.execute(text(
                    "INSERT INTO agents (agent_id, username, display_name, password_hash, "
                    "created_at) VALUES (:id, :username, :name, :hash, :now)"), row)
        except IntegrityError:
            raise AgentExists(f"there is an agent '{username}' already") from None
        return agent

    async def authenticate(self, username: str, password: str) -> Agent | None:
        """The agent whose name and password these are; None otherwise (same cost)."""
        async with self.engine.connect() as connection:
            row = (await connection.execute(text(
                "SELECT agent_id, username, display_name, password_hash FROM agents "
                "WHERE username = :u AND disabled = 0"),
                {"u": username.strip().lower()})).first()
        if row is None:
            verify_password(password, dummy_hash())
            return None
        return Agent(row[0], row[1], row[2]) if verify_password(password, row[3]) else None

    # -- sessions ----------------------------------------------------------------------

    async def open_session(self, agent: Agent, ttl_s: float,
                           now: datetime | None = None) -> tuple[str, AgentSession]:
        """A new session for ``agent``: the cookie's token (stored hashed) and the session."""
        now = now or datetime.now(timezone.utc)
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        expires = now_iso(now + timedelta(seconds=ttl_s))
        async with self.engine.begin() as connection:
            # Expired sessions of anyone go now: the table stays small without a job.
            await connection.execute(text("DELETE FROM agent_sessions WHERE expires_at < :now"),
                                     {"now": now_iso(now)})
            await connection.execute(text(
                "INSERT INTO agent_sessions (token_hash, agent_id, csrf_token, created_at, "
                "expires_at) VALUES (:h, :a, :c, :now, :exp)"),
                {"h": _token_hash(token), "a": agent.agent_id, "c": csrf,
                 "now": now_iso(now), "exp": expires})
        return token, AgentSession(agent, csrf, expires)

    async def session(self, token: str, now: datetime | None = None) -> AgentSession | None:
        """The live session of a cookie token; None when unknown, expired or disabled."""
        if not token or len(token) > 200:
            return None
        async with self.engine.connect() as connection:
            row = (await connection.execute(text(
                "SELECT a.agent_id, a.username, a.display_name, s.csrf_token, s.expires_at "
                "FROM agent_sessions s JOIN agents a ON a.agent_id = s.agent_id "
                "WHERE s.token_hash = :h AND a.disabled = 0"),
                {"h": _token_hash(token)})).first()
        if row is None or row[4] <= now_iso(now):
            return None
        return AgentSession(Agent(row[0], row[1], row[2]), row[3], row[4])

    async def close_session(self, token: str) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(text("DELETE FROM agent_sessions WHERE token_hash = :h"),
                                     {"h": _token_hash(token)})

    # -- tickets -----------------------------------------------------------------------

    async def queue(self, *, reason: str | None = None, channel: str | None = None,
                    now: datetime | None = None) -> list[QueueItem]:
        """Open tickets, the most urgent first and, within a priority, the newest first."""
        now = now or datetime.now(timezone.utc)
        query = ("SELECT t.reference, t.sender_id, t.reason, t.priority, t.intent, "
                 "t.created_at, t.sentiment_history, t.assigned_agent, a.display_name "
                 "FROM tickets t LEFT JOIN agents a ON a.agent_id = t.assigned_agent "
                 "WHERE t.status = 'open'")
        params: dict[str, Any] = {}
        if reason:
            query += " AND t.reason = :reason"
            params["reason"] = reason
        if channel:
            # Sender ids are namespaced "<channel>:<id>"; '_' and '%' cannot be in CHANNELS.
            query += " AND t.sender_id LIKE :prefix"
            params["prefix"] = f"{channel}:%"
        async with self.engine.connect() as connection:
            rows = (await connection.execute(text(query), params)).all()
        items = [QueueItem(reference=r[0], sender_id=r[1], channel=channel_of(r[1]),
                           reason=r[2], priority=r[3], intent=r[4], created_at=r[5],
                           waiting_s=_seconds_since(r[5], now), negativity=_negativity(r[6]),
                           assigned_agent=r[7], assigned_name=r[8]) for r in rows]
        items.sort(key=lambda item: item.created_at, reverse=True)
        items.sort(key=lambda item: PRIORITY_RANK.get(item.priority, len(PRIORITY_RANK)))
        return items

    async def claim(self, reference: str, agent: Agent) -> bool:
        """Gives the open, unclaimed ticket to ``agent``: one conditional UPDATE.

        Returns:
            Whether this agent got it (False: someone else has it, or it is closed).
        """
        async with self.engine.begin() as connection:
            claimed = await connection.execute(text(
                "UPDATE tickets SET assigned_agent = :a, claimed_at = :now WHERE reference = :r "
                "AND status = 'open' AND assigned_agent IS NULL"),
                {"a": agent.agent_id, "now": now_iso(), "r": reference})
        return claimed.rowcount == 1

    async def ticket(self, reference: str) -> TicketDetail | None:
        async with self.engine.connect() as connection:
            row = (await connection.execute(text(
                "SELECT reference, sender_id, reason, priority, intent, status, created_at, "
                "assigned_agent, first_reply_at, closed_at, resolution, satisfaction, "
                "sentiment_history FROM tickets WHERE reference = :r"),
                {"r": reference})).first()
            if row is None:
                return None
            lines = (await connection.execute(text(
                "SELECT role, text, author, created_at, delivered FROM ticket_messages "
                "WHERE reference = :r ORDER BY id"), {"r": reference})).all()
        return TicketDetail(
            reference=row[0], sender_id=row[1], channel=channel_of(row[1]), reason=row[2],
            priority=row[3], intent=row[4], status=row[5], created_at=row[6],
            assigned_agent=row[7], first_reply_at=row[8], closed_at=row[9], resolution=row[10],
            satisfaction=row[11], negativity=_negativity(row[12]),
            lines=tuple(TicketLine(r[0], r[1], r[2], r[3], bool(r[4])) for r in lines))

    async def _held(self, connection: Any, reference: str, agent: Agent) -> None:
        held = (await connection.execute(text(
            "SELECT 1 FROM tickets WHERE reference = :r AND status = 'open' "
            "AND assigned_agent = :a"), {"r": reference, "a": agent.agent_id})).first()
        if held is None:
            raise NotYours(f"ticket {reference} is not open and claimed by you")

    async def add_reply(self, reference: str, agent: Agent, reply: str, *,
                        delivered: bool) -> None:
        """Records the agent's reply on the ticket they hold.

        Args:
            delivered: Whether the channel has it already (pushed); False leaves it
                for the action server to give with its next answer (REST).

        Raises:
            NotYours: The ticket is not open and claimed by ``agent``.
            StoreError: The reply is empty or too long.
        """
        if not reply.strip() or len(reply) > MAX_REPLY:
            raise StoreError(f"a reply has 1-{MAX_REPLY} characters")
        now = now_iso()
        async with self.engine.begin() as connection:
            await self._held(connection, reference, agent)
            await connection.execute(text(
                "INSERT INTO ticket_messages (reference, role, text, sent_at, created_at, "
                "delivered, author) VALUES (:r, 'agent', :t, :now, :now, :d, :a)"),
                {"r": reference, "t": reply, "now": now, "d": int(delivered),
                 "a": agent.agent_id})
            await connection.execute(text(
                "UPDATE tickets SET first_reply_at = COALESCE(first_reply_at, :now) "
                "WHERE reference = :r"), {"now": now, "r": reference})

    async def mark_undelivered(self, reference: str, reply: str) -> None:
        """A push that failed: the reply waits for the customer's next message instead."""
        async with self.engine.begin() as connection:
            await connection.execute(text(
                "UPDATE ticket_messages SET delivered = 0 WHERE id = (SELECT MAX(id) FROM "
                "ticket_messages WHERE reference = :r AND role = 'agent' AND text = :t)"),
                {"r": reference, "t": reply})

    async def require_held(self, reference: str, agent: Agent) -> None:
        """Raises ``NotYours`` unless the ticket is open and claimed by ``agent``."""
        async with self.engine.connect() as connection:
            await self._held(connection, reference, agent)

    async def finish(self, reference: str, agent: Agent, resolution: str | None) -> None:
        """Records that ``agent`` ended the ticket: closed, when, and the resolution note.

        Called after Rasa released the hand-over (its action closes the ticket too),
        so it does not require the ticket to be open, only to be this agent's.

        Raises:
            NotYours: The ticket is not claimed by ``agent``.
        """
        async with self.engine.begin() as connection:
            done = await connection.execute(text(
                "UPDATE tickets SET status = 'closed', closed_at = COALESCE(closed_at, :now), "
                "resolution = :note WHERE reference = :r AND assigned_agent = :a"),
                {"now": now_iso(), "note": (resolution or "").strip()[:MAX_REPLY] or None,
                 "r": reference, "a": agent.agent_id})
        if done.rowcount != 1:
            raise NotYours(f"ticket {reference} is not claimed by you")

    async def agent_names(self, agent_ids: Sequence[str]) -> dict[str, str]:
        if not agent_ids:
            return {}
        async with self.engine.connect() as connection:
            rows = (await connection.execute(text(
                "SELECT agent_id, display_name FROM agents"))).all()
        wanted = set(agent_ids)
        return {row[0]: row[1] for row in rows if row[0] in wanted}
