"""bot.tracker_store: a tracker store failure fails the turn instead of Rasa's silent
fall-back to memory (make scale-check restarts PostgreSQL under load)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rasa.core.tracker_store import FailSafeTrackerStore, InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot import tracker_store


class DatabaseDown(Exception):
    pass


class BrokenStore(InMemoryTrackerStore):
    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        raise DatabaseDown("connection refused")

    async def save(self, tracker: DialogueStateTracker) -> None:
        raise DatabaseDown("connection refused")


@pytest.fixture
def restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Puts Rasa's own hooks back after the test (the switch is process-wide)."""
    for name in ("on_tracker_store_error", "on_tracker_store_retrieve_error"):
        monkeypatch.setattr(FailSafeTrackerStore, name, getattr(FailSafeTrackerStore, name))


async def test_rasa_alone_answers_from_memory_and_the_database_never_hears(
        restored: None) -> None:
    store = FailSafeTrackerStore(BrokenStore(Domain.empty()))
    assert await store.retrieve("alice") is None  # a new, empty conversation
    await store.save(DialogueStateTracker("alice", []))  # kept in memory only


async def test_with_the_switch_the_failure_ends_the_turn(restored: None) -> None:
    tracker_store.fail_turns_on_tracker_store_errors()
    store = FailSafeTrackerStore(BrokenStore(Domain.empty()))
    with pytest.raises(DatabaseDown):
        await store.retrieve("alice")
    with pytest.raises(DatabaseDown):
        await store.save(DialogueStateTracker("alice", []))


async def test_the_strict_sql_store_switches_it_and_stores_as_rasas(
        restored: None, tmp_path: Path) -> None:
    store = tracker_store.StrictSQLTrackerStore(domain=Domain.empty(), dialect="sqlite",
                                                db=str(tmp_path / "tracker.db"))
    wrapped = FailSafeTrackerStore(store)
    tracker = DialogueStateTracker("alice", [])
    tracker.update(UserUttered("where is my order 12345?"))
    await wrapped.save(tracker)
    stored = await wrapped.retrieve("alice")
    assert stored is not None and stored.latest_message.text == "where is my order 12345?"
    assert FailSafeTrackerStore.on_tracker_store_error is tracker_store._fail_the_turn
