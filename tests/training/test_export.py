"""ONNX export and the onnx backend of Predictor, on the tiny random models."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from training.artifact import onnx_path
from training.exceptions import ArtifactError
from training.export import export_onnx
from training.predict import Predictor

TEXTS = ["where is my order 1234", "refund please 77", "hello there", "", "x" * 5000,
         "你好 😀 مرحبا"]


@pytest.fixture(scope="module")
def exported(tiny_artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("export") / "artifact"
    shutil.copytree(tiny_artifact, copy)
    export_onnx(copy)
    export_onnx(copy, quantize=False)
    return copy


def test_export_writes_both_files(exported: Path) -> None:
    assert onnx_path(exported).is_file()
    assert onnx_path(exported, quantized=False).is_file()
    assert onnx_path(exported).stat().st_size < onnx_path(exported, quantized=False).stat().st_size


def test_fp32_onnx_matches_torch(exported: Path) -> None:
    torch_model = Predictor.load(exported, backend="torch")
    session = Predictor._load_onnx(exported, onnx_path(exported, quantized=False), None, 1)

    expected = torch_model.predict_proba(TEXTS).numpy()
    assert np.allclose(session.predict_proba(TEXTS).numpy(), expected, atol=1e-4)


def test_int8_onnx_keeps_the_labels(exported: Path) -> None:
    torch_labels = [p.label for p in Predictor.load(exported, backend="torch").predict(TEXTS)]
    onnx = Predictor.load(exported, backend="onnx", num_threads=1)

    predictions = onnx.predict(TEXTS)

    assert onnx.backend == "onnx"
    assert [p.label for p in predictions] == torch_labels
    assert all(isinstance(score, float) for p in predictions for _, score in p.ranking)
    assert all(abs(sum(score for _, score in p.ranking) - 1) < 1e-4 for p in predictions)


@pytest.mark.parametrize(("has_onnx", "expected"), [(True, "onnx"), (False, "torch")])
def test_auto_backend(exported: Path, tiny_artifact: Path, has_onnx: bool, expected: str) -> None:
    directory = exported if has_onnx else tiny_artifact

    assert Predictor.load(directory, backend="auto", device="cpu").backend == expected


def test_onnx_backend_without_an_export_names_the_fix(tiny_artifact: Path) -> None:
    with pytest.raises(ArtifactError, match="no ONNX model"):
        Predictor.load(tiny_artifact, backend="onnx")


def test_truncated_onnx_file_is_refused(exported: Path, tmp_path: Path) -> None:
    broken = tmp_path / "artifact"
    shutil.copytree(exported, broken)
    onnx_file = onnx_path(broken)
    onnx_file.write_bytes(onnx_file.read_bytes()[:1000])

    with pytest.raises(ArtifactError, match="not a loadable ONNX model"):
        Predictor.load(broken, backend="onnx")


def test_unknown_backend_is_refused(tiny_artifact: Path) -> None:
    with pytest.raises(ValueError, match="backend='tensorrt'"):
        Predictor.load(tiny_artifact, backend="tensorrt")


def test_wrong_task_is_refused_on_onnx_too(exported: Path) -> None:
    with pytest.raises(ArtifactError, match="not a sentiment one"):
        Predictor.load(exported, backend="onnx", expected_task="sentiment")


def test_intent_onnx_outputs_logits_and_features(exported: Path) -> None:
    onnx = Predictor.load(exported, backend="onnx", num_threads=1)

    assert [item.name for item in onnx.session.get_outputs()] == ["logits", "features"]
    outputs = onnx.outputs(TEXTS)
    assert outputs["features"].shape == (len(TEXTS), 32)
    assert "intensity" not in outputs


def test_onnx_backend_keeps_the_calibration_and_the_detector(exported: Path) -> None:
    torch_model = Predictor.load(exported, backend="torch")
    onnx = Predictor.load(exported, backend="onnx", num_threads=1)
    fp32 = Predictor._load_onnx(exported, onnx_path(exported, quantized=False), None, 1)
    fp32.detector = onnx.detector  # _load_onnx alone reads no detector; load() adds it

    expected = torch_model.predict(TEXTS)
    predictions = fp32.predict(TEXTS)

    assert onnx.detector is not None
    assert onnx.detector.to_json() == torch_model.detector.to_json()
    assert onnx.temperature == torch_model.temperature
    assert all(type(p.unknown_score) is float for p in onnx.predict(TEXTS))
    for onnx_prediction, torch_prediction in zip(predictions, expected):
        # Mahalanobis distances run into the thousands: a relative tolerance.
        assert onnx_prediction.unknown_score == pytest.approx(torch_prediction.unknown_score,
                                                              rel=1e-4, abs=1e-4)
        assert onnx_prediction.unknown == torch_prediction.unknown
