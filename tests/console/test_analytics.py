"""console.analytics on a real tracker ``events`` table and a real shop database."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from actions.db import SqlBackend
from console import analytics
from console.analytics import (
    PLOTS,
    TITLES,
    CustomerMessage,
    Series,
    Snapshot,
    TicketRecord,
    compute,
    customer_message,
    load,
    render_png,
    sentiment_score,
    to_csv,
)

UTC = timezone.utc
NOW = datetime(2026, 12, 10, 15, 0, tzinfo=UTC)  # a 7-day period: 4 to 10 December
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# The columns of rasa.core.tracker_store.SQLTrackerStore.SQLEvent (Rasa 3.6).
_METADATA = sa.MetaData()
EVENTS = sa.Table(
    "events", _METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sender_id", sa.String(255), nullable=False, index=True),
    sa.Column("type_name", sa.String(255), nullable=False),
    sa.Column("timestamp", sa.Float),
    sa.Column("intent_name", sa.String(255)),
    sa.Column("action_name", sa.String(255)),
    sa.Column("data", sa.Text),
)

AddEvent = Callable[..., Awaitable[None]]
AddTicket = Callable[..., Awaitable[None]]


def at(day: int, hour: int = 12, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, second, tzinfo=UTC)


def sentiment(positive: float, negative: float) -> dict[str, Any]:
    """A SentimentAnalyzer output (nlu_components.sentiment_analyzer.to_sentiment)."""
    neutral = 1.0 - positive - negative
    scores = {"negative": negative, "neutral": neutral, "positive": positive}
    label = max(scores, key=scores.__getitem__)
    return {"label": label, "confidence": scores[label], "scores": scores,
            "score": round(positive - negative, 4), "intensity": 0.5}


def user_event(text: str, when: datetime, intent: str | None,
               mood: dict[str, Any] | None = None, *, external: bool = False
               ) -> dict[str, Any]:
    """The JSON Rasa stores for a UserUttered (``as_dict``), with our pipeline's keys."""
    parse_data: dict[str, Any] = {"entities": [], "text": text, "message_id": "m",
                                  "metadata": {}}
    if intent is not None:
        parse_data["intent"] = {"name": intent, "confidence": 0.9}
        parse_data["intent_ranking"] = [{"name": intent, "confidence": 0.9}]
    if mood is not None:
        parse_data["sentiment"] = mood
    return {"event": "user", "timestamp": when.timestamp(),
            "metadata": {"is_external": True} if external else {"model_id": "x"},
            "text": text, "parse_data": parse_data, "input_channel": "rest",
            "message_id": "m"}


@pytest.fixture
async def tracker(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'tracker.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(_METADATA.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
def add_event(tracker: AsyncEngine) -> AddEvent:
    """Inserts one tracker event, as SQLTrackerStore would."""

    async def add(sender_id: str, when: datetime, text: str | None = None,
                  intent: str | None = None, mood: dict[str, Any] | None = None, *,
                  type_name: str = "user", external: bool = False,
                  data: str | None = None) -> None:
        if data is None:
            document = (user_event(text or "", when, intent, mood, external=external)
                        if type_name == "user" else {"event": type_name,
                                                     "timestamp": when.timestamp()})
            data = json.dumps(document)
        async with tracker.begin() as connection:
            await connection.execute(EVENTS.insert().values(
                sender_id=sender_id, type_name=type_name, timestamp=when.timestamp(),
                intent_name=intent if type_name == "user" else None,
                action_name="utter_greet" if type_name == "action" else None, data=data))

    return add


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"
    backend = SqlBackend(url, seed=False)
    await backend.start()  # the real schema, every migration
    await backend.close()
    engine = create_async_engine(url)
    yield engine
    await engine.dispose()


@pytest.fixture
def add_ticket(shop: AsyncEngine) -> AddTicket:
    """Inserts one ticket with the given times (ISO text, as actions.db writes them)."""
    counter = iter(range(1, 1000))

    async def add(reason: str, created_at: str, first_reply_at: str | None = None,
                  satisfaction: int | None = None) -> None:
        async with shop.begin() as connection:
            await connection.execute(sa.text(
                "INSERT INTO tickets (reference, sender_id, reason, intent, priority, "
                "department, routed, description, status, transcript, sentiment_history, "
                "created_at, first_reply_at, satisfaction) VALUES (:reference, 'rest:x', "
                ":reason, 'request_human', 'normal', 'support', 0, '', 'open', '[]', '[]', "
                ":created_at, :first_reply_at, :satisfaction)"),
                {"reference": f"T-{next(counter)}", "reason": reason, "created_at": created_at,
                 "first_reply_at": first_reply_at, "satisfaction": satisfaction})

    return add


async def fill_tracker(add_event: AddEvent) -> None:
    """Customers on 8, 9 and 10 December, and everything that must not count."""
    # 8 December: alice and bob.
    await add_event("rest:alice", at(8, 9), "where is my order?", "order_status",
                    sentiment(0.125, 0.625))  # -0.5
    await add_event("rest:alice", at(8, 9, 1), "/affirm", "affirm")  # a button
    await add_event("rest:alice", at(8, 9, 2), "thanks!", "thank", sentiment(1.0, 0.0))
    await add_event("webchat:bob", at(8, 10), "asdkj qwpoe", "nlu_fallback",
                    sentiment(0.25, 0.25))  # 0
    await add_event("webchat:bob", at(8, 10, 1), "what's the weather?", "out_of_scope",
                    sentiment(0.25, 0.5))  # -0.25
    # Rasa's own messages: a closed ticket, a reminder, and one flagged only by metadata.
    await add_event("rest:alice", at(8, 11), "EXTERNAL: EXTERNAL_ticket_closed",
                    "EXTERNAL_ticket_closed", sentiment(0.0, 1.0))
    await add_event("dingtalk:carol", at(8, 11), "EXTERNAL: EXTERNAL_handoff_timeout",
                    "EXTERNAL_handoff_timeout")
    await add_event("dingtalk:erin", at(8, 11), "request_human", "request_human",
                    sentiment(0.0, 1.0), external=True)
    # Not user messages at all.
    await add_event("rest:alice", at(8, 9, 0, 1), type_name="bot")
    await add_event("rest:alice", at(8, 9, 0, 2), type_name="action")
    await add_event("rest:frank", at(8, 8), type_name="session_started")
    # 9 December: alice (a sentiment with its score only) and dave (a button only).
    await add_event("rest:alice", at(9, 8), "hello", "greet", {"label": "positive",
                                                               "score": 0.5})
    await add_event("dingtalk:dave", at(9, 8), "/request_human", "request_human")
    # 10 December: bob, without sentiment.
    await add_event("webchat:bob", at(10, 9), "cancel my order", "cancel_order")
    await add_event("webchat:bob", at(10, 9, 5), "and order 12345?", "order_status")
    # Outside the period: 3 December, 23:59:59 UTC, and tomorrow.
    await add_event("rest:old", at(3, 23, 59, 59), "hi", "greet", sentiment(1.0, 0.0))
    await add_event("rest:future", at(11, 0), "hi", "greet", sentiment(1.0, 0.0))
    # Data that is not JSON: counted as unreadable, otherwise ignored.
    await add_event("rest:broken", at(9, 9), data="{not json")


async def fill_shop(add_ticket: AddTicket) -> None:
    await add_ticket("strongly_negative", "2026-12-08T10:00:00+00:00",
                     "2026-12-08T10:30:00+00:00", 5)  # 30 minutes
    await add_ticket("requested", "2026-12-08T12:00:00+00:00", "2026-12-08T12:10:00+00:00", 4)
    await add_ticket("requested", "2026-12-08T13:00:00+00:00", "2026-12-08T13:04:00+00:00")
    await add_ticket("requested", "2026-12-09T09:00:00+00:00", "2026-12-09T09:05:00+00:00")
    await add_ticket("complaint", "2026-12-09T09:00:00+00:00", "2026-12-09T09:20:00+00:00", 1)
    await add_ticket("requested", "2026-12-10T14:00:00+00:00")  # no reply yet
    # 4 December 01:30 UTC, written with another offset; replied 90 seconds later.
    await add_ticket("requested", "2026-12-03T23:30:00-02:00", "2026-12-04T01:31:30Z")
    # Outside: 3 December 23:00 UTC (sorts inside as text), November, tomorrow.
    await add_ticket("requested", "2026-12-04T01:00:00+02:00", "2026-12-04T01:10:00+02:00", 3)
    await add_ticket("complaint", "2026-11-20T10:00:00+00:00", "2026-11-20T10:01:00+00:00", 2)
    await add_ticket("requested", "2026-12-11T00:00:00+00:00", None, 1)  # tomorrow
    await add_ticket("requested", "2026-12-10T23:30:00-01:00", None, 1)  # tomorrow in UTC


@pytest.fixture
async def series(tracker: AsyncEngine, shop: AsyncEngine, add_event: AddEvent,
                 add_ticket: AddTicket) -> dict[str, Series]:
    await fill_tracker(add_event)
    await fill_shop(add_ticket)
    return compute(await load(tracker, shop, days=7, now=NOW))


# -- the series, from real databases ------------------------------------------------------
async def test_load_reads_customer_messages_and_tickets_of_the_period(
        tracker: AsyncEngine, shop: AsyncEngine, add_event: AddEvent,
        add_ticket: AddTicket) -> None:
    await fill_tracker(add_event)
    await fill_shop(add_ticket)
    snapshot = await load(tracker, shop, days=7, now=NOW)
    assert snapshot.start == at(4, 0) and snapshot.end == at(11, 0)
    assert [d.day for d in snapshot.days] == [4, 5, 6, 7, 8, 9, 10]
    assert sorted((m.sender_id, m.intent, m.button) for m in snapshot.messages) == [
        ("dingtalk:dave", "request_human", True),
        ("rest:alice", "affirm", True),
        ("rest:alice", "greet", False),
        ("rest:alice", "order_status", False),
        ("rest:alice", "thank", False),
        ("webchat:bob", "cancel_order", False),
        ("webchat:bob", "nlu_fallback", False),
        ("webchat:bob", "order_status", False),
        ("webchat:bob", "out_of_scope", False),
    ]
    assert snapshot.unreadable_events == 1
    assert snapshot.tracker_read
    assert len(snapshot.tickets) == 7
    assert min(t.created_at for t in snapshot.tickets) == at(4, 1, 30)


async def test_the_plots_in_page_order_with_titles(series: dict[str, Series]) -> None:
    assert tuple(series) == PLOTS == ("conversations", "intents", "fallback", "handover",
                                      "first_reply", "sentiment", "satisfaction")
    assert set(TITLES) == set(PLOTS)
    for name, item in series.items():
        assert item.name == name
        assert item.title.startswith(TITLES[name])
        assert item.kind in {"line", "bar"}
        assert all(len(row) == len(item.columns) for row in item.rows)
        assert set(item.plotted) <= set(item.columns[1:])


async def test_conversations_per_day_count_ids_with_a_customer_message(
        series: dict[str, Series]) -> None:
    conversations = series["conversations"]
    assert conversations.columns == ("day", "conversations", "customer_messages")
    # External messages (carol, erin, alice's closed ticket), bot events and a session
    # start (frank) are no conversation; a button click (dave) is.
    assert conversations.rows == (
        ("2026-12-04", 0, 0), ("2026-12-05", 0, 0), ("2026-12-06", 0, 0),
        ("2026-12-07", 0, 0), ("2026-12-08", 2, 5), ("2026-12-09", 2, 2),
        ("2026-12-10", 1, 2))


async def test_intent_mix_counts_typed_customer_messages(series: dict[str, Series]) -> None:
    intents = series["intents"]
    assert intents.columns == ("intent", "messages", "share")
    # No affirm nor request_human (buttons), no EXTERNAL_ intents, nothing outside.
    assert intents.rows == (
        ("order_status", 2, 0.2857), ("cancel_order", 1, 0.1429), ("greet", 1, 0.1429),
        ("nlu_fallback", 1, 0.1429), ("out_of_scope", 1, 0.1429), ("thank", 1, 0.1429))


async def test_fallback_and_out_of_scope_rates_per_day(series: dict[str, Series]) -> None:
    fallback = series["fallback"]
    assert fallback.columns == ("day", "messages", "nlu_fallback", "out_of_scope",
                                "nlu_fallback_rate", "out_of_scope_rate", "rate")
    assert fallback.rows == (
        ("2026-12-08", 4, 1, 1, 0.25, 0.25, 0.5),
        ("2026-12-09", 1, 0, 0, 0.0, 0.0, 0.0),
        ("2026-12-10", 2, 0, 0, 0.0, 0.0, 0.0))
    assert fallback.plotted == ("rate", "nlu_fallback_rate", "out_of_scope_rate")


async def test_handover_rate_by_reason_over_the_period(series: dict[str, Series]) -> None:
    handover = series["handover"]
    assert handover.columns == ("reason", "tickets", "rate")
    # 7 tickets in the period, 5 conversations (the total of the conversations plot).
    assert handover.rows == (("requested", 5, 1.0), ("complaint", 1, 0.2),
                             ("strongly_negative", 1, 0.2))
    assert "(7 tickets, 5 conversations)" in handover.title


async def test_median_minutes_to_the_first_reply(series: dict[str, Series]) -> None:
    first_reply = series["first_reply"]
    assert first_reply.columns == ("day", "median_minutes", "tickets")
    # 8 Dec: 30, 10, 4 -> 10; 9 Dec: 5, 20 -> 12.5; 10 Dec: no reply yet, no row.
    assert first_reply.rows == (("2026-12-04", 1.5, 1), ("2026-12-08", 10.0, 3),
                                ("2026-12-09", 12.5, 2))
    assert "1 tickets without a reply" in first_reply.note


async def test_average_sentiment_per_day(series: dict[str, Series]) -> None:
    mood = series["sentiment"]
    assert mood.columns == ("day", "mean_sentiment", "messages")
    # 8 Dec: -0.5, 1, 0, -0.25 (the external -1 is left out); 9 Dec: the stored score.
    assert mood.rows == (("2026-12-08", 0.0625, 4), ("2026-12-09", 0.5, 1))
    assert mood.y_range == (-1.0, 1.0)


async def test_satisfaction_counts_and_mean(series: dict[str, Series]) -> None:
    satisfaction = series["satisfaction"]
    assert satisfaction.columns == ("rating", "tickets", "mean_rating")
    assert satisfaction.rows == ((1, 1, 3.33), (2, 0, 3.33), (3, 0, 3.33), (4, 1, 3.33),
                                 (5, 1, 3.33))
    assert "mean 3.33 of 5, 3 ratings" in satisfaction.title


async def test_load_changes_neither_database(tracker: AsyncEngine, shop: AsyncEngine,
                                             add_event: AddEvent, add_ticket: AddTicket,
                                             tmp_path: Path) -> None:
    await fill_tracker(add_event)
    await fill_shop(add_ticket)
    await tracker.dispose()
    await shop.dispose()
    before = {name: hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
              for name in ("tracker.db", "shop.db")}
    await load(tracker, shop, days=7, now=NOW)
    await tracker.dispose()
    await shop.dispose()
    assert before == {name: hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
                      for name in ("tracker.db", "shop.db")}


# -- empty and missing databases ---------------------------------------------------------
async def test_empty_databases_give_empty_series_that_still_render(
        tracker: AsyncEngine, shop: AsyncEngine) -> None:
    result = compute(await load(tracker, shop, days=30, now=NOW))
    assert tuple(result) == PLOTS
    for item in result.values():
        assert item.rows == ()
        assert render_png(item).startswith(PNG_MAGIC)
        assert list(csv.reader(io.StringIO(to_csv(item)))) == [list(item.columns)]


async def test_without_a_tracker_only_the_ticket_plots_have_data(
        shop: AsyncEngine, add_ticket: AddTicket) -> None:
    await fill_shop(add_ticket)
    snapshot = await load(None, shop, days=7, now=NOW)
    assert not snapshot.tracker_read and snapshot.messages == ()
    result = compute(snapshot)
    for name in ("conversations", "intents", "fallback", "sentiment"):
        assert result[name].rows == ()
        assert "No tracker store" in result[name].note
    assert len(result["first_reply"].rows) == 3
    assert len(result["satisfaction"].rows) == 5
    # Tickets per reason, but no conversations to divide by.
    assert result["handover"].rows == (("requested", 5, None), ("complaint", 1, None),
                                       ("strongly_negative", 1, None))
    assert render_png(result["handover"]).startswith(PNG_MAGIC)


async def test_a_tracker_store_without_events_table_reads_as_empty(
        tmp_path: Path, shop: AsyncEngine) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'new-tracker.db'}")
    try:
        snapshot = await load(engine, shop, days=7, now=NOW)
    finally:
        await engine.dispose()
    assert snapshot.tracker_read and snapshot.messages == () and snapshot.unreadable_events == 0


# -- pure pieces ------------------------------------------------------------------------
@pytest.mark.parametrize("event", [
    user_event("EXTERNAL: EXTERNAL_ticket_closed", NOW, "EXTERNAL_ticket_closed"),
    user_event("closed", NOW, "greet", external=True),
    user_event("anything", NOW, "EXTERNAL_handoff_timeout"),
    user_event("", NOW, "greet"),
    {"event": "user", "timestamp": 0, "text": None},
])
def test_messages_rasa_made_or_without_text_are_no_customer_messages(
        event: dict[str, Any]) -> None:
    assert customer_message("rest:a", NOW.timestamp(), None, json.dumps(event)) is None


def test_a_customer_message_keeps_intent_button_and_sentiment() -> None:
    typed = customer_message("rest:a", 5.0, None,
                             json.dumps(user_event("hi", NOW, "greet", sentiment(0.75, 0.25))))
    assert typed == CustomerMessage("rest:a", 5.0, button=False, intent="greet", sentiment=0.5)
    button = customer_message("rest:a", 5.0, None, json.dumps(user_event("/affirm", NOW, None)))
    assert button == CustomerMessage("rest:a", 5.0, button=True, intent=None, sentiment=None)
    # The intent_name column when the JSON has no intent.
    column = customer_message("rest:a", 5.0, "deny", json.dumps(user_event("no", NOW, None)))
    assert column is not None and column.intent == "deny"
    with pytest.raises(ValueError):
        customer_message("rest:a", 5.0, None, "[1, 2]")


@pytest.mark.parametrize(("value", "expected"), [
    (sentiment(0.75, 0.125), 0.625),
    ({"label": "negative", "score": -0.25}, -0.25),
    ({"scores": {"positive": 0.5}, "score": 0.125}, 0.125),
    ({"score": 3.0}, 1.0),
    ({"score": float("nan")}, None),
    ({"score": True}, None),
    ({"label": "neutral"}, None),
    (None, None),
    ("positive", None),
])
def test_sentiment_score_is_positive_minus_negative(value: Any, expected: float | None
                                                    ) -> None:
    assert sentiment_score(value) == expected


def test_compute_leaves_out_impossible_replies_ratings_and_rows_outside_the_period() -> None:
    start, end = analytics.period(2, NOW)
    snapshot = Snapshot(
        start=start, end=end,
        messages=(CustomerMessage("rest:a", at(10, 1).timestamp(), intent="greet"),
                  CustomerMessage("rest:b", at(1, 1).timestamp(), intent="greet")),
        tickets=(
            TicketRecord("T-1", "requested", at(9, 10), at(9, 9, 59), 7),  # reply before
            TicketRecord("T-2", "requested", at(9, 10), at(9, 10, 3), 0),
            TicketRecord("T-3", "requested", at(9, 10), at(9, 10, 1), 3),
            TicketRecord("T-4", "requested", at(1, 10), at(1, 10, 1), 5),  # outside
        ),
        unreadable_events=2, unreadable_tickets=1)
    result = compute(snapshot)
    assert result["conversations"].rows == (("2026-12-09", 0, 0), ("2026-12-10", 1, 1))
    assert result["first_reply"].rows == (("2026-12-09", 2.0, 2),)
    assert result["satisfaction"].rows == ((1, 0, 3.0), (2, 0, 3.0), (3, 1, 3.0),
                                           (4, 0, 3.0), (5, 0, 3.0))
    assert result["handover"].rows == (("requested", 3, 3.0),)
    assert "2 user events with unreadable data" in result["intents"].note
    assert "1 tickets with an unreadable created_at" in result["satisfaction"].note


@pytest.mark.parametrize(("days", "now"), [
    (0, NOW), (analytics.MAX_DAYS + 1, NOW), (True, NOW), ("7", NOW),
    (7, datetime(2026, 12, 10, 15)),
])
def test_period_refuses_bad_days_and_naive_times(days: Any, now: datetime) -> None:
    with pytest.raises(ValueError):
        analytics.period(days, now)


def test_period_is_whole_utc_days_ending_today() -> None:
    late_in_tokyo = datetime(2026, 12, 11, 8, 0, tzinfo=timezone(timedelta(hours=9)))
    assert analytics.period(1, late_in_tokyo) == (at(10, 0), at(11, 0))
    assert analytics.period(30, NOW) == (datetime(2026, 11, 11, tzinfo=UTC), at(11, 0))


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-11-30T22:45:51+00:00", datetime(2026, 11, 30, 22, 45, 51, tzinfo=UTC)),
    ("2026-11-30T22:45:51.500Z", datetime(2026, 11, 30, 22, 45, 51, 500000, tzinfo=UTC)),
    ("2026-11-30T23:45:51+01:00", datetime(2026, 11, 30, 22, 45, 51, tzinfo=UTC)),
    ("2026-11-30 22:45:51", datetime(2026, 11, 30, 22, 45, 51, tzinfo=UTC)),
    ("yesterday", None), ("", None), (None, None),
])
def test_parse_time(value: Any, expected: datetime | None) -> None:
    assert analytics.parse_time(value) == expected


# -- output -----------------------------------------------------------------------------
def _png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(PNG_MAGIC)
    return struct.unpack(">II", png[16:24])  # the IHDR chunk's width and height


async def test_every_series_renders_a_small_png(series: dict[str, Series]) -> None:
    for item in series.values():
        assert _png_size(render_png(item)) == (600, 300)


def test_many_categories_and_a_single_day_render() -> None:
    many = Series(name="intents", title="t", x_label="x", y_label="y",
                  columns=("intent", "messages", "share"),
                  rows=tuple((f"intent_{i}", 30 - i, 0.01) for i in range(30)), kind="bar")
    one_day = Series(name="first_reply", title="t", x_label="x", y_label="y",
                     columns=("day", "median_minutes", "tickets"),
                     rows=(("2026-12-10", 0.0, 1),), kind="line")
    for item in (many, one_day):
        assert _png_size(render_png(item)) == (600, 300)


async def test_csv_round_trips(series: dict[str, Series]) -> None:
    for item in series.values():
        read = list(csv.reader(io.StringIO(to_csv(item))))
        assert read[0] == list(item.columns)
        assert read[1:] == [["" if cell is None else str(cell) for cell in row]
                            for row in item.rows]
    assert list(csv.reader(io.StringIO(to_csv(series["fallback"]))))[1] == [
        "2026-12-08", "4", "1", "1", "0.25", "0.25", "0.5"]


def test_csv_defuses_spreadsheet_formulas_and_quotes_commas() -> None:
    item = Series(name="handover", title="t", x_label="x", y_label="y",
                  columns=("reason", "tickets", "rate"),
                  rows=(("=HYPERLINK(1)", 1, None), ("a, b", 2, -0.5)), kind="bar")
    assert list(csv.reader(io.StringIO(to_csv(item)))) == [
        ["reason", "tickets", "rate"], ["'=HYPERLINK(1)", "1", ""], ["a, b", "2", "-0.5"]]


def test_matplotlib_is_not_imported_with_the_module() -> None:
    import subprocess
    import sys

    code = "import sys, console.analytics; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=Path(__file__).resolve().parents[2])
    assert result.stdout.strip() == "False"
