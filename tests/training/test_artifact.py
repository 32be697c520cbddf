"""The artifact layout's one owner, ``training.artifact``: cheap to import, and the
checks, fingerprint and copy the training and serving sides share."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from training import artifact
from training.artifact import ArtifactInfo
from training.exceptions import ArtifactError, WrongTaskError, first_line

ROOT = Path(__file__).resolve().parents[2]


def test_importing_it_loads_neither_torch_nor_transformers() -> None:
    code = ("import training.artifact, sys; "
            "assert 'torch' not in sys.modules, 'torch'; "
            "assert 'transformers' not in sys.modules, 'transformers'")

    completed = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                               text=True, timeout=120)

    assert completed.returncode == 0, completed.stderr


def test_info_round_trips_through_classifier_json(tmp_path: Path) -> None:
    info = ArtifactInfo(task="sentiment", labels=["negative", "neutral", "positive"],
                        max_length=64, calibration={"temperature": 1.5})

    path = info.write(tmp_path)
    read = ArtifactInfo.read(tmp_path)

    assert path == tmp_path / artifact.ARTIFACT_FILE
    assert read.created_at  # stamped on writing
    assert read == replace(info, created_at=read.created_at)
    assert json.loads(path.read_text())["format_version"] == artifact.FORMAT_VERSION


def test_the_task_check_refuses_another_task_and_says_which(tmp_path: Path) -> None:
    info = ArtifactInfo(task="intent", labels=["a", "b"], max_length=32)
    info.write(tmp_path)

    with pytest.raises(WrongTaskError, match="holds a intent classifier, not a sentiment one"
                       ) as caught:
        artifact.check_artifact_info(tmp_path, "sentiment")

    assert (caught.value.found, caught.value.expected) == ("intent", "sentiment")
    assert isinstance(caught.value, ArtifactError)
    artifact.check_task(info, "intent", tmp_path)  # the same task passes
    artifact.check_task(info, None, tmp_path)  # as does no expectation
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (str(copy), copy.found, copy.expected) == (str(caught.value), "intent", "sentiment")


def test_weights_file_names_the_first_format_present(tmp_path: Path) -> None:
    assert artifact.weights_file(tmp_path) is None
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    assert artifact.weights_file(tmp_path) == "pytorch_model.bin"
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert artifact.weights_file(tmp_path) == "model.safetensors"


def test_onnx_path_is_inside_the_artifact(tmp_path: Path) -> None:
    assert artifact.onnx_path(tmp_path) == tmp_path / "onnx" / "model.int8.onnx"
    assert artifact.onnx_path(tmp_path, quantized=False) == tmp_path / "onnx" / "model.onnx"


def test_load_ood_tensors_is_empty_without_a_detector(tmp_path: Path) -> None:
    assert artifact.load_ood_tensors(tmp_path) == {}
    (tmp_path / artifact.OUT_OF_SCOPE_FILE).write_bytes(b"not safetensors")

    with pytest.raises(ArtifactError, match="out_of_scope.safetensors' cannot be loaded"):
        artifact.load_ood_tensors(tmp_path)


def test_fingerprint_follows_names_and_content(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("1")
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / "model.onnx").write_bytes(b"x")
    first = artifact.artifact_fingerprint(tmp_path)

    assert artifact.artifact_fingerprint(tmp_path) == first
    (tmp_path / "onnx" / "model.onnx").write_bytes(b"y")
    assert artifact.artifact_fingerprint(tmp_path) != first
    assert artifact.artifact_fingerprint(tmp_path / "none") == f"missing:{tmp_path / 'none'}"


def test_copy_takes_files_and_folders_but_not_hidden_ones(tmp_path: Path) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    (source / "onnx").mkdir(parents=True)
    (source / ".cache").mkdir()
    (source / artifact.ARTIFACT_FILE).write_text("{}")
    (source / "onnx" / "model.int8.onnx").write_bytes(b"x")
    (source / ".cache" / "lock").write_text("")
    target.mkdir()

    artifact.copy_artifact(source, target)

    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*")) == [
        artifact.ARTIFACT_FILE, "onnx", "onnx/model.int8.onnx"]


@pytest.mark.parametrize(
    ("error", "expected"),
    [(ValueError("first\nsecond"), "first"), (KeyError(), "KeyError"),
     (OSError("  padded  \n"), "padded")],
)
def test_first_line_keeps_one_line(error: BaseException, expected: str) -> None:
    assert first_line(error) == expected
