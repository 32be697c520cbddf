"""The agent console's analytics: plots of the real databases, each with a CSV export.

Three steps, so that the arithmetic is pure and tested without a server:

- ``load`` reads the period's rows, read only, with portable SQL (SQLite and
  PostgreSQL): customer messages from Rasa's SQL tracker store (table ``events``)
  and tickets from the shop database (``tickets``, schema version 4);
- ``compute`` turns a ``Snapshot`` into one ``Series`` per plot of ``PLOTS``;
- ``render_png`` draws a series (matplotlib, imported only then) and ``to_csv``
  writes it as CSV.

Definitions (all days are UTC days; the period is the last ``days`` days, today
included):

- A *customer message* is a ``user`` event typed or clicked by the customer. Events
  that Rasa makes itself (``trigger_intent``, reminders: text ``"EXTERNAL: ..."``,
  ``metadata.is_external``, or an ``EXTERNAL_...`` intent) are never counted.
  Button clicks (text ``"/intent..."``) count for conversations only: their intent is
  the button's payload, not a classification of what the customer wrote, so they
  would inflate the intent mix and dilute the fallback rate and the sentiment.
- A *conversation* is a conversation id (``rest:...``, ``webchat:...``) with at least
  one customer message on a day: one conversation over several days counts once a
  day. The hand-over rate divides by the period's sum of these daily counts, so its
  denominator is the total of the conversations plot.
- Tickets belong to the day they were created (``tickets.created_at``), for the
  hand-over rate, the time to the first reply and the satisfaction alike.
- Sentiment is ``P(positive) - P(negative)`` of ``parse_data.sentiment.scores``
  (``nlu_components.sentiment_analyzer``), in [-1, 1]; its stored ``score`` is the
  same difference rounded, used only when the scores are missing.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
import textwrap
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect, text

if TYPE_CHECKING:  # the engines are only passed through; keep the import light
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

PLOTS: tuple[str, ...] = ("conversations", "intents", "fallback", "handover", "first_reply",
                          "sentiment", "satisfaction")
TITLES: dict[str, str] = {
    "conversations": "Conversations per day",
    "intents": "Intent mix of customer messages",
    "fallback": "Fallback and out-of-scope rate",
    "handover": "Hand-over rate by reason",
    "first_reply": "Median time to the first agent reply",
    "sentiment": "Average customer sentiment",
    "satisfaction": "Customer satisfaction",
}
# The longest period ``load`` accepts: a year (a leap year's too) of rows is still
# one read; longer belongs in a warehouse, not in a page request.
MAX_DAYS = 366

# Rasa's nlu_fallback (nlu_components.intent_output.FALLBACK_INTENT: unsure, gibberish,
# another language) and the unknown_intent that config.yml's "auto" resolves to,
# because domain.yml has out_of_scope. Not imported: that module imports Rasa.
FALLBACK_INTENT = "nlu_fallback"
OUT_OF_SCOPE_INTENT = "out_of_scope"
# rasa.shared.core.constants.EXTERNAL_MESSAGE_PREFIX and IS_EXTERNAL (Rasa not imported).
EXTERNAL_PREFIX = "EXTERNAL: "
EXTERNAL_INTENT_PREFIX = "EXTERNAL_"
BUTTON_PREFIX = "/"
NO_INTENT = "(none)"  # a customer message the NLU gave no intent
RATINGS = (1, 2, 3, 4, 5)
# Horizontal bars beyond this many are left to the CSV: they would not be legible.
MAX_BARS = 15
# Spreadsheets run a cell that starts with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_BATCH = 1000  # rows fetched at a time: the events' JSON is not all held at once


@dataclass(frozen=True)
class CustomerMessage:
    """What the analytics keep of one customer message (a tracker ``user`` event).

    Attributes:
        sender_id: The conversation id (``rest:...``, ``webchat:...``).
        timestamp: Seconds since the epoch.
        button: A button click (``/intent`` payload) rather than typed text.
        intent: The intent NLU gave it; ``None`` when it has none.
        sentiment: ``P(positive) - P(negative)`` in [-1, 1]; ``None`` without sentiment.
    """

    sender_id: str
    timestamp: float
    button: bool = False
    intent: str | None = None
    sentiment: float | None = None


@dataclass(frozen=True)
class TicketRecord:
    """What the analytics keep of one ticket (times are timezone-aware, UTC).

    Attributes:
        reference: The ticket's reference.
        reason: Why the conversation was handed over (``requested``, ...).
        created_at: When the ticket was filed.
        first_reply_at: An agent's first reply; ``None`` before one.
        satisfaction: The customer's rating (1-5); ``None`` when not rated.
    """

    reference: str
    reason: str
    created_at: datetime
    first_reply_at: datetime | None = None
    satisfaction: int | None = None


@dataclass(frozen=True)
class Snapshot:
    """The rows of one period, as ``load`` read them.

    Attributes:
        start: The first instant of the period (midnight UTC).
        end: The end of the period (next midnight UTC after the last day), exclusive.
        messages: Customer messages in the period (Rasa's own events left out).
        tickets: Tickets created in the period.
        tracker_read: Whether a tracker store was read (``False``: no tracker engine,
            so the message-based plots have no data).
        unreadable_events: ``user`` events left out because their data was not JSON.
        unreadable_tickets: Tickets left out because ``created_at`` was not a time.
    """

    start: datetime
    end: datetime
    messages: tuple[CustomerMessage, ...] = ()
    tickets: tuple[TicketRecord, ...] = ()
    tracker_read: bool = True
    unreadable_events: int = 0
    unreadable_tickets: int = 0

    @property
    def days(self) -> tuple[date, ...]:
        """The period's UTC days, oldest first."""
        first, last = self.start.date(), (self.end - timedelta(microseconds=1)).date()
        return tuple(first + timedelta(days=i) for i in range((last - first).days + 1))


@dataclass(frozen=True)
class Series:
    """One plot's data: a table (``columns`` and ``rows``) and how to draw it.

    The first column is the x axis: a day as ``YYYY-MM-DD`` for ``line`` plots, a
    category (or a rating) for ``bar`` plots. Columns named ``*rate`` are shares in
    [0, 1], drawn as percentages. A ``None`` cell has no value (an empty CSV cell).

    Attributes:
        name: The url-safe name, one of ``PLOTS``.
        title: The plot's title (may carry a summary, e.g. the mean rating).
        x_label: The x axis' label.
        y_label: The y axis' label.
        columns: The CSV header.
        rows: The table, one tuple per row.
        kind: ``line`` or ``bar``.
        note: How the numbers were made and what was left out, for the page.
        y_columns: The columns drawn (the second column when empty).
        y_range: Fixed limits of the value axis; automatic when ``None``.
    """

    name: str
    title: str
    x_label: str
    y_label: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    kind: str
    note: str = ""
    y_columns: tuple[str, ...] = ()
    y_range: tuple[float, float] | None = None

    @property
    def plotted(self) -> tuple[str, ...]:
        """The columns drawn as values."""
        return self.y_columns or self.columns[1:2]


# -- reading ----------------------------------------------------------------------------
def period(days: int = 30, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The last ``days`` UTC days, today included, as ``[start, end)``.

    Args:
        days: How many days, 1 to ``MAX_DAYS``.
        now: The current time (timezone-aware); the clock when ``None``.

    Returns:
        Midnight UTC of the first day and midnight UTC after today.

    Raises:
        ValueError: ``days`` is out of range or ``now`` has no timezone.
    """
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be a whole number from 1 to {MAX_DAYS}, not {days!r}")
    if now is None:
        now = datetime.now(timezone.utc)
    elif now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    today = now.astimezone(timezone.utc).date()
    end = datetime.combine(today + timedelta(days=1), time(), tzinfo=timezone.utc)
    return end - timedelta(days=days), end


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 time from the shop database as an aware UTC datetime.

    Args:
        value: ``'2026-11-30T22:45:51+00:00'`` (what ``actions.db`` writes), with or
            without fractions, ``Z`` for UTC, or no offset (taken as UTC); a datetime
            too, as PostgreSQL drivers may return one.

    Returns:
        The time in UTC, or ``None`` when ``value`` is empty or not a time.
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value.strip():
        iso = value.strip()
        if iso.endswith(("Z", "z")):  # Python 3.10's fromisoformat does not read Z
            iso = iso[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(iso)
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def sentiment_score(sentiment: Any) -> float | None:
    """``P(positive) - P(negative)`` of a message's ``sentiment`` (SentimentAnalyzer).

    Args:
        sentiment: ``{"label", "confidence", "scores": {"negative", "neutral",
            "positive"}, "score", "intensity"}``; ``score`` (the same difference,
            rounded) is used only when ``scores`` lacks either probability.

    Returns:
        The score clamped to [-1, 1], or ``None`` when there is no usable sentiment.
    """
    if not isinstance(sentiment, Mapping):
        return None
    scores = sentiment.get("scores")
    value: float | None = None
    if isinstance(scores, Mapping):
        positive, negative = _number(scores.get("positive")), _number(scores.get("negative"))
        if positive is not None and negative is not None:
            value = positive - negative
    if value is None:
        value = _number(sentiment.get("score"))
    return None if value is None else max(-1.0, min(1.0, value))


def customer_message(sender_id: str, timestamp: float, intent_name: str | None,
                     data: str | None) -> CustomerMessage | None:
    """The customer message of one tracker ``user`` event, if a customer sent it.

    Args:
        sender_id: The event's ``sender_id`` column.
        timestamp: The event's ``timestamp`` column.
        intent_name: The event's ``intent_name`` column (used when the JSON has none).
        data: The event's ``data`` column: ``UserUttered.as_dict()`` as JSON.

    Returns:
        The message, or ``None`` for an event Rasa made itself (``trigger_intent``,
        reminders) or one without text.

    Raises:
        ValueError: ``data`` is not a JSON object.
    """
    event = json.loads(data) if data else {}
    if not isinstance(event, dict):
        raise ValueError("the event's data is not a JSON object")
    message_text = event.get("text")
    if not isinstance(message_text, str) or not message_text.strip():
        return None  # nothing was said: not a message anybody typed
    metadata = event.get("metadata")
    if message_text.startswith(EXTERNAL_PREFIX) or (
            isinstance(metadata, Mapping) and metadata.get("is_external") is True):
        return None
    parse_data = event.get("parse_data")
    parse_data = parse_data if isinstance(parse_data, Mapping) else {}
    intent = parse_data.get("intent")
    name = intent.get("name") if isinstance(intent, Mapping) else None
    if not isinstance(name, str) or not name:
        name = intent_name or None
    if name is not None and name.startswith(EXTERNAL_INTENT_PREFIX):
        return None  # domain.yml: these intents only ever come from external events
    return CustomerMessage(sender_id=sender_id, timestamp=float(timestamp),
                           button=message_text.lstrip().startswith(BUTTON_PREFIX),
                           intent=name, sentiment=sentiment_score(parse_data.get("sentiment")))


async def load(tracker: AsyncEngine | None, shop: AsyncEngine, *, days: int = 30,
               now: datetime | None = None) -> Snapshot:
    """Reads the period's customer messages and tickets (read only).

    Args:
        tracker: Rasa's SQL tracker store; ``None`` when there is none, and then only
            the ticket-based plots have data. A store whose ``events`` table does
            not exist yet (Rasa never ran) reads as empty.
        shop: The shop database, migrated to schema version 4 or later.
        days: The period's length in UTC days, today included (1 to ``MAX_DAYS``).
        now: The current time (timezone-aware); the clock when ``None``.

    Returns:
        The rows of the period, for ``compute``.

    Raises:
        ValueError: ``days`` or ``now`` is invalid (see ``period``).
        sqlalchemy.exc.SQLAlchemyError: A database cannot be read.
    """
    start, end = period(days, now)
    messages: tuple[CustomerMessage, ...] = ()
    unreadable_events = 0
    if tracker is not None:
        messages, unreadable_events = await _read_messages(tracker, start, end)
    tickets, unreadable_tickets = await _read_tickets(shop, start, end)
    return Snapshot(start=start, end=end, messages=messages, tickets=tickets,
                    tracker_read=tracker is not None, unreadable_events=unreadable_events,
                    unreadable_tickets=unreadable_tickets)


async def _read_messages(engine: AsyncEngine, start: datetime, end: datetime
                         ) -> tuple[tuple[CustomerMessage, ...], int]:
    messages: list[CustomerMessage] = []
    unreadable = 0
    # connect(), never begin(): nothing is committed to Rasa's database.
    async with engine.connect() as connection:
        if not await _has_table(connection, "events"):
            return (), 0
        # "timestamp" is quoted: it is a keyword in PostgreSQL (allowed as a name).
        result = await connection.stream(text(
            'SELECT sender_id, "timestamp", intent_name, data FROM events '
            'WHERE type_name = :type AND "timestamp" >= :start AND "timestamp" < :end'),
            {"type": "user", "start": start.timestamp(), "end": end.timestamp()})
        async for rows in result.partitions(_BATCH):
            for sender_id, timestamp, intent_name, data in rows:
                try:
                    message = customer_message(sender_id, timestamp, intent_name, data)
                except ValueError:  # json.JSONDecodeError is a ValueError
                    unreadable += 1
                    continue
                if message is not None:
                    messages.append(message)
    return tuple(messages), unreadable


async def _read_tickets(engine: AsyncEngine, start: datetime, end: datetime
                        ) -> tuple[tuple[TicketRecord, ...], int]:
    tickets: list[TicketRecord] = []
    unreadable = 0
    # The times are ISO text: any ISO time of a day sorts after that day's date, so
    # the database narrows by date (a day wider on each side, for offsets other than
    # UTC, up to 14 hours) and the exact bounds are checked on the parsed times.
    since = (start.date() - timedelta(days=1)).isoformat()
    until = (end.date() + timedelta(days=1)).isoformat()
    async with engine.connect() as connection:
        result = await connection.stream(text(
            "SELECT reference, reason, created_at, first_reply_at, satisfaction "
            "FROM tickets WHERE created_at >= :since AND created_at < :until"),
            {"since": since, "until": until})
        async for rows in result.partitions(_BATCH):
            for reference, reason, created_text, reply_text, satisfaction in rows:
                created_at = parse_time(created_text)
                if created_at is None:
                    unreadable += 1
                    continue
                if not start <= created_at < end:
                    continue
                rating = satisfaction if isinstance(satisfaction, int) else None
                tickets.append(TicketRecord(
                    reference=reference, reason=reason, created_at=created_at,
                    first_reply_at=parse_time(reply_text), satisfaction=rating))
    return tuple(tickets), unreadable


async def _has_table(connection: AsyncConnection, name: str) -> bool:
    return await connection.run_sync(lambda sync: inspect(sync).has_table(name))


# -- computing --------------------------------------------------------------------------
def compute(snapshot: Snapshot) -> dict[str, Series]:
    """Every plot's series from one snapshot (pure).

    Rows outside the snapshot's period are ignored, so a hand-made snapshot means
    what ``load`` would have read.

    Args:
        snapshot: The period's rows.

    Returns:
        ``{name: Series}`` for each name of ``PLOTS``, in that order. An empty
        database gives series without rows.
    """
    start, end = snapshot.start.timestamp(), snapshot.end.timestamp()
    messages = [m for m in snapshot.messages if start <= m.timestamp < end]
    tickets = [t for t in snapshot.tickets if snapshot.start <= t.created_at < snapshot.end]
    by_day: dict[date, list[CustomerMessage]] = defaultdict(list)
    for message in messages:
        by_day[_utc_day(message.timestamp)].append(message)
    tracker_note = "" if snapshot.tracker_read else (
        "No tracker store is configured, so there are no customer messages. ")
    if snapshot.unreadable_events:
        tracker_note += (f"{snapshot.unreadable_events} user events with unreadable data "
                         "were left out. ")
    ticket_note = (f"{snapshot.unreadable_tickets} tickets with an unreadable created_at "
                   "were left out. " if snapshot.unreadable_tickets else "")
    conversations = _conversations(snapshot.days, by_day, tracker_note)
    total_conversations = sum(row[1] for row in conversations.rows)
    series = [
        conversations,
        _intents(messages, tracker_note),
        _fallback(snapshot.days, by_day, tracker_note),
        _handover(tickets, total_conversations, tracker_note + ticket_note),
        _first_reply(snapshot.days, tickets, ticket_note),
        _sentiment(snapshot.days, by_day, tracker_note),
        _satisfaction(tickets, ticket_note),
    ]
    return {item.name: item for item in series}


def _conversations(days: Sequence[date], by_day: Mapping[date, list[CustomerMessage]],
                   note: str) -> Series:
    counts = [(day, len({m.sender_id for m in by_day.get(day, ())}),
               len(by_day.get(day, ()))) for day in days]
    # Every day of the period once there is any data: a day without conversations
    # is a 0 on the line, not a gap the line would bridge.
    has_data = any(n for _, n, _ in counts)
    rows = tuple((day.isoformat(), n, sent) for day, n, sent in counts) if has_data else ()
    return Series(
        name="conversations", title=TITLES["conversations"], x_label="day (UTC)",
        y_label="conversations", columns=("day", "conversations", "customer_messages"),
        rows=rows, kind="line",
        note=note + "Conversation ids with at least one customer message (typed or a "
                    "button) that day; messages Rasa made itself are not counted.")


def _intents(messages: Iterable[CustomerMessage], note: str) -> Series:
    counts = Counter(m.intent or NO_INTENT for m in messages if not m.button)
    total = sum(counts.values())
    rows = tuple((intent, n, _ratio(n, total))
                 for intent, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])))
    return Series(
        name="intents", title=TITLES["intents"], x_label="messages", y_label="intent",
        columns=("intent", "messages", "share"), rows=rows, kind="bar",
        note=note + "Intents of typed customer messages over the period; button clicks "
                    f"are left out (their intent is the button's). {NO_INTENT}: no intent.")


def _fallback(days: Sequence[date], by_day: Mapping[date, list[CustomerMessage]],
              note: str) -> Series:
    rows = []
    for day in days:
        typed = [m for m in by_day.get(day, ()) if not m.button]
        if not typed:
            continue  # no rate without messages
        fallback = sum(m.intent == FALLBACK_INTENT for m in typed)
        out_of_scope = sum(m.intent == OUT_OF_SCOPE_INTENT for m in typed)
        rows.append((day.isoformat(), len(typed), fallback, out_of_scope,
                     _ratio(fallback, len(typed)), _ratio(out_of_scope, len(typed)),
                     _ratio(fallback + out_of_scope, len(typed))))
    return Series(
        name="fallback", title=TITLES["fallback"], x_label="day (UTC)",
        y_label="share of customer messages",
        columns=("day", "messages", FALLBACK_INTENT, OUT_OF_SCOPE_INTENT,
                 "nlu_fallback_rate", "out_of_scope_rate", "rate"),
        rows=tuple(rows), kind="line",
        y_columns=("rate", "nlu_fallback_rate", "out_of_scope_rate"),
        note=note + f"Share of typed customer messages whose intent is {FALLBACK_INTENT} "
                    f"(unsure, gibberish, another language) or {OUT_OF_SCOPE_INTENT}; rate "
                    "is both together. Days without messages have no rate.")


def _handover(tickets: Sequence[TicketRecord], conversations: int, note: str) -> Series:
    counts = Counter(ticket.reason for ticket in tickets)
    rows = tuple((reason, n, _ratio(n, conversations) if conversations else None)
                 for reason, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])))
    if tickets and not conversations:
        note += "There are tickets but no conversations to divide by: no rate. "
    return Series(
        name="handover",
        title=f"{TITLES['handover']} ({len(tickets)} tickets, {conversations} conversations)",
        x_label="share of conversations", y_label="reason",
        columns=("reason", "tickets", "rate"), rows=rows, kind="bar", y_columns=("rate",),
        note=note + "Tickets created in the period per hand-over reason, divided by the "
                    "period's conversations (the total of the conversations plot).")


def _first_reply(days: Sequence[date], tickets: Sequence[TicketRecord], note: str
                 ) -> Series:
    waits: dict[date, list[float]] = defaultdict(list)
    unanswered = 0
    for ticket in tickets:
        if ticket.first_reply_at is None:
            unanswered += 1
            continue
        minutes = (ticket.first_reply_at - ticket.created_at).total_seconds() / 60
        if minutes >= 0:  # a reply before its ticket is a clock or data error
            waits[ticket.created_at.date()].append(minutes)
    rows = tuple((day.isoformat(), round(statistics.median(waits[day]), 2), len(waits[day]))
                 for day in days if waits.get(day))
    return Series(
        name="first_reply", title=TITLES["first_reply"], x_label="day the ticket was filed (UTC)",
        y_label="minutes", columns=("day", "median_minutes", "tickets"), rows=rows,
        kind="line",
        note=note + "Median of first_reply_at - created_at over the tickets created that "
                    f"day that have a reply; {unanswered} tickets without a reply are not "
                    "counted.")


def _sentiment(days: Sequence[date], by_day: Mapping[date, list[CustomerMessage]],
               note: str) -> Series:
    rows = []
    for day in days:
        scores = [m.sentiment for m in by_day.get(day, ())
                  if not m.button and m.sentiment is not None]
        if scores:
            rows.append((day.isoformat(), round(statistics.fmean(scores), 4), len(scores)))
    return Series(
        name="sentiment", title=TITLES["sentiment"], x_label="day (UTC)",
        y_label="P(positive) - P(negative)", columns=("day", "mean_sentiment", "messages"),
        rows=tuple(rows), kind="line", y_range=(-1.0, 1.0),
        note=note + "Mean of P(positive) - P(negative) (from -1, all negative, to 1, all "
                    "positive) over the typed customer messages that have a sentiment.")


def _satisfaction(tickets: Sequence[TicketRecord], note: str) -> Series:
    ratings = [t.satisfaction for t in tickets if t.satisfaction in RATINGS]
    counts = Counter(ratings)
    mean = round(statistics.fmean(ratings), 2) if ratings else None
    rows = tuple((rating, counts[rating], mean) for rating in RATINGS) if ratings else ()
    title = TITLES["satisfaction"]
    if ratings:
        title += f" (mean {mean:.2f} of 5, {len(ratings)} ratings)"
    return Series(
        name="satisfaction", title=title, x_label="rating", y_label="tickets",
        columns=("rating", "tickets", "mean_rating"), rows=rows, kind="bar",
        note=note + "Ratings (1-5) of the tickets created in the period; mean_rating is "
                    "their mean, repeated on each row. Unrated tickets are not counted.")


def _utc_day(timestamp: float) -> date:
    return datetime.fromtimestamp(timestamp, timezone.utc).date()


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 4)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


# -- output -----------------------------------------------------------------------------
def to_csv(series: Series) -> str:
    """The series as CSV: the header is ``columns``, then the rows.

    Args:
        series: A series of ``compute``.

    Returns:
        CSV text (``\\r\\n`` line ends, as the csv module writes); ``None`` is an empty
        cell, and a text cell that a spreadsheet would run as a formula (``=``, ``+``,
        ``-``, ``@``) gets a leading ``'``.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(series.columns)
    for row in series.rows:
        writer.writerow(["" if cell is None else _safe_cell(cell) for cell in row])
    return buffer.getvalue()


def _safe_cell(cell: Any) -> Any:
    return f"'{cell}" if isinstance(cell, str) and cell.startswith(_FORMULA_START) else cell


def render_png(series: Series) -> bytes:
    """The series drawn as a 600 x 300 pixel PNG.

    CPU-bound and synchronous: an async server should call it in an executor.
    A series without plottable values says "no data yet" (and its note).

    Args:
        series: A series of ``compute``.

    Returns:
        The PNG file's bytes.
    """
    # The object API with the Agg canvas, not pyplot: no global figure state, no GUI
    # backend, and matplotlib costs nothing until the first plot.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3), dpi=100, constrained_layout=True)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.set_title(series.title, fontsize=10)
    drawn = _values(series)
    if not any(points for _, points in drawn):
        _draw_empty(axes, series)
    elif series.kind == "line":
        _draw_lines(axes, series, drawn)
    else:
        _draw_bars(axes, series, drawn[0][1])
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _values(series: Series) -> list[tuple[str, list[tuple[Any, float]]]]:
    """``(column, [(x, y), ...])`` for each plotted column, without empty cells."""
    drawn = []
    for column in series.plotted:
        index = series.columns.index(column)
        drawn.append((column, [(row[0], float(row[index])) for row in series.rows
                               if _number(row[index]) is not None]))
    return drawn


def _draw_empty(axes: Any, series: Series) -> None:
    axes.set_axis_off()
    axes.text(0.5, 0.6, "no data yet", ha="center", va="center", fontsize=14,
              color="0.4", transform=axes.transAxes)
    if series.note:
        axes.text(0.5, 0.3, textwrap.fill(series.note, 90), ha="center", va="center",
                  fontsize=7, color="0.5", transform=axes.transAxes)


def _draw_lines(axes: Any, series: Series,
                drawn: list[tuple[str, list[tuple[Any, float]]]]) -> None:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, DateFormatter, DayLocator

    days: list[datetime] = []
    for column, points in drawn:
        # Midnight of each day (naive: matplotlib reads it as UTC).
        xs = [datetime.combine(date.fromisoformat(x), time()) for x, _ in points]
        days += xs
        # Markers: a day between two measured days is no measurement.
        axes.plot(xs, [y for _, y in points], marker="o", markersize=3, linewidth=1.2,
                  label=column)
    first, last = min(days), max(days)
    if (last - first).days < 7:
        # Left alone, a span this short gets hourly ticks: the data are daily.
        axes.xaxis.set_major_locator(DayLocator())
        axes.xaxis.set_major_formatter(DateFormatter("%d %b"))
        axes.set_xlim(first - timedelta(hours=12), last + timedelta(hours=12))
    else:
        locator = AutoDateLocator()
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    if len(drawn) > 1:
        axes.legend(fontsize=7)
    _value_axis(axes.yaxis, series, [column for column, _ in drawn], axes.set_ylim)
    axes.set_xlabel(series.x_label, fontsize=8)
    axes.set_ylabel(series.y_label, fontsize=8)
    axes.tick_params(labelsize=7)
    axes.grid(alpha=0.3)


def _draw_bars(axes: Any, series: Series, points: list[tuple[Any, float]]) -> None:
    upright = all(isinstance(x, int) for x, _ in points)
    if upright:  # ratings: a numeric scale
        axes.bar([x for x, _ in points], [y for _, y in points], color="tab:blue")
        axes.set_xticks([x for x, _ in points])
        _value_axis(axes.yaxis, series, series.plotted, axes.set_ylim)
        axes.set_xlabel(series.x_label, fontsize=8)
        axes.set_ylabel(series.y_label, fontsize=8)
    else:  # categories: horizontal, so that their names stay legible
        shown = points[:MAX_BARS]
        positions = range(len(shown))
        axes.barh(positions, [y for _, y in shown], color="tab:blue")
        axes.set_yticks(list(positions))
        axes.set_yticklabels([str(x) for x, _ in shown])
        axes.invert_yaxis()  # the rows' order (largest first) from the top
        _value_axis(axes.xaxis, series, series.plotted, axes.set_xlim)
        label = series.x_label
        if len(points) > len(shown):
            label += f" (top {len(shown)} of {len(points)}; all in the CSV)"
        axes.set_xlabel(label, fontsize=8)
        axes.set_ylabel(series.y_label, fontsize=8)
    axes.tick_params(labelsize=7)
    axes.grid(alpha=0.3, axis="y" if upright else "x")


def _value_axis(axis: Any, series: Series, columns: Sequence[str], set_limits: Any) -> None:
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    if series.y_range is not None:
        low, high = series.y_range
        pad = (high - low) * 0.05  # markers on a limit stay whole
        set_limits(low - pad, high + pad)
        return
    if all(column.endswith("rate") for column in columns):
        axis.set_major_formatter(PercentFormatter(1.0))
    else:
        axis.set_major_locator(MaxNLocator(integer=True))
    set_limits(0, None)  # counts, shares and minutes start at 0
