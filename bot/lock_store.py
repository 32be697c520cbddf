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
across every instance. Use it in endpoints.yml::

    lock_store:
      type: bot.lock_store.AtomicRedisLockStore
      url: "127.0.0.1"
      port: 6379
      password: ${REDIS_PASSWORD}
      db: 1
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

# The mutex guards a few Redis round trips; it expires on its own should its holder
# die in between, and a step waits at most this long for it.
MUTEX_TIMEOUT_S = 5.0
MUTEX_WAIT_S = 10.0


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
