"""Labelled text: loading (Rasa NLU YAML, CSV/TSV, JSONL), cleaning and splitting.

Pure Python plus PyYAML: no torch, no Rasa, so it is cheap to import and test.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import yaml

from training.exceptions import (
    DataError,
    DataFileNotFoundError,
    EmptyDatasetError,
    SingleLabelError,
    UnknownColumnError,
    first_line,
)


class DataOptions(Protocol):
    """How a data file is read (``training.arguments.DataArguments`` is one); a
    protocol, so that this module does not import the arguments, which import it."""

    @property
    def data_format(self) -> str: ...

    @property
    def text_column(self) -> str: ...

    @property
    def label_column(self) -> str: ...

    @property
    def label_map(self) -> Mapping[str, str] | None: ...

logger = logging.getLogger(__name__)

FORMATS = ("auto", "rasa", "csv", "tsv", "jsonl")

# `[text](entity)`, `[text](entity:value)`, `[text]{"entity": ...}` -> `text`
_ENTITY_MARKUP = re.compile(r"\[(?P<text>[^\[\]]*)\](?:\([^()]*\)|\{[^{}]*\})")
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class LabelledTexts:
    """Parallel lists of texts and their labels.

    Attributes:
        texts: The example texts.
        labels: One label per text.
    """

    texts: tuple[str, ...]
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise DataError(
                f"{len(self.texts)} texts but {len(self.labels)} labels; "
                "every text needs exactly one label"
            )

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> LabelledTexts:
        """Builds the dataset from ``(text, label)`` pairs."""
        pairs = list(pairs)
        return cls(tuple(p[0] for p in pairs), tuple(p[1] for p in pairs))

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def label_names(self) -> list[str]:
        """Distinct labels, sorted, so that label ids are stable across runs."""
        return sorted(set(self.labels))

    def label_counts(self) -> dict[str, int]:
        """Number of examples per label."""
        return dict(sorted(Counter(self.labels).items()))

    def fingerprint(self) -> str:
        """A SHA-256 of the content, independent of the order of examples."""
        digest = hashlib.sha256()
        for text, label in sorted(zip(self.texts, self.labels)):
            digest.update(json.dumps([text, label]).encode("utf-8"))
        return digest.hexdigest()


def strip_entity_markup(text: str) -> str:
    """Removes Rasa entity annotations and keeps the annotated words.

    >>> strip_entity_markup('where is [12345](order_id)?')
    'where is 12345?'
    >>> strip_entity_markup('mail [a@b.c]{"entity": "email"} please')
    'mail a@b.c please'
    """
    return _ENTITY_MARKUP.sub(lambda m: m.group("text"), text)


def normalise_text(text: str) -> str:
    """Collapses whitespace so that duplicates that differ only in spacing are found."""
    return _WHITESPACE.sub(" ", text).strip()


def _require_file(path: Path) -> None:
    if not path.exists():
        raise DataFileNotFoundError(f"data file not found: '{path}'")


@contextmanager
def _readable(path: Path) -> Iterator[None]:
    """Turns what a malformed file raises while being read into a ``DataError``."""
    try:
        yield
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text (byte {error.start}: {error.reason})") from None
    except csv.Error as error:
        raise DataError(f"{path}: not valid CSV/TSV ({error})") from None
    except RecursionError:
        raise DataError(f"{path}: nested too deeply to read") from None


def _parse_rasa_examples(examples: object, source: Path) -> list[str]:
    if isinstance(examples, str):
        lines = examples.splitlines()
        return [line.strip()[1:].strip() for line in lines if line.strip().startswith("-")]
    if isinstance(examples, list):  # examples with metadata: `- text: ...`
        texts = []
        for item in examples:
            if isinstance(item, Mapping) and "text" in item:
                texts.append(str(item["text"]))
            elif isinstance(item, str):
                texts.append(item)
        return texts
    raise DataError(f"{source}: 'examples' must be a block of '- ' lines or a list of texts")


def load_rasa_nlu(path: str | Path, *, full_retrieval_intent: bool = False) -> LabelledTexts:
    """Reads intent examples from Rasa NLU training data (YAML format 3.x).

    Args:
        path: A YAML file, or a directory searched recursively for ``*.yml``/``*.yaml``.
            Files without an ``nlu:`` key (stories, rules, domain) are skipped.
        full_retrieval_intent: Keep ``faq/ask_x`` as the label instead of ``faq``,
            the intent that Rasa's domain and intent classifiers see.

    Returns:
        The examples with entity markup stripped.
    """
    path = Path(path)
    _require_file(path)
    files = sorted([*path.rglob("*.yml"), *path.rglob("*.yaml")]) if path.is_dir() else [path]
    pairs: list[tuple[str, str]] = []
    for file in files:
        try:
            with _readable(file):
                content = yaml.safe_load(file.read_text(encoding="utf-8"))
        except yaml.YAMLError as error:
            raise DataError(f"{file}: not valid YAML ({first_line(error)})") from None
        if not isinstance(content, Mapping) or not isinstance(content.get("nlu"), list):
            continue
        for block in content["nlu"]:
            if not isinstance(block, Mapping) or "intent" not in block:
                continue  # synonym, regex and lookup blocks
            intent = str(block["intent"])
            if not full_retrieval_intent:
                intent = intent.split("/", 1)[0]
            for text in _parse_rasa_examples(block.get("examples", ""), file):
                pairs.append((strip_entity_markup(text), intent))
    return LabelledTexts.from_pairs(pairs)


def _check_columns(path: Path, available: Iterable[str], wanted: Iterable[str]) -> None:
    available = list(available)
    for column in wanted:
        if column not in available:
            raise UnknownColumnError(
                f"{path}: no column '{column}'; available columns: {', '.join(available)}"
            )


def load_delimited(
    path: str | Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    delimiter: str = ",",
) -> LabelledTexts:
    """Reads a CSV or TSV file with a header row.

    Args:
        path: The file.
        text_column: Header of the text column.
        label_column: Header of the label column.
        delimiter: ``,`` for CSV, a tab for TSV.
    """
    path = Path(path)
    _require_file(path)
    with _readable(path), path.open(newline="", encoding="utf-8") as handle:
        # SST-2's TSV has unescaped quotes inside sentences.
        quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
        reader = csv.DictReader(handle, delimiter=delimiter, quoting=quoting)
        if reader.fieldnames is None:
            raise EmptyDatasetError(f"{path}: the file is empty (no header row)")
        _check_columns(path, reader.fieldnames, (text_column, label_column))
        pairs = [(row[text_column] or "", row[label_column] or "") for row in reader]
    return LabelledTexts.from_pairs(pairs)


def _json_records(path: Path, handle: Iterable[str]) -> Iterator[Mapping]:
    """The JSON object of every non-blank line; ``DataError`` naming the line otherwise."""
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}:{number}: not valid JSON ({error.msg})") from None
        if not isinstance(record, Mapping):
            raise DataError(f"{path}:{number}: expected a JSON object per line")
        yield record


def load_jsonl(
    path: str | Path, *, text_column: str = "text", label_column: str = "label"
) -> LabelledTexts:
    """Reads one JSON object per line; blank lines are skipped."""
    path = Path(path)
    _require_file(path)
    pairs = []
    with _readable(path), path.open(encoding="utf-8") as handle:
        for record in _json_records(path, handle):
            _check_columns(path, record.keys(), (text_column, label_column))
            pairs.append((str(record[text_column] or ""), str(record[label_column])))
    return LabelledTexts.from_pairs(pairs)


def detect_format(path: str | Path) -> str:
    """Guesses the format from the file name; a directory is Rasa NLU data."""
    path = Path(path)
    if path.is_dir():
        return "rasa"
    suffix = path.suffix.lower()
    formats = {".yml": "rasa", ".yaml": "rasa", ".csv": "csv", ".tsv": "tsv"}
    formats.update({".jsonl": "jsonl", ".ndjson": "jsonl"})
    if suffix not in formats:
        raise DataError(
            f"cannot tell the format of '{path}' from its extension; "
            f"pass --format with one of: {', '.join(FORMATS[1:])}"
        )
    return formats[suffix]


def load_dataset(
    path: str | Path,
    *,
    data_format: str = "auto",
    text_column: str = "text",
    label_column: str = "label",
    label_map: Mapping[str, str] | None = None,
) -> LabelledTexts:
    """Loads labelled texts in any supported format, then maps labels.

    Args:
        path: File (or directory, for Rasa NLU data).
        data_format: One of ``FORMATS``; ``auto`` guesses from the extension.
        text_column: Column or key of the text (CSV, TSV, JSONL).
        label_column: Column or key of the label (CSV, TSV, JSONL).
        label_map: Renames labels, e.g. ``{"0": "negative", "1": "positive"}``.
    """
    _require_file(Path(path))
    data_format = detect_format(path) if data_format == "auto" else data_format
    if data_format == "rasa":
        dataset = load_rasa_nlu(path)
    elif data_format in ("csv", "tsv"):
        delimiter = "\t" if data_format == "tsv" else ","
        dataset = load_delimited(
            path, text_column=text_column, label_column=label_column, delimiter=delimiter
        )
    elif data_format == "jsonl":
        dataset = load_jsonl(path, text_column=text_column, label_column=label_column)
    else:
        raise DataError(f"unknown data format '{data_format}'; use one of: {', '.join(FORMATS)}")
    if label_map:
        dataset = LabelledTexts(dataset.texts,
                                tuple(label_map.get(label, label) for label in dataset.labels))
    return dataset


def load_labelled(path: Path, data_args: DataOptions, source: str) -> LabelledTexts:
    """Loads, label-maps and cleans one data file as the options say.

    Args:
        path: The file (or Rasa data directory); ``data_args.path`` or one of
            its test and validation companions, read in the same format.
        data_args: Format, columns and label map.
        source: How log lines and errors name the data (``training data``).
    """
    dataset = load_dataset(
        path,
        data_format=data_args.data_format,
        text_column=data_args.text_column,
        label_column=data_args.label_column,
        label_map=data_args.label_map,
    )
    return clean(dataset, source=source)


def clean(dataset: LabelledTexts, *, source: str = "data") -> LabelledTexts:
    """Normalises whitespace, drops empty texts or labels and exact duplicates.

    A text that occurs with two different labels keeps its first label; the
    conflict is logged, because it usually means a labelling mistake.
    """
    seen: dict[str, str] = {}
    empty = duplicates = conflicts = 0
    for raw_text, raw_label in zip(dataset.texts, dataset.labels):
        text, label = normalise_text(raw_text), raw_label.strip()
        if not text or not label:
            empty += 1
        elif text in seen:
            duplicates += 1
            conflicts += seen[text] != label
        else:
            seen[text] = label
    if empty or duplicates:
        logger.info(
            "%s: dropped %d empty and %d duplicate examples (%d with conflicting labels)",
            source, empty, duplicates, conflicts,
        )
    cleaned = LabelledTexts(tuple(seen), tuple(seen.values()))
    if not cleaned:
        raise EmptyDatasetError(f"{source}: no usable example (every text or label is empty)")
    return cleaned


def require_labels(dataset: LabelledTexts, *, source: str = "data") -> None:
    """Raises when the data cannot train a classifier (fewer than two labels)."""
    if not dataset:
        raise EmptyDatasetError(f"{source}: no usable example")
    if len(dataset.label_names) < 2:
        raise SingleLabelError(
            f"{source}: only one label ({dataset.label_names[0]!r}); "
            "a classifier needs examples of at least two labels"
        )


def stratified_split(
    dataset: LabelledTexts, *, validation_fraction: float, seed: int
) -> tuple[LabelledTexts, LabelledTexts]:
    """Splits into train and validation sets keeping each label's share.

    Every label keeps at least one training example; a label with a single
    example has none in validation.
    """
    if validation_fraction <= 0:
        return dataset, LabelledTexts((), ())
    by_label: dict[str, list[str]] = defaultdict(list)
    for text, label in zip(dataset.texts, dataset.labels):
        by_label[label].append(text)
    rng = random.Random(seed)
    train: list[tuple[str, str]] = []
    validation: list[tuple[str, str]] = []
    for label in sorted(by_label):
        texts = sorted(by_label[label])
        rng.shuffle(texts)
        n_validation = min(round(len(texts) * validation_fraction), len(texts) - 1)
        validation += [(t, label) for t in texts[:n_validation]]
        train += [(t, label) for t in texts[n_validation:]]
    rng.shuffle(train)
    rng.shuffle(validation)
    return LabelledTexts.from_pairs(train), LabelledTexts.from_pairs(validation)


def load_scores(path: str | Path, *, data_format: str = "auto", text_column: str = "text",
                score_column: str) -> dict[str, float]:
    """A numeric column by normalised text, scaled to [0, 1] by the column's maximum.

    Used for the sentiment intensity targets (0 neutral ... N strongest). Rows
    with an empty or non-numeric value are left out; a file without the column
    gives an empty mapping (a data set without intensities, like SST-2).

    Raises:
        DataError: a negative value, or a format without columns (Rasa YAML).
    """
    path = Path(path)
    _require_file(path)
    data_format = detect_format(path) if data_format == "auto" else data_format
    rows: list[dict] = []
    with _readable(path), path.open(newline="", encoding="utf-8") as handle:
        if data_format in ("csv", "tsv"):
            quoting = csv.QUOTE_NONE if data_format == "tsv" else csv.QUOTE_MINIMAL
            reader = csv.DictReader(handle, delimiter="\t" if data_format == "tsv" else ",",
                                    quoting=quoting)
            if reader.fieldnames is None or score_column not in reader.fieldnames:
                return {}
            rows = list(reader)
        elif data_format == "jsonl":
            rows = list(_json_records(path, handle))
        else:
            raise DataError(f"{path}: a score column needs CSV, TSV or JSONL data")
    values: dict[str, float] = {}
    for row in rows:
        raw = row.get(score_column)
        try:
            value = float(raw)
        except (TypeError, ValueError):
            continue
        if value < 0:
            raise DataError(f"{path}: {score_column} must be 0 or more, found {raw!r}")
        values[normalise_text(str(row.get(text_column) or ""))] = value
    top = max(values.values(), default=0.0)
    return {text: value / top if top > 1 else value for text, value in values.items()}
