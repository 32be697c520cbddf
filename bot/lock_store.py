"""Rasa's Redis lock store, with its read-modify-write steps atomic across instances.

Rasa 3.6's ``RedisLockStore`` keeps each conversation's ticket lock as one JSON
value, and every step (issue a ticket, drop expired ones, finish serving) reads
the value, changes it in the process and writes it back. Two instances issuing a
ticket for the same conversation at the same moment can each overwrite the other's:
both then hold the lock, run a turn of that conversation at once, and the SQL
tracker store, which appends "the events after the ones already stored", keeps
only one of the two user messages. ``make scale-check`` saw exactly that: under a
PostgreSQL restart, a customer's message sent twice at once was answered twice and
stored once.

This store takes a short Redis mutex (``SET NX PX`` with a token, released by
redis-py's Lua script) around each of those steps, so they follow one another
across every instance.

**A live ticket is renewed.** Rasa's ticket expires ``TICKET_LOCK_LIFETIME`` seconds
after it was *issued*, however long it then waited in the queue, and whether or not its
turn still runs. After an instance dies mid-turn, every ticket queued behind its
ticket was issued within the same second or two: when the dead ticket expires, the
first waiting turn runs, and its own ticket expires a moment later, so the next one
runs beside it. The same happens to a turn stuck on the database for longer than the
lifetime. Two turns of one conversation at once is what the SQL tracker store cannot
take: each appends "the events after the ones already stored", and one turn's
messages are lost or land out of place. ``make scale-check`` saw exactly that when
PostgreSQL restarted during the burst of turns a killed instance's locks released.
Here the process that holds a ticket, waiting or serving, pushes its expiry forward
every quarter of the lifetime (:data:`RENEW_EVERY`) until the turn ends, so only the
tickets of a dead process expire, and the lifetime is only how long a dead instance
keeps its conversations waiting. Use it in endpoints.yml::

    lock_store:
      type: bot.lock_store.AtomicRedisLockStore
      url: "127.0.0.1"
      port: 6379
      password: ${REDIS_PASSWORD}
      db: 1
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

logger = logging.getLogger(__name__)

# The mutex guards a few Redis round trips; it expires on its own should its holder
# die in between, and a step waits at most this long for it.
MUTEX_TIMEOUT_S = 5.0
MUTEX_WAIT_S = 10.0
# A held ticket is renewed every this fraction of its lifetime: a process whose event
# loop stalls for three quarters of the lifetime loses its ticket.
RENEW_EVERY = 0.25
# Logged (as an error) when a live ticket could not be renewed; make scale-check counts it.
EXPIRED_WHILE_HELD = "lock ticket expired while its turn held or awaited it"


class AtomicRedisLockStore(RedisLockStore):
    """``RedisLockStore`` whose ticket steps are atomic (see the module docstring)."""

    def __init__(self, endpoint_config: EndpointConfig | None = None, **kwargs: Any) -> None:
        """Creates the store from Rasa's endpoint configuration, or as ``RedisLockStore``.

        Args:
            endpoint_config: The ``lock_store`` block of endpoints.yml (Rasa passes
                it to a lock store named by its module path).
            **kwargs: ``RedisLockStore``'s arguments, when there is no
                ``endpoint_config`` (tests).
        """
        if endpoint_config is not None:
            kwargs = {"host": endpoint_config.url or "localhost", **endpoint_config.kwargs}
        super().__init__(**kwargs)

    @contextmanager
    def _mutex(self, conversation_id: str) -> Iterator[None]:
        mutex = self.red.lock(f"{self.key_prefix}{conversation_id}:mutex",
                              timeout=MUTEX_TIMEOUT_S, blocking_timeout=MUTEX_WAIT_S)
        if not mutex.acquire():
            raise LockError(f"Could not update the lock of conversation '{conversation_id}' "
                            f"within {MUTEX_WAIT_S:.0f} s.")
        try:
            yield
        finally:
            mutex.release()

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        """Issues the next ticket, no other instance changing the lock meanwhile."""
        with self._mutex(conversation_id):
            return super().issue_ticket(conversation_id, lock_lifetime)

    def update_lock(self, conversation_id: str) -> None:
        """Drops expired tickets, no other instance changing the lock meanwhile."""
        with self._mutex(conversation_id):
            super().update_lock(conversation_id)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """Finishes a ticket and deletes the lock if no one waits, as one step: else
        a ticket issued in between would find its lock deleted (``LockError``)."""
        with self._mutex(conversation_id):
            super().cleanup(conversation_id, ticket_number)

    def renew_ticket(self, conversation_id: str, ticket_number: int,
                     lock_lifetime: float = LOCK_LIFETIME) -> bool:
        """Pushes a live ticket's expiry to ``lock_lifetime`` seconds from now.

        Args:
            conversation_id: The conversation the ticket queues for.
            ticket_number: The ticket ``issue_ticket`` returned.
            lock_lifetime: Seconds from now until the ticket expires, unless renewed.

        Returns:
            False if the ticket has expired already (it is not brought back: another
            turn may have started in its place).
        """
        with self._mutex(conversation_id):
            lock = self.get_lock(conversation_id)
            if lock is None:
                return False
            lock.remove_expired_tickets()
            ticket = next((t for t in lock.tickets if t.number == ticket_number), None)
            if ticket is None:
                return False
            ticket.expires = time.time() + lock_lifetime
            self.save_lock(lock)
            return True

    async def _renew_until_cancelled(self, conversation_id: str, ticket_number: int,
                                     lock_lifetime: float) -> None:
        while True:
            await asyncio.sleep(lock_lifetime * RENEW_EVERY)
            try:
                renewed = self.renew_ticket(conversation_id, ticket_number, lock_lifetime)
            except Exception as error:  # noqa: BLE001 - Redis away: try again next time
                logger.warning("could not renew the lock ticket of conversation '%s': %s",
                               conversation_id, error)
                continue
            if not renewed:
                logger.error("%s: conversation '%s' (the event loop stalled for %.0f s or "
                             "more?); another turn of it may run at once", EXPIRED_WHILE_HELD,
                             conversation_id, lock_lifetime * (1 - RENEW_EVERY))
                return

    @asynccontextmanager
    async def lock(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME,
                   wait_time_in_seconds: float = 1) -> AsyncIterator[TicketLock]:
        """Rasa's ticket lock, with the ticket renewed while this turn waits and runs.

        Args:
            conversation_id: The conversation whose turn this is.
            lock_lifetime: How long the ticket lives without renewal: how long a
                conversation waits for a process that died holding its ticket.
            wait_time_in_seconds: Seconds between looks at the queue while waiting.

        Yields:
            The conversation's lock, once this ticket is served.
        """
        ticket = self.issue_ticket(conversation_id, lock_lifetime)
        renewing = asyncio.create_task(
            self._renew_until_cancelled(conversation_id, ticket, lock_lifetime))
        try:
            yield await self._acquire_lock(conversation_id, ticket, wait_time_in_seconds)
        finally:
            renewing.cancel()
            self.cleanup(conversation_id, ticket)
