"""bot.tracker_cache: the kept tracker is always what Rasa's own SQL store would read."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
from rasa.core.tracker_store import FailSafeTrackerStore, SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    Event,
    SessionStarted,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import InvalidConfigException

from bot import tracker_cache
from bot.tracker_cache import CachedSQLTrackerStore

DOMAIN = Domain.empty()


@pytest.fixture(autouse=True)
def restored_fail_safe(monkeypatch: pytest.MonkeyPatch) -> None:
    """The store is strict (bot.tracker_store): it switches Rasa's FailSafeTrackerStore
    for the whole process, so the switch is undone after each test."""
    for name in ("on_tracker_store_error", "on_tracker_store_retrieve_error"):
        monkeypatch.setattr(FailSafeTrackerStore, name, getattr(FailSafeTrackerStore, name))


@pytest.fixture
def make_store(tmp_path: Path) -> Callable[..., SQLTrackerStore]:
    def make(cls: type = CachedSQLTrackerStore, **options) -> SQLTrackerStore:
        return cls(domain=DOMAIN, dialect="sqlite", db=str(tmp_path / "tracker.db"),
                   **options)

    return make


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The senders whose tracker was rebuilt from the database."""
    calls: list[str] = []
    original = DialogueStateTracker.from_dict

    def counted(sender_id, *args, **kwargs):
        calls.append(sender_id)
        return original(sender_id, *args, **kwargs)

    monkeypatch.setattr(DialogueStateTracker, "from_dict", staticmethod(counted))
    return calls


def session_start(timestamp: float) -> list[Event]:
    return [ActionExecuted("action_session_start", timestamp=timestamp),
            SessionStarted(timestamp=timestamp)]


def turn(text: str, timestamp: float) -> list[Event]:
    return [ActionExecuted("action_listen", timestamp=timestamp),
            UserUttered(text, {"name": "greet", "confidence": 1.0}, timestamp=timestamp),
            BotUttered(f"echo {text}", timestamp=timestamp)]


def as_dicts(tracker: DialogueStateTracker | None) -> list[dict]:
    return [] if tracker is None else [event.as_dict() for event in tracker.events]


async def started(store: SQLTrackerStore, sender: str = "alex") -> DialogueStateTracker:
    tracker = DialogueStateTracker.from_events(sender, session_start(1.0) + turn("hi", 2.0),
                                               slots=DOMAIN.slots)
    await store.save(tracker)
    return tracker


async def test_the_next_turn_gets_the_saved_tracker_without_a_read(make_store,
                                                                   reads) -> None:
    store = make_store()
    tracker = await started(store)

    assert await store.retrieve("alex") is tracker
    assert reads == []
    # ...and it is what Rasa's own store reads from the same database.
    assert as_dicts(tracker) == as_dicts(await make_store(SQLTrackerStore).retrieve("alex"))


async def test_events_stored_by_another_process_are_read(make_store, reads) -> None:
    store, other = make_store(), make_store(SQLTrackerStore)
    await started(store)
    elsewhere = await other.retrieve("alex")
    for event in turn("from the other instance", 3.0):
        elsewhere.update(event)
    await other.save(elsewhere)

    fresh = await store.retrieve("alex")
    assert as_dicts(fresh) == as_dicts(elsewhere)
    assert "alex" in reads


async def test_a_tracker_changed_after_its_save_is_read_again(make_store, reads) -> None:
    store = make_store()
    tracker = await started(store)
    tracker.update(UserUttered("never saved", timestamp=3.0))  # a turn that failed

    fresh = await store.retrieve("alex")
    assert fresh is not tracker
    assert [e.get("text") for e in as_dicts(fresh) if e["event"] == "user"] == ["hi"]


async def test_a_new_session_is_read_as_rasa_reads_it(make_store, reads) -> None:
    store = make_store()
    tracker = await started(store)
    for event in session_start(10.0) + turn("back again", 11.0):
        tracker.update(event)
    await store.save(tracker)

    fresh = await store.retrieve("alex")
    assert fresh is not tracker  # holds the old session: not kept
    assert as_dicts(fresh) == as_dicts(await make_store(SQLTrackerStore).retrieve("alex"))
    assert [e.get("text") for e in as_dicts(fresh) if e["event"] == "user"] == ["back again"]
    # The following turns store only their own events, kept or not.
    for event in turn("and more", 12.0):
        fresh.update(event)
    await store.save(fresh)
    assert await store.retrieve("alex") is fresh
    assert as_dicts(fresh) == as_dicts(await make_store(SQLTrackerStore).retrieve("alex"))


async def test_many_turns_store_each_event_once(make_store) -> None:
    store, plain = make_store(), make_store(SQLTrackerStore)
    tracker = await started(store)
    for number in range(5):
        tracker = await store.retrieve("alex")
        for event in turn(f"message {number}", 3.0 + number):
            tracker.update(event)
        await store.save(tracker)
    assert as_dicts(await plain.retrieve("alex")) == as_dicts(tracker)
    assert len(tracker.events) == 2 + 3 * 6


async def test_least_recently_used_conversations_are_dropped(make_store, reads) -> None:
    store = make_store(cache_size=2)
    for sender in ("a", "b", "c"):
        await started(store, sender)
    assert await store.retrieve("a") is not None
    assert reads == ["a"]  # dropped when "c" came
    await store.retrieve("c")
    assert reads == ["a"]


async def test_an_unknown_conversation_is_none(make_store) -> None:
    assert await make_store().retrieve("nobody") is None


@pytest.mark.parametrize("value", [0, -1, 2.5, "10", True, None])
def test_a_bad_cache_size_names_the_key(make_store, value) -> None:
    with pytest.raises(InvalidConfigException, match="cache_size"):
        make_store(cache_size=value)


def test_one_session_means_no_later_session_start() -> None:
    one = DialogueStateTracker.from_events("x", session_start(1.0) + turn("hi", 2.0))
    two = DialogueStateTracker.from_events("x", session_start(1.0) + turn("hi", 2.0)
                                           + session_start(5.0))
    assert tracker_cache.holds_one_session(one)
    assert not tracker_cache.holds_one_session(two)
    assert tracker_cache.holds_one_session(DialogueStateTracker.from_events("x", []))


def test_sqlite_commits_use_wal_without_waiting_for_the_disk(make_store) -> None:
    store = make_store()
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    plain = make_store(SQLTrackerStore)  # Rasa's own store keeps SQLite's defaults
    with plain.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL


class RecordingBroker:
    """An event broker that keeps what it is given."""

    def __init__(self) -> None:
        self.published: list[dict] = []

    def publish(self, event: dict) -> None:
        self.published.append(event)


async def play(store: SQLTrackerStore, turns: int) -> None:
    tracker = await started(store)
    for number in range(turns):
        tracker = await store.retrieve("alex")
        for event in turn(f"message {number}", 3.0 + number):
            tracker.update(event)
        await store.save(tracker)


async def test_rows_are_those_rasas_store_writes(tmp_path: Path) -> None:
    def rows(store: SQLTrackerStore) -> list[tuple]:
        with store.session_scope() as session:
            return [(r.sender_id, r.type_name, r.timestamp, r.intent_name, r.action_name,
                     r.data) for r in session.query(store.SQLEvent).order_by(store.SQLEvent.id)]

    cached = CachedSQLTrackerStore(domain=DOMAIN, dialect="sqlite", db=str(tmp_path / "a.db"))
    plain = SQLTrackerStore(domain=DOMAIN, dialect="sqlite", db=str(tmp_path / "b.db"))
    await play(cached, 3)
    await play(plain, 3)
    assert rows(cached) == rows(plain)
    assert ("alex", "user", 3.0, "greet", None) in [row[:5] for row in rows(cached)]


async def test_each_new_event_reaches_the_event_broker_once(tmp_path: Path) -> None:
    cached, plain = RecordingBroker(), RecordingBroker()
    await play(CachedSQLTrackerStore(domain=DOMAIN, dialect="sqlite", event_broker=cached,
                                     db=str(tmp_path / "a.db")), 3)
    await play(SQLTrackerStore(domain=DOMAIN, dialect="sqlite", event_broker=plain,
                               db=str(tmp_path / "b.db")), 3)
    assert cached.published == plain.published
    assert len(cached.published) == 2 + 3 + 3 * 3


def test_a_database_failure_fails_the_turn(make_store) -> None:
    from bot import tracker_store

    make_store()
    assert FailSafeTrackerStore.on_tracker_store_error is tracker_store._fail_the_turn


async def test_events_changed_behind_rasas_back_are_read_again(make_store, reads) -> None:
    store = make_store()
    tracker = await started(store)
    with store.session_scope() as session:  # "two hours pass", as a test or a fix-up does
        session.query(store.SQLEvent).update(
            {store.SQLEvent.timestamp: store.SQLEvent.timestamp - 7200})
        session.commit()

    assert await store.retrieve("alex") is not tracker
    assert reads == ["alex"]


async def test_deleted_events_are_not_served_from_memory(make_store) -> None:
    store = make_store()
    await started(store)
    with store.session_scope() as session:  # e.g. an erasure request
        session.query(store.SQLEvent).filter(store.SQLEvent.type_name == "user").delete()
        session.commit()

    fresh = await store.retrieve("alex")
    assert [e for e in as_dicts(fresh) if e["event"] == "user"] == []


async def test_a_failure_after_the_commit_does_not_fail_the_stored_turn(
        make_store, monkeypatch: pytest.MonkeyPatch) -> None:
    store = make_store()
    tracker = await started(store)

    def down(sender_id: str) -> tuple:
        raise OSError("connection lost after the commit")

    monkeypatch.setattr(store, "_stored", down)
    for event in turn("stored anyway", 5.0):
        tracker.update(event)
    await store.save(tracker)  # no error: the customer must not resend it
    monkeypatch.undo()

    plain = make_store(SQLTrackerStore)
    assert as_dicts(await plain.retrieve("alex")) == as_dicts(tracker)
    assert await store.retrieve("alex") is not tracker  # not kept: read again
