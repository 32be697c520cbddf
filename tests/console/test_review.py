"""The review inbox (console.review): unsure messages, verdicts and the NLU export."""

from __future__ import annotations

import io
import json
import sqlite3
import tarfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from actions.db import SqlBackend
from console import review
from console.review import (
    ConfigError,
    InvalidReview,
    ReviewError,
    ReviewItem,
    UnknownIntent,
    export_nlu_yaml,
    fallback_threshold,
    known_intents,
    message_key,
    record_review,
    review_item,
    reviewed,
    unsure_messages,
)

ROOT = Path(__file__).resolve().parents[2]
INTENTS = ("greet", "order_status", "refund_status", "out_of_scope", "complaint")
T0 = 1_790_000_000.123456

# Rasa 3.6's SQLTrackerStore.SQLEvent (rasa/core/tracker_store.py), as SQLite gets it.
EVENTS_DDL = """CREATE TABLE events (
    id INTEGER NOT NULL PRIMARY KEY,
    sender_id VARCHAR(255) NOT NULL,
    type_name VARCHAR(255) NOT NULL,
    timestamp FLOAT,
    intent_name VARCHAR(255),
    action_name VARCHAR(255),
    data TEXT)"""


def user(text: str, intent: str | None = "greet", confidence: float | None = 0.9,
         timestamp: float = T0, **parse_extra: Any) -> dict[str, Any]:
    """A user event as Rasa stores it (``UserUttered.as_dict()``)."""
    parse_data: dict[str, Any] = {"intent": {"name": intent, "confidence": confidence},
                                  "entities": [], "text": text, "message_id": "m",
                                  "metadata": {}, "intent_ranking": []}
    parse_data.update(parse_extra)
    return {"event": "user", "timestamp": timestamp, "text": text, "parse_data": parse_data,
            "input_channel": "rest", "message_id": "m", "metadata": {}}


def project_fallback(text: str, guess: str, confidence: float, timestamp: float
                     ) -> dict[str, Any]:
    """A message TransformerIntentClassifier replaced by nlu_fallback (low confidence)."""
    return user(text, "nlu_fallback", confidence, timestamp,
                intent_ranking=[{"name": "nlu_fallback", "confidence": confidence},
                                {"name": guess, "confidence": confidence}],
                unknown_input={"reason": "low_confidence", "predicted_intent": guess,
                               "confidence": confidence, "fallback_threshold": 0.5})


class Tracker:
    """Rasa's SQL tracker store ``events`` table in a temporary SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with sqlite3.connect(path) as db:
            db.execute(EVENTS_DDL)
            db.execute("CREATE INDEX ix_events_sender_id ON events (sender_id)")
        self.engine = create_async_engine(f"sqlite+aiosqlite:///{path}", poolclass=NullPool)

    def add(self, sender_id: str, *events: dict[str, Any], raw_data: str | None = None) -> None:
        """Appends events (as Rasa's ``save`` does), or one row with ``raw_data``."""
        rows = [(sender_id, event["event"], event.get("timestamp"),
                 (event.get("parse_data") or {}).get("intent", {}).get("name"),
                 event.get("name"), json.dumps(event)) for event in events]
        if raw_data is not None:
            rows.append((sender_id, "user", T0, None, None, raw_data))
        with sqlite3.connect(self.path) as db:
            db.executemany("INSERT INTO events (sender_id, type_name, timestamp, intent_name, "
                           "action_name, data) VALUES (?, ?, ?, ?, ?, ?)", rows)


@pytest.fixture
async def make_tracker(tmp_path: Path) -> AsyncIterator[Callable[[], Tracker]]:
    """Factory: an empty tracker store ``events`` table."""
    made: list[Tracker] = []

    def make() -> Tracker:
        made.append(Tracker(tmp_path / f"tracker{len(made)}.db"))
        return made[-1]

    yield make
    for tracker in made:
        await tracker.engine.dispose()


@pytest.fixture
async def make_shop(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Factory: a migrated shop database (schema version 4) and an engine on it."""
    engines: list[AsyncEngine] = []

    async def make(name: str = "shop.db") -> AsyncEngine:
        url = f"sqlite+aiosqlite:///{tmp_path / name}"
        backend = SqlBackend(url, seed=False)
        await backend.start()
        await backend.close()
        engines.append(create_async_engine(url, poolclass=NullPool))
        return engines[-1]

    yield make
    for engine in engines:
        await engine.dispose()


@pytest.fixture
def tracker(make_tracker: Callable[[], Tracker]) -> Tracker:
    return make_tracker()


@pytest.fixture
async def shop_db(make_shop: Callable[..., Any]) -> AsyncEngine:
    return await make_shop()


async def review_of(shop_db: AsyncEngine, item: ReviewItem, intent: str,
                    agent_id: str | None = "A-1") -> str:
    return await record_review(shop_db, message_key=item.message_key, sender_id=item.sender_id,
                               text=item.text, predicted_intent=item.predicted_intent,
                               confidence=item.confidence, intent=intent, agent_id=agent_id,
                               intents=INTENTS)


def reviewed_item(text: str, intent: str, *, verdict: str = "confirmed",
                  reviewed_at: str = "2026-01-01T10:00:00.000000+00:00",
                  timestamp: float = T0, sender_id: str = "c1") -> ReviewItem:
    return ReviewItem(message_key=message_key(sender_id, timestamp), sender_id=sender_id,
                      text=text, predicted_intent=intent, confidence=0.4, timestamp=timestamp,
                      intent=intent, verdict=verdict, reviewed_at=reviewed_at)


# -- message keys --------------------------------------------------------------------------


def test_message_key_is_sender_and_the_float_timestamp() -> None:
    assert message_key("c1", T0) == f"c1|{T0!r}"
    # A JSON integer timestamp keys like the same float.
    assert message_key("c1", 1_790_000_000) == message_key("c1", 1_790_000_000.0)
    # A "|" in the sender id cannot collide: the timestamp is last and has none.
    assert message_key("a|1.0", 2.0) != message_key("a", 1.0)


@pytest.mark.parametrize(("sender_id", "timestamp"), [
    ("", T0), (None, T0), ("c1", None), ("c1", float("nan")), ("c1", True), ("c1", "1.0")])
def test_message_key_refuses_what_keys_nothing(sender_id: Any, timestamp: Any) -> None:
    with pytest.raises(InvalidReview):
        message_key(sender_id, timestamp)


def test_review_item_keys_the_http_tracker_event_like_the_stored_one() -> None:
    event = user("where is my parcel", "order_status", 0.42, T0)
    from_http = json.loads(json.dumps({"events": [event]}))["events"][0]

    item = review_item("c1", from_http)

    assert item is not None
    assert item.message_key == message_key("c1", T0)
    assert (item.text, item.predicted_intent, item.confidence) == \
        ("where is my parcel", "order_status", 0.42)


@pytest.mark.parametrize("event", [
    user("EXTERNAL: ticket_closed", "EXTERNAL_ticket_closed", 1.0),
    user('/rate_support{"rating": "4"}', "rate_support", 1.0),
    user("   ", "greet", 0.1),
    {"event": "bot", "text": "hello", "timestamp": T0},
    {**user("hi"), "timestamp": None},
])
def test_review_item_skips_what_no_customer_typed(event: dict[str, Any]) -> None:
    assert review_item("c1", event) is None


# -- the threshold and the intents ---------------------------------------------------------


def write_config(tmp_path: Path, *pipeline: dict[str, Any]) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump({"recipe": "default.v1", "pipeline": list(pipeline)}))
    return path


def classifier(**options: Any) -> dict[str, Any]:
    return {"name": "nlu_components.TransformerIntentClassifier", **options}


def test_the_shipped_config_measures_its_threshold_which_defaults_to_half() -> None:
    # config.yml says `fallback_threshold: auto`: measured by training, 0.5 on this data.
    assert fallback_threshold(ROOT / "config.yml") == review.MEASURED_FALLBACK_THRESHOLD == 0.5


@pytest.mark.parametrize(("pipeline", "expected"), [
    ([classifier(fallback_threshold=0.62)], 0.62),
    ([classifier(fallback_threshold="6.2e-1")], 0.62),
    ([{"name": "FallbackClassifier", "threshold": 0.4}], 0.4),
    ([{"name": "FallbackClassifier"}], 0.3),  # Rasa's default
    ([classifier(fallback_threshold=0.2), {"name": "FallbackClassifier", "threshold": 0.45}],
     0.45),
    ([classifier(fallback_threshold=None)], 0.0),  # off
    ([classifier(validation_split=0)], 0.0),  # auto, but nothing measured
    ([classifier()], 0.5),
    ([{"name": "DIETClassifier"}], 0.0),
    ([], 0.3),  # Rasa's default pipeline has FallbackClassifier at 0.3
])
def test_fallback_threshold_reads_the_pipeline(tmp_path: Path, pipeline: list[dict],
                                               expected: float) -> None:
    assert fallback_threshold(write_config(tmp_path, *pipeline)) == pytest.approx(expected)


def test_an_auto_threshold_is_read_from_the_served_model(tmp_path: Path) -> None:
    info = json.dumps({"task": "intent", "labels": ["a", "b"], "max_length": 32,
                       "calibration": {"temperature": 1.3, "fallback_threshold": 0.37}})
    artifact = tmp_path / "models" / "intent"
    artifact.mkdir(parents=True)
    (artifact / "classifier.json").write_text(info)
    archive = tmp_path / "model.tar.gz"  # the layout of a `rasa train` model
    with tarfile.open(archive, "w:gz") as bundle:
        for name, data in [("components/train_nlu_components.SentimentAnalyzer6/classifier.json",
                            b'{"calibration": {"fallback_threshold": 0.9}}'),
                           ("components/train_nlu_components.TransformerIntentClassifier4/"
                            "classifier.json", info.encode())]:
            member = tarfile.TarInfo(name)
            member.size = len(data)
            bundle.addfile(member, io.BytesIO(data))

    served = write_config(tmp_path, classifier(model_path="models/intent"))
    assert fallback_threshold(served) == 0.37
    assert fallback_threshold(write_config(tmp_path, classifier()), model=archive) == 0.37
    with pytest.raises(ConfigError, match="cannot read the intent model"):
        fallback_threshold(write_config(tmp_path, classifier()), model=tmp_path / "none.tar.gz")


@pytest.mark.parametrize("content", [
    "pipeline: [{name: FallbackClassifier, threshold: high}]",
    "pipeline: [{name: FallbackClassifier, threshold: 1.5}]",
    "pipeline: [{name: TransformerIntentClassifier, fallback_threshold: true}]",
    "pipeline: {name: FallbackClassifier}",
    "pipeline: [unclosed",
])
def test_an_unusable_config_is_a_config_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "config.yml"
    path.write_text(content)

    with pytest.raises(ConfigError) as raised:
        fallback_threshold(path)
    assert isinstance(raised.value, ReviewError)


def test_a_missing_config_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        fallback_threshold(tmp_path / "config.yml")


def test_known_intents_are_the_domains_but_external_ones() -> None:
    intents = known_intents(ROOT / "domain.yml")

    assert {"greet", "order_status", "faq", "out_of_scope", "rate_support"} <= set(intents)
    assert not [name for name in intents if name.startswith("EXTERNAL_")]
    assert "nlu_fallback" not in intents
    assert len(intents) == len(set(intents))


def test_known_intents_reads_both_intent_forms_and_domain_folders(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text("intents:\n- greet\n- order_status:\n    use_entities: []\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yml").write_text("intents: [greet, deny]\nresponses: {}\n")
    (tmp_path / "c.yml").write_text("responses: {}\n")

    assert known_intents(tmp_path) == ("greet", "order_status", "deny")
    (tmp_path / "d.yml").write_text("intents: greet\n")
    with pytest.raises(ConfigError):
        known_intents(tmp_path)


# -- the inbox ------------------------------------------------------------------------------


async def test_lists_low_confidence_and_fallback_messages_newest_first(
        tracker: Tracker, shop_db: AsyncEngine) -> None:
    tracker.add("c1", user("hello", "greet", 0.97, T0),
                {"event": "action", "name": "utter_greet", "timestamp": T0 + 1},
                user("my thing never came", "order_status", 0.41, T0 + 2),
                user("it is exactly at the threshold", "complaint", 0.5, T0 + 3))
    tracker.add("c2", project_fallback("blorp the parcel", "track_delivery", 0.22, T0 + 4),
                user("hm", "nlu_fallback", 0.3, T0 + 5,  # FallbackClassifier's way
                     intent_ranking=[{"name": "nlu_fallback", "confidence": 0.3},
                                     {"name": "deny", "confidence": 0.28}]),
                user("something", "nlu_fallback", 0.9, T0 + 6))  # LanguageIdentifier's way

    items = await unsure_messages(tracker.engine, shop_db, threshold=0.5)

    assert [(i.text, i.predicted_intent, i.confidence) for i in items] == [
        ("something", "nlu_fallback", 0.9),
        ("hm", "deny", 0.28),
        ("blorp the parcel", "track_delivery", 0.22),
        ("my thing never came", "order_status", 0.41),
    ]
    assert items[-1].message_key == message_key("c1", T0 + 2)
    assert items[-1].timestamp == T0 + 2 and items[-1].sender_id == "c1"
    assert all(i.intent is None and i.verdict is None for i in items)
    assert len(await unsure_messages(tracker.engine, shop_db, threshold=0.95)) == 5
    assert len(await unsure_messages(tracker.engine, shop_db, threshold=0.0)) == 3


async def test_external_events_button_payloads_and_broken_rows_are_skipped(
        tracker: Tracker, shop_db: AsyncEngine) -> None:
    tracker.add("c1", user("EXTERNAL: handoff_timeout", "EXTERNAL_handoff_timeout", 0.1),
                user('/rate_support{"rating": "2"}', "rate_support", 0.1, T0 + 1),
                user("  /greet", "greet", 0.1, T0 + 2),
                user("", None, None, T0 + 3), raw_data="{not json")
    tracker.add("c1", {"event": "user", "timestamp": T0 + 5, "text": "unparsed"})

    items = await unsure_messages(tracker.engine, shop_db, threshold=0.5)

    assert [(i.text, i.predicted_intent) for i in items] == [("unparsed", None)]


async def test_the_timestamp_comes_from_the_events_json(tracker: Tracker,
                                                        shop_db: AsyncEngine) -> None:
    tracker.add("c1", user("unsure", "greet", 0.1, T0))
    with sqlite3.connect(tracker.path) as db:  # a column that lost precision (MySQL FLOAT)
        db.execute("UPDATE events SET timestamp = ?", (round(T0),))

    [item] = await unsure_messages(tracker.engine, shop_db, threshold=0.5)

    assert item.message_key == message_key("c1", T0)


async def test_limit_and_scanning_in_batches(tracker: Tracker, shop_db: AsyncEngine,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(review, "_SCAN_BATCH", 3)
    tracker.add("c1", *[user(f"unsure {n}", "greet", 0.1 if n % 2 else 0.9, T0 + n)
                        for n in range(20)])

    assert [i.text for i in await unsure_messages(tracker.engine, shop_db, threshold=0.5,
                                                  limit=4)] == \
        ["unsure 19", "unsure 17", "unsure 15", "unsure 13"]
    assert len(await unsure_messages(tracker.engine, shop_db, threshold=0.5)) == 10
    with pytest.raises(InvalidReview):
        await unsure_messages(tracker.engine, shop_db, threshold=0.5, limit=0)
    with pytest.raises(InvalidReview):
        await unsure_messages(tracker.engine, shop_db, threshold=1.5)


async def test_reviewed_messages_leave_the_inbox_and_corrections_show_when_asked(
        tracker: Tracker, shop_db: AsyncEngine) -> None:
    tracker.add("c1", user("where's my stuff", "order_status", 0.3, T0),
                user("refund?", "refund_status", 0.2, T0 + 1),
                user("I want a refund now", "greet", 0.99, T0 + 2),  # confident but wrong
                user("hi there", "greet", 0.98, T0 + 3))
    refund, stuff = await unsure_messages(tracker.engine, shop_db, threshold=0.5)
    wrong, hi = (review_item("c1", user("I want a refund now", "greet", 0.99, T0 + 2)),
                 review_item("c1", user("hi there", "greet", 0.98, T0 + 3)))
    assert refund.text == "refund?" and wrong is not None and hi is not None

    assert await review_of(shop_db, refund, "refund_status") == "confirmed"
    assert await review_of(shop_db, wrong, "refund_status") == "corrected"  # in a conversation
    assert await review_of(shop_db, hi, "greet") == "confirmed"

    todo = await unsure_messages(tracker.engine, shop_db, threshold=0.5)
    everything = await unsure_messages(tracker.engine, shop_db, threshold=0.5,
                                       include_reviewed=True)

    assert [i.text for i in todo] == ["where's my stuff"]
    assert [(i.text, i.intent, i.verdict, i.agent_id) for i in everything] == [
        ("I want a refund now", "refund_status", "corrected", "A-1"),
        ("refund?", "refund_status", "confirmed", "A-1"),
        ("where's my stuff", None, None, None),
    ]


# -- verdicts -------------------------------------------------------------------------------


async def stored(shop_db: AsyncEngine) -> list[tuple]:
    async with shop_db.connect() as connection:
        return [tuple(row) for row in (await connection.execute(text(
            "SELECT message_key, sender_id, text, predicted_intent, confidence, intent, "
            "verdict, agent_id FROM intent_reviews ORDER BY message_key"))).all()]


async def test_confirm_correct_and_change_ones_mind(shop_db: AsyncEngine) -> None:
    item = review_item("c1", user("parcel???", "order_status", 0.35, T0))
    assert item is not None

    assert await review_of(shop_db, item, "order_status", "A-1") == "confirmed"
    assert await stored(shop_db) == [(item.message_key, "c1", "parcel???", "order_status", 0.35,
                                   "order_status", "confirmed", "A-1")]

    assert await review_of(shop_db, item, "complaint", "A-2") == "corrected"
    assert await stored(shop_db) == [(item.message_key, "c1", "parcel???", "order_status", 0.35,
                                   "complaint", "corrected", "A-2")]

    [back] = await reviewed(shop_db)
    assert (back.message_key, back.sender_id, back.text, back.timestamp, back.intent,
            back.verdict, back.agent_id) == (item.message_key, "c1", "parcel???", T0,
                                             "complaint", "corrected", "A-2")
    assert back.reviewed_at is not None and back.reviewed_at.startswith("20")


async def test_a_fallback_message_is_confirmed_against_the_classifiers_guess(
        shop_db: AsyncEngine) -> None:
    item = review_item("c1", project_fallback("blorp the parcel", "order_status", 0.22, T0))
    assert item is not None and item.predicted_intent == "order_status"

    assert await review_of(shop_db, item, "order_status") == "confirmed"


async def test_an_unknown_intent_is_refused_and_nothing_is_stored(shop_db: AsyncEngine) -> None:
    item = review_item("c1", user("parcel???", "order_status", 0.35, T0))
    assert item is not None

    for intent in ("order_sttus", "nlu_fallback", "EXTERNAL_ticket_closed", ""):
        with pytest.raises(UnknownIntent) as raised:
            await review_of(shop_db, item, intent)
        assert isinstance(raised.value, ReviewError)
        assert raised.value.intent == intent and "greet" in raised.value.known
    assert await stored(shop_db) == []


@pytest.mark.parametrize("change", [
    {"message_key": message_key("someone-else", T0)},
    {"message_key": "c1|yesterday"},
    {"text": "  "},
    {"confidence": float("nan")},
])
async def test_a_review_that_cannot_be_right_is_refused(shop_db: AsyncEngine,
                                                        change: dict[str, Any]) -> None:
    values = {"message_key": message_key("c1", T0), "sender_id": "c1", "text": "parcel?",
              "predicted_intent": "order_status", "confidence": 0.3, "intent": "greet",
              "agent_id": "A-1", "intents": INTENTS} | change

    with pytest.raises(InvalidReview):
        await record_review(shop_db, **values)
    assert await stored(shop_db) == []


# -- export -----------------------------------------------------------------------------------


def test_export_groups_sorts_and_deduplicates() -> None:
    items = [
        reviewed_item("where is my order", "order_status"),
        reviewed_item("hello", "greet", verdict="corrected"),
        reviewed_item("hey", "greet", timestamp=T0 + 1),
        reviewed_item("hello", "greet", timestamp=T0 + 2),  # the same text again
        reviewed_item("where   is my\norder", "order_status", timestamp=T0 + 3),
        # Reviewed twice with different intents: the latest review wins.
        reviewed_item("my order is late", "order_status",
                      reviewed_at="2026-01-01T09:00:00.000000+00:00"),
        reviewed_item("my order is late", "complaint", timestamp=T0 + 4,
                      reviewed_at="2026-01-02T09:00:00.000000+00:00"),
        # Not reviewed, or no customer text: left out.
        ReviewItem(message_key(("c9"), T0), "c9", "unreviewed", "greet", 0.3, T0),
        reviewed_item("/greet", "greet"),
        reviewed_item("EXTERNAL: x", "greet"),
        reviewed_item(" \n ", "greet"),
    ]

    assert export_nlu_yaml(items) == (
        'version: "3.1"\n'
        "nlu:\n"
        "- intent: complaint\n"
        "  examples: |\n"
        "    - my order is late\n"
        "- intent: greet\n"
        "  examples: |\n"
        "    - hello\n"
        "    - hey\n"
        "- intent: order_status\n"
        "  examples: |\n"
        "    - where is my order\n")
    assert export_nlu_yaml([]) == 'version: "3.1"\nnlu: []\n'


TRICKY = {
    "line\nbreaks\r\nand\u2028separators\u2029and\x85NEL\x0bVT\x1cFS": "line breaks and "
    "separators and NEL VT FS",
    "see [this](link) and [that]{\"entity\": \"x\"} or [a][b]":
        "see [this] (link) and [that] {\"entity\": \"x\"} or [a] [b]",
    "a bell\x07, a null\x00, a bom\ufeff, a del\x7f, a C1\x9b, a lone surrogate\ud800":
        "a bell, a null, a bom, a del, a C1, a lone surrogate",
    "- dash: colon # hash 'quote' \"double\" | pipe > {brace} & * ! % @ `tick`":
        "- dash: colon # hash 'quote' \"double\" | pipe > {brace} & * ! % @ `tick`",
    "émoji 😀 and 中文 and tabs\tinside  ": "émoji 😀 and 中文 and tabs inside",
    "   leading spaces": "leading spaces",
    "yes": "yes",
    "null": "null",
}


def test_export_writes_any_text_as_one_safe_example() -> None:
    items = [reviewed_item(raw, "complaint", timestamp=T0 + n)
             for n, raw in enumerate(TRICKY)]

    document = yaml.safe_load(export_nlu_yaml(items))

    [block] = document["nlu"]
    assert document["version"] == "3.1" and block["intent"] == "complaint"
    assert block["examples"] == "".join(f"- {t}\n" for t in sorted(TRICKY.values()))


def test_export_round_trips_through_rasa_and_the_training_loader(tmp_path: Path) -> None:
    from rasa.shared.nlu.training_data.loading import load_data

    from training.data import clean, load_dataset

    items = [reviewed_item(raw, "complaint", timestamp=T0 + n)
             for n, raw in enumerate(TRICKY)]
    items += [reviewed_item("where is 12345", "order_status", timestamp=T0 + 50),
              reviewed_item("hi", "greet", timestamp=T0 + 51, verdict="corrected")]
    expected = {(t, "complaint") for t in TRICKY.values()} | {("where is 12345", "order_status"),
                                                              ("hi", "greet")}
    path = tmp_path / "reviewed.yml"
    path.write_text(export_nlu_yaml(items), encoding="utf-8")

    data = load_data(str(path))
    ours = load_dataset(path)

    assert {(m.get("text"), m.get("intent")) for m in data.intent_examples} == expected
    assert not [m for m in data.intent_examples if m.get("entities")]
    assert set(zip(ours.texts, ours.labels)) == expected
    assert len(clean(ours)) == len(expected)


def test_rasa_reads_export_and_project_data_together(tmp_path: Path) -> None:
    from rasa.shared.nlu.training_data.loading import load_data

    from training.data import load_dataset

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "nlu.yml").write_text((ROOT / "data" / "nlu.yml").read_text())
    (data_dir / "reviewed.yml").write_text(export_nlu_yaml(
        [reviewed_item("my parcel is lost, help", "order_status")]))

    examples = {(m.get("text"), m.get("intent"))
                for m in load_data(str(data_dir)).intent_examples}

    assert ("my parcel is lost, help", "order_status") in examples
    ours = load_dataset(data_dir)
    assert ("my parcel is lost, help", "order_status") in set(zip(ours.texts, ours.labels))


async def test_the_real_tracker_store_and_http_json_give_the_same_keys(
        tmp_path: Path, shop_db: AsyncEngine) -> None:
    """Rasa's own SQLTrackerStore writes the events; Rasa's tracker JSON keys them alike."""
    import warnings

    with warnings.catch_warnings():  # Rasa's SQLAlchemy 2.0 notice at import
        warnings.simplefilter("ignore")
        from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity

    path = tmp_path / "rasa-tracker.db"
    store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(path))
    parse = {"intent": {"name": "order_status", "confidence": 0.31}, "entities": [],
             "intent_ranking": [{"name": "order_status", "confidence": 0.31}]}
    events = [UserUttered("my parcel??", parse["intent"], parse_data=parse),
              ActionExecuted("action_listen"),
              UserUttered("EXTERNAL: handoff_timeout", {"name": "x", "confidence": 1.0})]
    tracker = DialogueStateTracker.from_events("c 1|x", events)
    await store.save(tracker)
    http_events = json.loads(json.dumps(tracker.current_state(EventVerbosity.ALL)))["events"]
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}", poolclass=NullPool)
    try:
        [item] = await unsure_messages(engine, shop_db, threshold=0.5)
    finally:
        await engine.dispose()

    from_http = review_item("c 1|x", http_events[0])
    assert from_http == item
    assert (item.text, item.predicted_intent, item.confidence) == ("my parcel??",
                                                                   "order_status", 0.31)
    assert item.message_key == message_key("c 1|x", events[0].timestamp)


@pytest.mark.slow
def test_the_export_trains_a_classifier(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """One short real run of ``python -m training intent`` on an export: the packaged
    all-MiniLM-L6-v2, one epoch on CPU (about 20 s on 2 cores)."""
    from tests.conftest import synthetic_pairs
    from training.cli import main

    items = [reviewed_item(text, label, timestamp=T0 + n)
             for n, (text, label) in enumerate(synthetic_pairs(8))]
    data = tmp_path / "reviewed.yml"
    data.write_text(export_nlu_yaml(items), encoding="utf-8")
    output = tmp_path / "model"

    code = main(["intent", "--data", str(data), "--output", str(output), "--epochs", "1",
                 "--device", "cpu", "--validation-split", "0.25"])

    assert code == 0, capsys.readouterr().err[-2000:]
    info = json.loads((output / "classifier.json").read_text())
    assert sorted(info["labels"]) == ["greet", "order_status", "refund"]
    assert 0 <= info["calibration"]["fallback_threshold"] < 1
