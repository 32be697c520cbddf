from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import synthetic_pairs
from training.cli import build_parser, main, parse_label_map

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--epochs", "1", "--batch-size", "8", "--max-length", "32", "--device", "cpu"]


@pytest.fixture
def synthetic_csv(write_csv) -> Path:
    return write_csv(synthetic_pairs(6), name="train.csv")


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_cases(tmp_path: Path, write_csv, tiny_checkpoint: Path, synthetic_csv: Path):
    """(argv, message) for every error the CLI must report in one line."""
    empty = write_csv([("", "a"), ("  ", "b")], name="empty.csv")
    single = write_csv([("hi", "greet"), ("hello", "greet")], name="single.csv")
    not_a_model = tmp_path / "not-a-model"
    not_a_model.mkdir()
    (not_a_model / "README.md").write_text("no weights here")
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "x").write_text("x")
    base = ["--base-model", str(tiny_checkpoint), *FAST]
    out = str(tmp_path / "out")
    return [
        (["intent", "--data", str(tmp_path / "missing.csv"), "--output", out, *base],
         "data file not found"),
        (["intent", "--data", str(empty), "--output", out, *base], "no usable example"),
        (["intent", "--data", str(single), "--output", out, *base], "only one label"),
        (["intent", "--data", str(synthetic_csv), "--label-column", "intent", "--output", out,
          *base], "no column 'intent'"),
        (["intent", "--data", str(synthetic_csv), "--output", out,
          "--base-model", str(not_a_model), *FAST], "is not a model: it has no config.json"),
        (["intent", "--data", str(synthetic_csv), "--output", str(existing), *base],
         "already exists; pass --overwrite"),
        (["intent", "--data", str(synthetic_csv), "--output", out, *base, "--epochs", "0"],
         "epochs=0.0 is invalid"),
        (["sentiment", "--data", str(synthetic_csv), "--output", out, *base],
         "sentiment labels must be negative, neutral, positive"),
        (["evaluate", "--model", str(not_a_model), "--data", str(synthetic_csv)],
         "classifier.json is missing"),
    ]


CASE_NAMES = ["missing file", "empty dataset", "single label", "unknown column",
              "not a model", "output exists", "bad option value", "sentiment labels",
              "evaluate a non-artifact"]


@pytest.mark.parametrize("case", range(len(CASE_NAMES)), ids=CASE_NAMES)
def test_bad_input_is_one_line_and_exit_code_2(case: int, capsys, tmp_path, write_csv,
                                               tiny_checkpoint, synthetic_csv) -> None:
    argv, message = error_cases(tmp_path, write_csv, tiny_checkpoint, synthetic_csv)[case]

    code, out, err = run_cli(capsys, *argv)

    assert code == 2
    assert out == ""
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err


def test_a_real_process_prints_no_traceback(tmp_path: Path) -> None:
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    process = subprocess.run(
        [sys.executable, "-m", "training", "intent", "--data", str(tmp_path / "nope.yml"),
         "--output", str(tmp_path / "out")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )

    assert process.returncode == 2
    assert "Traceback" not in process.stderr
    assert process.stderr.strip().splitlines()[-1].startswith("error: data file not found")


def test_train_then_evaluate(capsys, tmp_path: Path, tiny_checkpoint: Path,
                             synthetic_csv: Path) -> None:
    output = tmp_path / "model"

    code, out, _ = run_cli(capsys, "intent", "--data", str(synthetic_csv), "--output",
                           str(output), "--base-model", str(tiny_checkpoint), *FAST,
                           "--learning-rate", "3e-3", "--epochs", "4")
    assert code == 0, out
    assert json.loads(out)["output"] == str(output)

    code, out, _ = run_cli(capsys, "evaluate", "--model", str(output), "--data",
                           str(synthetic_csv), "--device", "cpu")
    summary = json.loads(out)

    assert code == 0
    assert summary["examples"] == len(synthetic_pairs(6))
    results = json.loads((output / "evaluation" / "results.json").read_text())
    assert results["evaluation"]["accuracy"] == summary["accuracy"]
    assert (output / "evaluation" / "confusion_evaluation.png").is_file()


def test_help_explains_every_option(capsys) -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # noqa: SLF001

    for name, sub in commands.items():
        for action in sub._actions:  # noqa: SLF001
            assert action.help, f"{name} {action.option_strings} has no help"
    with pytest.raises(SystemExit) as exit_info:
        main(["intent", "--help"])
    assert exit_info.value.code == 0
    assert "--label-map" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0=negative,1=positive", {"0": "negative", "1": "positive"}),
     (" a = b ,", {"a": "b"}), ("", {})],
)
def test_parse_label_map(value: str, expected: dict) -> None:
    assert parse_label_map(value) == expected


def test_bad_label_map_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["intent", "--data", "x.csv", "--output", "o", "--label-map", "nonsense"])

    assert exit_info.value.code == 2
    assert "is not OLD=NEW" in capsys.readouterr().err
