"""The review inbox: customer messages to label for the next training round.

The inbox lists the customer messages the assistant was unsure about, read from
Rasa's SQL tracker store (table ``events``, read only), and the messages an agent
corrected in a conversation. An agent confirms or corrects each one's intent
(``record_review``, stored in the shop database's ``intent_reviews``), and
``export_nlu_yaml`` turns the reviewed messages into Rasa NLU training data that
both ``rasa train`` and ``python -m training intent`` read.

**Unsure** means: the parsed intent is ``nlu_fallback`` (Rasa's
``FallbackClassifier``, or ``TransformerIntentClassifier``'s own fallback, or
``LanguageIdentifier``), or its confidence is below ``fallback_threshold(config.yml)``.

**Message keys.** A user event has no id of its own that both the tracker store and
Rasa's HTTP API show, but both carry its ``timestamp``: the float ``time.time()``
gave when the message arrived, written to JSON with ``repr`` and read back exactly.
``message_key`` is ``f"{sender_id}|{timestamp!r}"`` (the timestamp as a float), so a
message keys the same from the ``events`` table and from ``GET
/conversations/<id>/tracker``. From the table, the timestamp comes from the event's
JSON (``data``), not the ``timestamp`` column, whose type some databases store in
single precision (MySQL's FLOAT).

Only ``yaml`` and SQLAlchemy are imported: no rasa, torch or training.
"""

from __future__ import annotations

import json
import logging
import math
import re
import tarfile
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import text as sql
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

logger = logging.getLogger(__name__)

__all__ = [
    "CONFIRMED", "CORRECTED", "FALLBACK_INTENT", "ConfigError", "InvalidReview",
    "ReviewError", "ReviewItem", "StoreError", "UnknownIntent", "export_nlu_yaml",
    "fallback_threshold", "is_customer_text", "known_intents", "message_key",
    "record_review", "review_item", "reviewed", "unsure_messages",
]

CONFIRMED = "confirmed"
CORRECTED = "corrected"
FALLBACK_INTENT = "nlu_fallback"  # Rasa's DEFAULT_NLU_FALLBACK_INTENT_NAME

# Rasa's own FallbackClassifier default (rasa/engine/recipes/config_files/
# default_config.yml), used when the pipeline names the classifier without a threshold.
RASA_FALLBACK_THRESHOLD = 0.3
# TransformerIntentClassifier's `fallback_threshold: auto` is measured by each training
# run and stored in the trained model, not in config.yml. Without that model at hand,
# the review uses what the measurement gives for the assistant's data: with calibrated
# confidences and few validation errors, training.evaluation.suggest_fallback_threshold
# returns 1 - fallback_cost = 0.5 (the shipped assistant's model measured 0.5 too).
MEASURED_FALLBACK_THRESHOLD = 0.5

_INTENT_CLASSIFIER = "TransformerIntentClassifier"
_FALLBACK_CLASSIFIER = "FallbackClassifier"
# Made by Rasa for external events (reminders, the hand-over's end), not by a customer.
EXTERNAL_PREFIX = "EXTERNAL: "
# Intents that Rasa's docs reserve for external events: no customer text has them.
EXTERNAL_INTENT_PREFIX = "EXTERNAL_"
# A classifier.json is a few kB; a bigger member is not the one we look for.
_MAX_ARTIFACT_JSON = 10 * 1024 * 1024
# Events read per query while scanning the tracker store, newest first.
_SCAN_BATCH = 500

# Characters YAML may not hold even in a quoted scalar (PyYAML's reader refuses them),
# and the byte-order mark, which would keep the examples out of a literal block.
_NOT_YAML = re.compile("[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFEFE\uFF00-\uFFFD"
                       "\U00010000-\U0010FFFF]")
# `[words](entity)`, `[words]{...}` and `[words][...]` are entity annotations to Rasa
# (and the first two to training.data): a space after the `]` keeps them plain words.
_ANNOTATION = re.compile(r"\]([(\[{])")


class ReviewError(Exception):
    """Base class of the review inbox's errors."""


class ConfigError(ReviewError, ValueError):
    """``config.yml``, ``domain.yml`` or a model cannot be read, or holds an unusable value."""


class InvalidReview(ReviewError, ValueError):
    """A review's values cannot be stored (empty text, a key of another conversation...)."""


class UnknownIntent(InvalidReview):
    """A review names an intent the assistant does not have.

    Attributes:
        intent: The intent given.
        known: The intents that are accepted.
    """

    def __init__(self, intent: str, known: Collection[str]) -> None:
        self.intent, self.known = intent, tuple(known)
        super().__init__(f"{intent!r} is not an intent of the assistant's domain")


class StoreError(ReviewError):
    """The tracker store or the shop database failed (down, locked, missing table)."""


@dataclass(frozen=True)
class ReviewItem:
    """One customer message in the inbox, with its review if it has one.

    Attributes:
        message_key: ``message_key(sender_id, timestamp)``: the message's identity.
        sender_id: The conversation.
        text: What the customer wrote.
        predicted_intent: The classifier's best intent. When the assistant fell back
            (``nlu_fallback``), the intent the classifier would have chosen, so that
            the agent can confirm it; ``nlu_fallback`` itself only when nothing else
            is known.
        confidence: The classifier's confidence in ``predicted_intent`` (0..1), or
            ``None`` when the event had none.
        timestamp: When the message arrived (Unix seconds); ``None`` for a review read
            from a key that is not ours.
        intent: The reviewed intent, ``None`` when not reviewed yet.
        verdict: ``confirmed`` (the agent kept ``predicted_intent``), ``corrected``, or
            ``None`` when not reviewed yet.
        agent_id: Who reviewed it, if known.
        reviewed_at: When it was reviewed (ISO 8601, UTC).
    """

    message_key: str
    sender_id: str
    text: str
    predicted_intent: str | None
    confidence: float | None
    timestamp: float | None
    intent: str | None = None
    verdict: str | None = None
    agent_id: str | None = None
    reviewed_at: str | None = None


# -- configuration ---------------------------------------------------------------------


def message_key(sender_id: str, timestamp: float) -> str:
    """The stable key of one user message: ``f"{sender_id}|{float(timestamp)!r}"``.

    Args:
        sender_id: The conversation's id.
        timestamp: The user event's ``timestamp`` (Unix seconds), as the tracker store's
            JSON or Rasa's HTTP tracker JSON give it.

    Raises:
        InvalidReview: The sender id is empty or the timestamp is not a finite number.
    """
    if not isinstance(sender_id, str) or not sender_id:
        raise InvalidReview(f"sender_id={sender_id!r}: give the conversation's id")
    if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)) \
            or not math.isfinite(timestamp):
        raise InvalidReview(f"timestamp={timestamp!r}: give the event's Unix timestamp")
    # float(): an int timestamp (JSON `1700000000`) keys like 1700000000.0.
    return f"{sender_id}|{float(timestamp)!r}"


def _split_key(key: str) -> tuple[str, float] | None:
    # The timestamp is last and its repr has no "|": a "|" in the sender id is fine.
    sender_id, _, stamp = key.rpartition("|")
    try:
        timestamp = float(stamp)
    except ValueError:
        return None
    return (sender_id, timestamp) if sender_id and math.isfinite(timestamp) else None


def _read_yaml(path: Path, what: str) -> Any:
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: cannot read the {what} ({error})") from None


def _threshold(value: Any, where: str) -> float:
    # YAML reads 7e-1 as a string; a bool is no threshold.
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not 0.0 <= number < 1.0:
        raise ConfigError(f"{where}={value!r}: use a number in [0, 1)")
    return number


def _component_name(entry: Mapping[str, Any]) -> str:
    # `nlu_components.TransformerIntentClassifier` and the bare class name alike.
    return str(entry.get("name", "")).rsplit(".", 1)[-1]


def _measured_threshold(source: Path) -> float | None:
    """``calibration.fallback_threshold`` of an intent artifact or a Rasa model archive.

    Args:
        source: An artifact directory of ``python -m training intent`` (or its
            ``classifier.json``), or a ``rasa train`` model archive (``.tar.gz``).

    Returns:
        The threshold, or ``None`` when the model measured none (trained without a
        validation split): its fallback is off.

    Raises:
        ConfigError: The model cannot be read or holds no intent classifier.
    """
    source = Path(source)
    try:
        if source.is_dir():
            info = json.loads((source / "classifier.json").read_text(encoding="utf-8"))
        elif source.name.endswith("classifier.json"):
            info = json.loads(source.read_text(encoding="utf-8"))
        else:
            info = _classifier_json_in_archive(source)
    except (OSError, ValueError, tarfile.TarError) as error:
        raise ConfigError(f"{source}: cannot read the intent model ({error})") from None
    if not isinstance(info, Mapping):
        raise ConfigError(f"{source}: classifier.json is not a JSON object")
    value = (info.get("calibration") or {}).get("fallback_threshold")
    return None if value is None else _threshold(value, f"{source}: fallback_threshold")


def _classifier_json_in_archive(archive: Path) -> Any:
    # Only the one small JSON member is read into memory: nothing is extracted to disk.
    with tarfile.open(archive, "r:*") as bundle:
        for member in bundle:
            parts = member.name.split("/")
            if (member.isfile() and parts[-1] == "classifier.json" and len(parts) > 1
                    and _INTENT_CLASSIFIER in parts[-2]
                    and member.size <= _MAX_ARTIFACT_JSON):
                handle = bundle.extractfile(member)
                if handle is not None:
                    return json.load(handle)
    raise ValueError(f"no {_INTENT_CLASSIFIER} in the model")


def fallback_threshold(config_path: Path, *, model: Path | None = None) -> float:
    """The confidence below which the assistant's intent counts as unsure.

    Read from the pipeline of Rasa's ``config.yml``, the one home of the setting:

    - ``FallbackClassifier``: its ``threshold`` (Rasa's default 0.3 when left out);
    - ``TransformerIntentClassifier``: its ``fallback_threshold`` when a number; with
      ``auto`` (the default) the threshold its training run measured, which lives in
      the trained model: the artifact at its ``model_path`` (relative paths from the
      config file's folder), else ``model`` when given (a ``rasa train`` archive such
      as ``models/<name>.tar.gz``), else ``MEASURED_FALLBACK_THRESHOLD`` (0.5); off
      (``null``, or ``auto`` with ``validation_split: 0``) counts as no threshold.

    With both, a message below either one fell back, so the higher one is returned.
    A pipeline with neither never falls back on confidence: 0.0 (the inbox then lists
    ``nlu_fallback`` messages only).

    Args:
        config_path: Rasa's ``config.yml``.
        model: The served model, to read a measured (``auto``) threshold from.

    Raises:
        ConfigError: The file cannot be read, or a threshold is not in [0, 1).
    """
    config = _read_yaml(config_path, "Rasa config")
    pipeline = config.get("pipeline") if isinstance(config, Mapping) else None
    if not pipeline:
        # Rasa fills an empty pipeline with its default one, FallbackClassifier included.
        return RASA_FALLBACK_THRESHOLD
    if not isinstance(pipeline, list):
        raise ConfigError(f"{config_path}: 'pipeline' is not a list of components")
    thresholds: list[float] = []
    for entry in pipeline:
        if not isinstance(entry, Mapping):
            continue
        name = _component_name(entry)
        if name == _FALLBACK_CLASSIFIER:
            thresholds.append(_threshold(entry.get("threshold", RASA_FALLBACK_THRESHOLD),
                                         f"{config_path}: {name}.threshold"))
        elif name == _INTENT_CLASSIFIER:
            value = _classifier_threshold(entry, Path(config_path), model)
            if value is not None:
                thresholds.append(value)
    return max(thresholds, default=0.0)


def _classifier_threshold(entry: Mapping[str, Any], config_path: Path,
                          model: Path | None) -> float | None:
    value = entry.get("fallback_threshold", "auto")
    if value is None:
        return None
    if value != "auto":
        return _threshold(value, f"{config_path}: {_INTENT_CLASSIFIER}.fallback_threshold")
    if entry.get("model_path"):
        path = Path(str(entry["model_path"]))
        return _measured_threshold(path if path.is_absolute() else config_path.parent / path)
    if model is not None:
        return _measured_threshold(model)
    # Without held-out data the training run measures nothing: the fallback is off.
    split = entry.get("validation_split", 0.15)
    try:
        held_out = float(split) > 0
    except (TypeError, ValueError):
        raise ConfigError(f"{config_path}: {_INTENT_CLASSIFIER}.validation_split={split!r}: "
                          "use a fraction between 0 and 0.5") from None
    return MEASURED_FALLBACK_THRESHOLD if held_out else None


def known_intents(domain_path: Path) -> tuple[str, ...]:
    """The intents a customer message can be given: the domain's, in its order.

    Intents named ``EXTERNAL_...`` are left out: Rasa triggers them from outside
    (reminders, the hand-over's end), and customer examples would teach the classifier
    to predict them from text.

    Args:
        domain_path: ``domain.yml``, or a folder of domain files (merged, as Rasa does).

    Raises:
        ConfigError: A file cannot be read or its ``intents`` is not a list.
    """
    domain_path = Path(domain_path)
    files = (sorted([*domain_path.rglob("*.yml"), *domain_path.rglob("*.yaml")])
             if domain_path.is_dir() else [domain_path])
    names: dict[str, None] = {}
    for file in files:
        domain = _read_yaml(file, "domain")
        intents = domain.get("intents") if isinstance(domain, Mapping) else None
        if intents is None:
            continue
        if not isinstance(intents, list):
            raise ConfigError(f"{file}: 'intents' is not a list")
        for entry in intents:
            # `- greet` or `- greet: {use_entities: [...]}`
            name = next(iter(entry), None) if isinstance(entry, Mapping) else entry
            if isinstance(name, str) and name and not name.startswith(EXTERNAL_INTENT_PREFIX):
                names[name] = None
    return tuple(names)


# -- reading the tracker store ---------------------------------------------------------


def is_customer_text(text: object) -> bool:
    """Whether a user event's text is something a customer typed.

    Not: empty texts, Rasa's external events (``EXTERNAL: ...``) and button payloads
    (``/intent{...}``), whose intent was given, not predicted.
    """
    return (isinstance(text, str) and bool(text.strip())
            and not text.startswith(EXTERNAL_PREFIX) and not text.lstrip().startswith("/"))


def _confidence(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value):
        return None
    return float(value)


def _prediction(parse_data: Mapping[str, Any]) -> tuple[str | None, float | None, bool]:
    """(predicted intent, its confidence, unsure-because-fallback) from ``parse_data``."""
    intent = parse_data.get("intent")
    intent = intent if isinstance(intent, Mapping) else {}
    name = intent.get("name") if isinstance(intent.get("name"), str) else None
    confidence = _confidence(intent.get("confidence"))
    if name != FALLBACK_INTENT:
        return name, confidence, False
    # The guess behind the fallback: TransformerIntentClassifier says it in
    # unknown_input; FallbackClassifier keeps it in the ranking after nlu_fallback
    # (and reports its own threshold as nlu_fallback's confidence).
    unknown = parse_data.get("unknown_input")
    if isinstance(unknown, Mapping) and isinstance(unknown.get("predicted_intent"), str):
        return unknown["predicted_intent"], _confidence(unknown.get("confidence")), True
    ranking = parse_data.get("intent_ranking")
    for entry in ranking if isinstance(ranking, list) else []:
        if isinstance(entry, Mapping) and isinstance(entry.get("name"), str) \
                and entry["name"] != FALLBACK_INTENT:
            return entry["name"], _confidence(entry.get("confidence")), True
    return name, confidence, True


def _is_unsure(event: Mapping[str, Any], threshold: float) -> bool:
    parse_data = event.get("parse_data")
    if not isinstance(parse_data, Mapping):
        return True  # not classified at all: nothing the assistant was sure of
    intent = parse_data.get("intent")
    intent = intent if isinstance(intent, Mapping) else {}
    if intent.get("name") == FALLBACK_INTENT or not isinstance(intent.get("name"), str):
        return True
    confidence = _confidence(intent.get("confidence"))
    return confidence is None or confidence < threshold


def review_item(sender_id: str, event: Mapping[str, Any]) -> ReviewItem | None:
    """The inbox item of one user event, or ``None`` when it is not a customer message.

    Works on the events of Rasa's HTTP API (``GET /conversations/<id>/tracker``) and on
    the ``data`` JSON of the tracker store's ``events`` rows alike, so a correction made
    in a conversation view keys the same message the inbox lists.

    Args:
        sender_id: The conversation's id.
        event: A ``{"event": "user", "text", "timestamp", "parse_data"}`` dict.
    """
    if event.get("event", "user") != "user" or not is_customer_text(event.get("text")):
        return None
    timestamp = event.get("timestamp")
    try:
        key = message_key(sender_id, timestamp)  # type: ignore[arg-type]
    except InvalidReview:
        return None
    parse_data = event.get("parse_data")
    predicted, confidence, _ = _prediction(parse_data if isinstance(parse_data, Mapping)
                                           else {})
    return ReviewItem(message_key=key, sender_id=sender_id, text=event["text"],
                      predicted_intent=predicted, confidence=confidence,
                      timestamp=float(timestamp))  # type: ignore[arg-type]


async def _reviews(shop: AsyncEngine) -> dict[str, Mapping[str, Any]]:
    query = sql("SELECT message_key, sender_id, text, predicted_intent, confidence, intent, "
                "verdict, agent_id, reviewed_at FROM intent_reviews "
                "ORDER BY reviewed_at DESC, message_key")
    try:
        async with shop.connect() as connection:
            rows = (await connection.execute(query)).mappings().all()
    except SQLAlchemyError as error:
        raise StoreError(f"cannot read the reviews from the shop database: {error}") from error
    return {row["message_key"]: row for row in rows}


def _with_review(item: ReviewItem, review: Mapping[str, Any] | None) -> ReviewItem:
    if review is None:
        return item
    return ReviewItem(
        message_key=item.message_key, sender_id=item.sender_id, text=item.text,
        predicted_intent=item.predicted_intent, confidence=item.confidence,
        timestamp=item.timestamp, intent=review["intent"], verdict=review["verdict"],
        agent_id=review["agent_id"], reviewed_at=review["reviewed_at"])


async def unsure_messages(tracker: AsyncEngine, shop: AsyncEngine, *, threshold: float,
                          limit: int = 200, include_reviewed: bool = False
                          ) -> list[ReviewItem]:
    """The inbox: customer messages to review, newest first.

    Scans the tracker store's user events from the newest (by event id, the order
    Rasa stored them in) until ``limit`` items are found. A message is listed when
    the assistant was unsure of it (``nlu_fallback``, or a confidence below
    ``threshold``) and, with ``include_reviewed``, also when an agent corrected it
    in a conversation, however confident the assistant was.

    Args:
        tracker: Rasa's tracker store database (only read; open it read-only).
        shop: The shop database (``intent_reviews``).
        threshold: ``fallback_threshold(config.yml)``.
        limit: The most items returned.
        include_reviewed: List reviewed messages too (with ``intent`` and
            ``verdict`` set); by default only those still to review.

    Raises:
        InvalidReview: ``threshold`` is not in [0, 1] or ``limit`` is below 1.
        StoreError: A database cannot be read.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) \
            or not 0.0 <= threshold <= 1.0:
        raise InvalidReview(f"threshold={threshold!r}: use a number in [0, 1]")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidReview(f"limit={limit!r}: use 1 or more")
    reviews = await _reviews(shop)
    items: list[ReviewItem] = []
    before: int | None = None
    while len(items) < limit:
        rows = await _user_events(tracker, before)
        for row_id, sender_id, column_timestamp, data in rows:
            before = row_id
            item = _listed(sender_id, column_timestamp, data, reviews, threshold,
                           include_reviewed)
            if item is not None:
                items.append(item)
                if len(items) == limit:
                    break
        if len(rows) < _SCAN_BATCH:
            break
    return items


async def _user_events(tracker: AsyncEngine, before: int | None) -> list[tuple]:
    # Keyset pagination on the primary key: each batch is an index range scan.
    where, params = "type_name = 'user'", {"batch": _SCAN_BATCH}
    if before is not None:
        where, params = where + " AND id < :before", params | {"before": before}
    query = sql(f"SELECT id, sender_id, timestamp, data FROM events WHERE {where} "  # noqa: S608
                "ORDER BY id DESC LIMIT :batch")
    try:
        async with tracker.connect() as connection:
            result = await connection.execute(query, params)
            return [tuple(row) for row in result.all()]
    except SQLAlchemyError as error:
        raise StoreError(f"cannot read Rasa's tracker store: {error}") from error


def _listed(sender_id: str, column_timestamp: float | None, data: str | None,
            reviews: Mapping[str, Mapping[str, Any]], threshold: float,
            include_reviewed: bool) -> ReviewItem | None:
    try:
        event = json.loads(data or "")
    except ValueError:
        logger.debug("skipped a user event of %s whose data is not JSON", sender_id)
        return None
    if not isinstance(event, dict):
        return None
    if not isinstance(event.get("timestamp"), (int, float)):
        event["timestamp"] = column_timestamp  # an event stored without it in its JSON
    item = review_item(sender_id, event)
    if item is None:
        return None
    review = reviews.get(item.message_key)
    if review is not None and not include_reviewed:
        return None
    corrected = review is not None and review["verdict"] == CORRECTED
    if corrected or _is_unsure(event, threshold):
        return _with_review(item, review)
    return None


# -- reviews -----------------------------------------------------------------------------

_UPSERT = sql(
    "INSERT INTO intent_reviews (message_key, sender_id, text, predicted_intent, confidence, "
    "intent, verdict, agent_id, reviewed_at) VALUES (:message_key, :sender_id, :text, "
    ":predicted_intent, :confidence, :intent, :verdict, :agent_id, :reviewed_at) "
    # Portable: SQLite 3.24+ and PostgreSQL 9.5+ both take ON CONFLICT ... excluded.
    "ON CONFLICT (message_key) DO UPDATE SET sender_id = excluded.sender_id, "
    "text = excluded.text, predicted_intent = excluded.predicted_intent, "
    "confidence = excluded.confidence, intent = excluded.intent, "
    "verdict = excluded.verdict, agent_id = excluded.agent_id, "
    "reviewed_at = excluded.reviewed_at")


async def record_review(shop: AsyncEngine, *, message_key: str, sender_id: str, text: str,
                        predicted_intent: str | None, confidence: float | None, intent: str,
                        agent_id: str | None, intents: Collection[str]) -> str:
    """Stores an agent's verdict on one message; a second verdict replaces the first.

    Args:
        shop: The shop database.
        message_key: The item's ``message_key``; it must belong to ``sender_id``.
        sender_id: The conversation.
        text: The customer's message.
        predicted_intent: The item's ``predicted_intent``.
        confidence: The item's ``confidence``.
        intent: The intent the agent chose.
        agent_id: The agent.
        intents: The intents accepted (``known_intents(domain.yml)``).

    Returns:
        ``confirmed`` when ``intent`` is ``predicted_intent``, else ``corrected``.

    Raises:
        UnknownIntent: ``intent`` is not one of ``intents``.
        InvalidReview: The key is not ``sender_id``'s, the text is empty or the
            confidence is not a number.
        StoreError: The shop database cannot be written.
    """
    parts = _split_key(message_key) if isinstance(message_key, str) else None
    if parts is None or parts[0] != sender_id:
        raise InvalidReview(f"message_key={message_key!r}: not a key of conversation "
                            f"{sender_id!r} (use message_key(sender_id, timestamp))")
    if not isinstance(text, str) or not text.strip():
        raise InvalidReview("text: the customer's message is empty")
    if not isinstance(intent, str) or intent not in intents:
        raise UnknownIntent(str(intent), intents)
    if confidence is not None and _confidence(confidence) is None:
        raise InvalidReview(f"confidence={confidence!r}: give a number or None")
    verdict = CONFIRMED if intent == predicted_intent else CORRECTED
    values = {"message_key": message_key, "sender_id": sender_id, "text": text,
              "predicted_intent": predicted_intent,
              "confidence": None if confidence is None else float(confidence),
              "intent": intent, "verdict": verdict, "agent_id": agent_id,
              # Microseconds: the latest of two quick verdicts wins in the export.
              "reviewed_at": datetime.now(timezone.utc).isoformat(timespec="microseconds")}
    try:
        async with shop.begin() as connection:
            await connection.execute(_UPSERT, values)
    except SQLAlchemyError as error:
        raise StoreError(f"cannot store the review: {error}") from error
    return verdict


async def reviewed(shop: AsyncEngine) -> list[ReviewItem]:
    """Every reviewed message, the latest review first (what ``export_nlu_yaml`` takes).

    Read from the shop database alone, so reviews outlive the tracker store's events.

    Raises:
        StoreError: The shop database cannot be read.
    """
    items = []
    for key, row in (await _reviews(shop)).items():
        parts = _split_key(key)
        item = ReviewItem(message_key=key, sender_id=row["sender_id"], text=row["text"],
                          predicted_intent=row["predicted_intent"],
                          confidence=_confidence(row["confidence"]),
                          timestamp=parts[1] if parts else None)
        items.append(_with_review(item, row))
    return items


# -- export ------------------------------------------------------------------------------


def _training_text(text: str) -> str:
    """The text as one safe example line: one line, YAML-printable, no entity markup."""
    # str.split() splits on every line break str.splitlines() (Rasa's reader) knows;
    # then the invisible rest (controls, BOM, lone surrogates) goes without a trace.
    text = " ".join(_NOT_YAML.sub("", " ".join(text.split())).split())
    return _ANNOTATION.sub(r"] \1", text)


class _Literal(str):
    """A string that YAML writes as a literal block (``|``)."""


class _NluDumper(yaml.SafeDumper):
    """PyYAML's safe dumper with ``_Literal`` strings written as ``|`` blocks."""


_NluDumper.add_representer(
    _Literal, lambda dumper, data: dumper.represent_scalar("tag:yaml.org,2002:str", str(data),
                                                           style="|"))


def export_nlu_yaml(items: Iterable[ReviewItem]) -> str:
    """Rasa NLU training data (format 3.1) of the reviewed items.

    Items without a verdict are left out, and so are texts that are no customer
    message (``is_customer_text``). Texts become one line each: whitespace and line
    breaks collapse to single spaces, characters YAML cannot hold go, and a space is
    put after a ``]`` that would make ``[words](x)`` an entity annotation. Intents and
    their examples are sorted and deduplicated; a text reviewed with two intents keeps
    the latest review's.

    The result reads with ``rasa.shared.nlu.training_data.loading.load_data`` (so
    ``rasa train`` and ``rasa data validate``, e.g. saved as ``data/reviewed.yml``)
    and ``python -m training intent --data FILE_OR_data/``.

    Args:
        items: ``reviewed(shop)``, or any reviewed items.

    Returns:
        The YAML document.
    """
    latest: dict[str, tuple[tuple[str, float, str], str]] = {}
    for item in items:
        if item.verdict not in (CONFIRMED, CORRECTED) or not item.intent \
                or not is_customer_text(item.text):
            continue
        example = _training_text(item.text)
        if not example:
            continue
        rank = (item.reviewed_at or "", item.timestamp or 0.0, item.intent)
        if example not in latest or rank > latest[example][0]:
            latest[example] = (rank, item.intent)
    by_intent: dict[str, set[str]] = {}
    for example, (_, intent) in latest.items():
        by_intent.setdefault(intent, set()).add(example)
    blocks = [{"intent": intent,
               "examples": _Literal("".join(f"- {t}\n" for t in sorted(by_intent[intent])))}
              for intent in sorted(by_intent)]
    body = yaml.dump({"nlu": blocks}, Dumper=_NluDumper, sort_keys=False, allow_unicode=True,
                     width=math.inf)
    return 'version: "3.1"\n' + body
