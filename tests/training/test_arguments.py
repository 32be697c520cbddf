from __future__ import annotations

from pathlib import Path

import pytest

from training.arguments import DataArguments, TrainArguments
from training.exceptions import ArgumentsError


@pytest.mark.parametrize(
    ("field", "value", "fix"),
    [
        ("task", "ner", "use one of intent, sentiment"),
        ("epochs", 0, "more than 0 epochs"),
        ("learning_rate", 0, "small positive value"),
        ("learning_rate", 3, "small positive value"),
        ("batch_size", 0, "use 1 or more"),
        ("eval_batch_size", -1, "use 1 or more"),
        ("max_length", 4, "between 8 and"),
        ("max_length", 513, "between 8 and 512, the encoder's position limit"),
        ("warmup_ratio", 1.0, r"fraction in \[0, 1\)"),
        ("weight_decay", -0.1, "0 or more"),
        ("dropout", 1.0, r"fraction in \[0, 1\)"),
        ("pooling", "max", "use one of mean, cls"),
        ("early_stopping_patience", -1, "0 \\(off\\) or more"),
        ("device", "tpu", "use one of auto, cpu, cuda"),
        ("num_threads", 0, "use 1 or more"),
        ("label_smoothing", 1.0, r"fraction in \[0, 1\)"),
        ("label_smoothing", -0.1, r"fraction in \[0, 1\)"),
        ("freeze_word_embeddings", "yes", "use True or False"),
    ],
)
def test_train_arguments_name_field_value_and_fix(field: str, value: object, fix: str) -> None:
    with pytest.raises(ArgumentsError, match=rf"{field}={value!r} is invalid: .*{fix}"):
        TrainArguments(**{field: value})


@pytest.mark.parametrize(
    ("field", "value"),
    [("data_format", "xml"), ("validation_split", 0.9), ("validation_split", -0.1),
     ("text_column", ""), ("label_column", "")],
)
def test_data_arguments_refuse_bad_values(field: str, value: object) -> None:
    with pytest.raises(ArgumentsError, match=f"{field}="):
        DataArguments(path="x.csv", **{field: value})


def test_defaults_are_the_measured_recipe_and_paths_become_paths() -> None:
    args = TrainArguments(output_dir="out")

    assert (args.epochs, args.learning_rate, args.pooling) == (4.0, 2e-4, "mean")
    assert args.output_dir == Path("out")
    assert DataArguments(path="d.csv", test_path="t.csv").test_path == Path("t.csv")
    assert args.to_dict()["output_dir"] == "out"


def test_arguments_are_frozen() -> None:
    args = TrainArguments()

    with pytest.raises(AttributeError):
        args.epochs = 1  # type: ignore[misc]


def test_max_length_bounds_are_the_encoders_position_limit() -> None:
    from training.arguments import MAX_LENGTH_MAX, MAX_LENGTH_MIN

    assert TrainArguments(max_length=MAX_LENGTH_MAX).max_length == 512
    assert TrainArguments(max_length=MAX_LENGTH_MIN).max_length == 8


def test_data_arguments_record_as_json_ready_values(tmp_path: Path) -> None:
    data = DataArguments(path=tmp_path / "train.csv", test_path=tmp_path / "test.csv",
                         label_map={"0": "negative"})

    assert data.to_dict() == {
        "path": str(tmp_path / "train.csv"), "format": "auto", "text_column": "text",
        "label_column": "label", "label_map": {"0": "negative"},
        "test_path": str(tmp_path / "test.csv"), "validation_split": 0.1,
        "validation_path": None, "intensity_column": None}
