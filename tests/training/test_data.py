from __future__ import annotations

import logging
from pathlib import Path

import pytest

from training import data
from training.data import LabelledTexts
from training.exceptions import (
    DataError,
    DataFileNotFoundError,
    EmptyDatasetError,
    SingleLabelError,
    UnknownColumnError,
)

RASA_NLU = """
version: "3.1"
nlu:
- intent: order_status
  examples: |
    - where is my order [12345](order_id)?
    - status of [A-778]{"entity": "order_id", "role": "primary"} please
    - track   my order
- intent: faq/shipping_cost
  examples: |
    - how much is shipping
- intent: greet
  examples:
  - text: hello there
    metadata:
      sentiment: neutral
  - text: hi
- synonym: credit
  examples: |
    - credit card
- regex: order_id
  examples: |
    - \\d{5}
- lookup: city
  examples: |
    - Berlin
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("where is [12345](order_id)?", "where is 12345?"),
        ('mail [a@b.com]{"entity": "email"} now', "mail a@b.com now"),
        ("fly to [NYC](city:New York)", "fly to NYC"),
        ("[two](n) and [three](n)", "two and three"),
        ("no markup [here]", "no markup [here]"),
        ("parentheses (stay) as they are", "parentheses (stay) as they are"),
        ("", ""),
    ],
)
def test_strip_entity_markup(text: str, expected: str) -> None:
    assert data.strip_entity_markup(text) == expected


def test_load_rasa_nlu_strips_markup_and_skips_other_blocks(tmp_path: Path) -> None:
    path = tmp_path / "nlu.yml"
    path.write_text(RASA_NLU)

    dataset = data.load_rasa_nlu(path)

    assert list(zip(dataset.texts, dataset.labels)) == [
        ("where is my order 12345?", "order_status"),
        ("status of A-778 please", "order_status"),
        ("track   my order", "order_status"),
        ("how much is shipping", "faq"),
        ("hello there", "greet"),
        ("hi", "greet"),
    ]


def test_load_rasa_nlu_keeps_full_retrieval_intent_on_request(tmp_path: Path) -> None:
    path = tmp_path / "nlu.yml"
    path.write_text(RASA_NLU)

    assert "faq/shipping_cost" in data.load_rasa_nlu(path, full_retrieval_intent=True).labels


def test_load_rasa_nlu_directory_skips_files_without_nlu(tmp_path: Path) -> None:
    (tmp_path / "nlu").mkdir()
    (tmp_path / "nlu" / "a.yml").write_text(RASA_NLU)
    (tmp_path / "nlu" / "b.yaml").write_text(
        "nlu:\n- intent: bye\n  examples: |\n    - goodbye\n"
    )
    (tmp_path / "stories.yml").write_text("stories:\n- story: s\n  steps:\n  - intent: greet\n")

    dataset = data.load_rasa_nlu(tmp_path)

    assert dataset.label_counts() == {"bye": 1, "faq": 1, "greet": 2, "order_status": 3}


def test_load_rasa_nlu_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text("nlu:\n- intent: x\n  examples: [unclosed\n")

    with pytest.raises(DataError, match="broken.yml: not valid YAML"):
        data.load_rasa_nlu(path)


def test_load_csv_with_named_columns(write_csv) -> None:
    path = write_csv([("hello, world", "greet"), ('say "hi"', "greet")],
                     header=("utterance", "intent"))

    dataset = data.load_dataset(path, text_column="utterance", label_column="intent")

    assert dataset.texts == ("hello, world", 'say "hi"')
    assert dataset.labels == ("greet", "greet")


def test_load_tsv_keeps_unbalanced_quotes(tmp_path: Path) -> None:
    path = tmp_path / "data.tsv"
    path.write_text('sentence\tlabel\nit \'s a "charming movie \t1\nbad\t0\n')

    dataset = data.load_dataset(path, text_column="sentence",
                                label_map={"0": "negative", "1": "positive"})

    assert dataset.texts == ('it \'s a "charming movie ', "bad")
    assert dataset.labels == ("positive", "negative")


def test_load_jsonl(write_jsonl) -> None:
    path = write_jsonl([{"text": "hi", "label": "greet"}, {"text": "bye", "label": "bye"}])

    dataset = data.load_dataset(path)

    assert list(zip(dataset.texts, dataset.labels)) == [("hi", "greet"), ("bye", "bye")]


def test_load_jsonl_invalid_line_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text('{"text": "hi", "label": "a"}\n{not json}\n')

    with pytest.raises(DataError, match=r"data.jsonl:2: not valid JSON"):
        data.load_dataset(path)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_unknown_column_lists_the_available_ones(fmt: str, write_csv, write_jsonl) -> None:
    path = (write_csv([("hi", "greet")]) if fmt == "csv"
            else write_jsonl([{"text": "hi", "label": "greet"}]))

    with pytest.raises(UnknownColumnError, match="no column 'intent'; available columns: text, label"):
        data.load_dataset(path, label_column="intent")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataFileNotFoundError, match="data file not found"):
        data.load_dataset(tmp_path / "nope.csv")


def test_unknown_extension_asks_for_format(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_text("x")

    with pytest.raises(DataError, match="pass --format"):
        data.load_dataset(path)


def test_clean_drops_empty_and_duplicates_and_logs_counts(caplog) -> None:
    dataset = LabelledTexts(
        ("hello", "  hello ", "", "   ", "bye", "bye", "x"),
        ("greet", "greet", "greet", "greet", "bye", "greet", ""),
    )

    with caplog.at_level(logging.INFO, logger="training.data"):
        cleaned = data.clean(dataset, source="train.csv")

    assert list(zip(cleaned.texts, cleaned.labels)) == [("hello", "greet"), ("bye", "bye")]
    assert "dropped 3 empty and 2 duplicate examples (1 with conflicting labels)" in caplog.text


def test_clean_of_only_empty_texts_is_an_error() -> None:
    with pytest.raises(EmptyDatasetError, match="no usable example"):
        data.clean(LabelledTexts(("", " "), ("a", "b")))


def test_require_labels_refuses_a_single_label() -> None:
    with pytest.raises(SingleLabelError, match="only one label \\('greet'\\)"):
        data.require_labels(LabelledTexts(("hi", "hello"), ("greet", "greet")))


def test_stratified_split_keeps_label_shares_and_is_seeded() -> None:
    texts = tuple(f"text {i}" for i in range(100))
    labels = tuple("a" if i < 80 else "b" if i < 99 else "singleton" for i in range(100))
    dataset = LabelledTexts(texts, labels)

    train, validation = data.stratified_split(dataset, validation_fraction=0.25, seed=1)
    again, _ = data.stratified_split(dataset, validation_fraction=0.25, seed=1)
    other, _ = data.stratified_split(dataset, validation_fraction=0.25, seed=2)

    assert validation.label_counts() == {"a": 20, "b": 5}
    assert train.label_counts() == {"a": 60, "b": 14, "singleton": 1}
    assert set(train.texts).isdisjoint(validation.texts)
    assert train == again
    assert set(train.texts) != set(other.texts)


def test_split_of_zero_keeps_everything_for_training() -> None:
    dataset = LabelledTexts(("a", "b"), ("x", "y"))

    train, validation = data.stratified_split(dataset, validation_fraction=0, seed=0)

    assert train == dataset
    assert len(validation) == 0


def test_fingerprint_ignores_order_but_not_content() -> None:
    one = LabelledTexts(("a", "b"), ("x", "y"))

    assert one.fingerprint() == LabelledTexts(("b", "a"), ("y", "x")).fingerprint()
    assert one.fingerprint() != LabelledTexts(("a", "b"), ("x", "x")).fingerprint()


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(DataError, match="2 texts but 1 labels"):
        LabelledTexts(("a", "b"), ("x",))


# -- load_scores: the sentiment intensity targets --------------------------------


def test_load_scores_scales_by_the_column_maximum_and_skips_empty_values(write_csv) -> None:
    path = write_csv([("awful  service", "negative", "3"), ("fine", "neutral", "0"),
                      ("quite bad", "negative", "1"), ("no value", "negative", ""),
                      ("not a number", "negative", "n/a")],
                     header=("text", "label", "intensity"))

    scores = data.load_scores(path, score_column="intensity")

    assert scores == pytest.approx({"awful service": 1.0, "fine": 0.0, "quite bad": 1 / 3})


def test_load_scores_keeps_values_already_in_zero_to_one(write_csv) -> None:
    path = write_csv([("a", "x", "0.25"), ("b", "x", "1")], header=("text", "label", "score"))

    assert data.load_scores(path, score_column="score") == {"a": 0.25, "b": 1.0}


def test_load_scores_of_a_file_without_the_column_is_empty(write_csv) -> None:
    path = write_csv([("hello", "greet")])

    assert data.load_scores(path, score_column="intensity") == {}


def test_load_scores_refuses_a_negative_value(write_csv) -> None:
    path = write_csv([("good", "positive", "2"), ("odd", "negative", "-1")],
                     header=("text", "label", "intensity"))

    with pytest.raises(DataError, match="intensity must be 0 or more, found '-1'"):
        data.load_scores(path, score_column="intensity")


def test_load_scores_reads_tsv_with_its_own_text_column(tmp_path: Path) -> None:
    path = tmp_path / "data.tsv"
    path.write_text('sentence\tlabel\tstrength\nit \'s "great\tpositive\t4\n'
                    'meh\tneutral\t0\ngood\tpositive\t2\n')

    scores = data.load_scores(path, text_column="sentence", score_column="strength")

    assert scores == {"it 's \"great": 1.0, "meh": 0.0, "good": 0.5}
    assert set(scores) == set(data.load_dataset(path, text_column="sentence").texts)


def test_load_scores_reads_jsonl(write_jsonl) -> None:
    path = write_jsonl([{"text": "so angry", "label": "negative", "intensity": 2},
                        {"text": "ok", "label": "neutral", "intensity": 0},
                        {"text": "meh", "label": "neutral"},
                        {"text": "upset", "label": "negative", "intensity": None},
                        {"text": "furious", "label": "negative", "intensity": 4}])

    assert data.load_scores(path, score_column="intensity") == {
        "so angry": 0.5, "ok": 0.0, "furious": 1.0}


def test_load_scores_refuses_rasa_yaml(tmp_path: Path) -> None:
    path = tmp_path / "nlu.yml"
    path.write_text(RASA_NLU)

    with pytest.raises(DataError, match="needs CSV, TSV or JSONL"):
        data.load_scores(path, score_column="intensity")


def test_load_scores_keys_match_the_cleaned_training_texts(write_csv) -> None:
    path = write_csv([("  where   is it ", "negative", "2"), ("fine", "neutral", "0")],
                     header=("text", "label", "intensity"))

    cleaned = data.clean(data.load_dataset(path))
    scores = data.load_scores(path, score_column="intensity")

    assert set(scores) == set(cleaned.texts)
