"""Rasa's SQL tracker store, keeping each conversation's tracker between its turns.

Rasa 3.6's ``SQLTrackerStore`` rebuilds the tracker from every stored event of the
session at the start of each turn: the events are read, parsed and replayed, a
sixth of a turn's CPU in a conversation of a dozen messages, growing with it
(``benchmarks/turn_profile.py``). This store keeps the tracker it saved at the
end of a turn and hands the same object to the conversation's next turn, once
one indexed query has shown that the conversation's stored events are as this
process left them (their newest id, their number and their latest time)::

    tracker_store:
      type: bot.tracker_cache.CachedSQLTrackerStore
      dialect: "sqlite"            # as Rasa's SQL tracker store
      db: "tracker.db"
      # cache_size: 1000           # conversations kept, least recently used dropped

The database stays the truth; the cache is dropped for a conversation when

- another process (another Rasa instance, an API call) stored events after ours, or
  events were deleted or their times changed behind Rasa's back;
- the tracker changed after it was saved (a turn that failed before saving);
- the turn started a new conversation session: a session's first read holds only
  that session's events, as Rasa's own store would give.

Turns of one conversation must not run at once in two processes. **One Rasa
instance only, for now:** with two instances on PostgreSQL and
``bot.lock_store.AtomicRedisLockStore``, ``make scale-check``'s normal levels passed
(0 lost at 32 and 128 customers), but its fault run (an instance killed, an action
server killed, PostgreSQL restarted) stored 106 messages twice or out of place and
missed 98, where Rasa's store (``bot.tracker_store.StrictSQLTrackerStore``, what
``make scale`` uses) then lost none. Later the strict store showed the same displaced
blocks, and the cause was found in the lock store: tickets queued behind a killed
instance's ticket expired with it, so turns of one conversation ran side by side (now
renewed, ``bot.lock_store``). The cache has not been run through the fault check since;
until it has, deployments with several instances use the strict store. As
``bot.tracker_store``'s strict store, a database failure fails the turn instead of
Rasa's silent fall-back to memory.

On SQLite (``make run``'s default) the file uses the WAL journal with
``synchronous=NORMAL``: with SQLite's defaults each turn's commit waits for the
disk twice. A commit then survives the process crashing; only a power cut can
lose the last turns. Several processes on one machine may still share the file.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm.session
import sqlalchemy.pool
from rasa.shared.core.events import Event, SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import INTENT_NAME_KEY

from bot.tracker_store import StrictSQLTrackerStore

logger = logging.getLogger(__name__)

DEFAULT_CACHE_SIZE = 1000


@dataclass(frozen=True)
class CachedTracker:
    """A tracker as this process saved it.

    Attributes:
        tracker: The tracker object the turn saved.
        stored: The conversation's stored events just after: newest id, number,
            latest timestamp (``EventsFingerprint``).
        length: How many events the tracker held then.
    """

    tracker: DialogueStateTracker
    stored: tuple
    length: int

    def still_as_saved(self, stored: tuple) -> bool:
        """Whether neither the database nor the object changed since the save."""
        return stored == self.stored and len(self.tracker.events) == self.length


def cache_size_from(value: Any) -> int:
    """The ``cache_size`` option, checked.

    Raises:
        InvalidConfigException: Not a whole number of at least 1.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidConfigException(
            f"tracker_store: cache_size must be a whole number of conversations, at "
            f"least 1; got {value!r}. Remove it for the default ({DEFAULT_CACHE_SIZE}).")
    return value


def holds_one_session(tracker: DialogueStateTracker) -> bool:
    """Whether the tracker's events are one session's, as a fresh read gives them.

    A session's events begin with ``action_session_start`` and ``session_started``;
    a later ``session_started`` means the turn began a new session, and a fresh
    read would leave out everything before it.
    """
    for position, event in enumerate(tracker.events):
        if isinstance(event, SessionStarted) and position > 1:
            return False
    return True


def sqlite_pragmas(connection: Any, _record: Any) -> None:
    """WAL journal, and commits that do not wait for the disk (see the module docstring)."""
    cursor = connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


class CachedSQLTrackerStore(StrictSQLTrackerStore):
    """Rasa's SQL tracker store that keeps trackers between turns (see the module
    docstring), and whose failures fail the turn (``bot.tracker_store``)."""

    def __init__(self, *args: Any, cache_size: int = DEFAULT_CACHE_SIZE,
                 **kwargs: Any) -> None:
        """Creates Rasa's SQL tracker store with Rasa's arguments.

        Args:
            *args: As Rasa's ``SQLTrackerStore``.
            cache_size: Conversations kept at most; the least recently used go first.
            **kwargs: As Rasa's ``SQLTrackerStore`` (``dialect``, ``host``, ``db``, ...).

        Raises:
            InvalidConfigException: ``cache_size`` is not a whole number >= 1.
        """
        self._cache_size = cache_size_from(cache_size)
        self._cache: OrderedDict[str, CachedTracker] = OrderedDict()
        super().__init__(*args, **kwargs)
        if self.engine.dialect.name == "sqlite":
            self._keep_sqlite_connections()

    def _keep_sqlite_connections(self) -> None:
        # SQLAlchemy 1.4 opens and closes a SQLite file per session (NullPool), and
        # closing the last connection to a WAL database checkpoints it to disk: a
        # few milliseconds per turn. One connection per thread is kept instead
        # (Rasa runs the store on its event loop's thread).
        url = self.engine.url
        self.engine.dispose()
        self.engine = sa.create_engine(url, poolclass=sa.pool.SingletonThreadPool)
        sa.event.listen(self.engine, "connect", sqlite_pragmas)
        self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)

    def _stored(self, sender_id: str) -> tuple:
        """The conversation's stored events in brief: newest id, number, latest time."""
        with self.session_scope() as session:
            return tuple(session.query(
                sa.func.max(self.SQLEvent.id), sa.func.count(self.SQLEvent.id),
                sa.func.max(self.SQLEvent.timestamp)).filter(
                self.SQLEvent.sender_id == sender_id).one())

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        """The conversation's latest session: the kept tracker when still current,
        otherwise read from the database as Rasa does."""
        entry = self._cache.get(sender_id)
        if entry is not None:
            if entry.still_as_saved(self._stored(sender_id)):
                self._cache.move_to_end(sender_id)
                return entry.tracker
            del self._cache[sender_id]
            logger.debug("tracker of %s changed elsewhere: read again", sender_id)
        return await super().retrieve(sender_id)

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Stores the turn's new events, then keeps the tracker for the next turn.

        For the tracker this store handed out, the new events are the ones after
        those it held then: no count of the stored events is needed. Any other
        tracker is stored as Rasa stores it.
        """
        entry = self._cache.pop(tracker.sender_id, None)
        if entry is not None and entry.tracker is tracker and len(tracker.events) >= entry.length:
            new_events = list(itertools.islice(tracker.events, entry.length, None))
            if self.event_broker is not None:
                await self._stream_new_events(self.event_broker, new_events, tracker.sender_id)
            self._append(tracker.sender_id, new_events)
        else:
            await super().save(tracker)
        if not holds_one_session(tracker):
            return
        try:
            stored = self._stored(tracker.sender_id)
        except Exception as error:  # noqa: BLE001 - the turn is stored; only the cache is lost
            # Failing here would fail a turn the database already holds, and the
            # customer's resend would store it twice.
            logger.warning("tracker of %s stored but not kept: %s", tracker.sender_id, error)
            return
        if stored[0] is None:
            return
        self._cache[tracker.sender_id] = CachedTracker(tracker, stored, len(tracker.events))
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _append(self, sender_id: str, events: list[Event]) -> None:
        """Stores events as ``SQLTrackerStore.save`` does."""
        if not events:
            return
        with self.session_scope() as session:
            rows = []
            for event in events:
                data = event.as_dict()
                rows.append(self.SQLEvent(
                    sender_id=sender_id, type_name=event.type_name,
                    timestamp=data.get("timestamp"),
                    intent_name=data.get("parse_data", {}).get("intent", {}).get(
                        INTENT_NAME_KEY),
                    action_name=data.get("name"), data=json.dumps(data)))
            session.add_all(rows)
            session.commit()
