"""What a training run adds beyond the classifier: calibration, the out-of-scope
detector, the sentiment intensity head, float16 artifacts and typo augmentation,
and how ``Predictor`` and the ONNX export carry them. Tiny models, a second each."""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import SENTIMENT_TEMPLATES, TINY_TRAINING, synthetic_pairs
from training.arguments import DataArguments, TrainArguments
from training.artifact import ARTIFACT_FILE, INTENSITY_HEAD_FILE, OUT_OF_SCOPE_FILE
from training.calibration import softmax
from training.data import LabelledTexts
from training.export import export_onnx
from training.fitting import TokenizedDataset
from training.ood import DEFAULT_METHOD
from training.predict import Predictor
from training.trainer import ClassifierTrainer, TrainResult

INTENSITY_LEVELS = {"negative": "3", "neutral": "0", "positive": "2"}
SENTIMENT_TEXTS = ["this is terrible 5", "awful service 12", "i am angry 3",
                   "where is my order 3", "what are your hours 8", "i have a question 77",
                   "great thanks 9", "i love it 4"]


def write_rows(path: Path, rows: Sequence[Sequence[str]], header: Sequence[str]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def sentiment_rows(with_intensity: bool) -> tuple[list[tuple[str, ...]], tuple[str, ...]]:
    """The tiny sentiment data; every seventh row has no intensity value."""
    pairs = synthetic_pairs(templates=SENTIMENT_TEMPLATES)
    if not with_intensity:
        return pairs, ("text", "label")
    rows = [(text, label, "" if i % 7 == 6 else INTENSITY_LEVELS[label])
            for i, (text, label) in enumerate(pairs)]
    return rows, ("text", "label", "intensity")


def classifier_json(directory: Path) -> dict:
    return json.loads((directory / ARTIFACT_FILE).read_text())


@pytest.fixture(scope="module")
def intensity_run(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory
                  ) -> TrainResult:
    """A sentiment run with an intensity column, trained once for this module."""
    root = tmp_path_factory.mktemp("intensity")
    rows, header = sentiment_rows(with_intensity=True)
    data = write_rows(root / "sentiment.csv", rows, header)
    options = TINY_TRAINING | {"output_dir": root / "artifact", "task": "sentiment",
                               "base_model": str(tiny_checkpoint)}
    trainer = ClassifierTrainer(
        DataArguments(path=data, validation_split=0.2, intensity_column="intensity"),
        TrainArguments(**options))
    result = trainer.run()
    result.trainer = trainer  # type: ignore[attr-defined]
    return result


@pytest.fixture(scope="module")
def intensity_exported(intensity_run: TrainResult) -> Path:
    export_onnx(intensity_run.output_dir)
    return intensity_run.output_dir


# -- intent: calibration and the out-of-scope detector ---------------------------


def test_intent_run_with_validation_writes_calibration_and_detector(tiny_artifact: Path
                                                                    ) -> None:
    from safetensors.numpy import load_file

    info = classifier_json(tiny_artifact)
    calibration, detector = info["calibration"], info["out_of_scope"]
    tensors = load_file(str(tiny_artifact / OUT_OF_SCOPE_FILE))

    assert calibration["temperature"] > 0
    assert 0.0 <= calibration["fallback_threshold"] <= 1.0
    assert calibration["examples"] > 0
    assert "fallback" not in calibration  # the full report stays in results.json
    assert detector["method"] == DEFAULT_METHOD == "mahalanobis"
    assert math.isfinite(detector["threshold"])
    assert detector["known_recall"] == 0.95
    assert detector["temperature"] == calibration["temperature"]
    # One mean per intent (greet, order_status, refund) and a shared precision matrix.
    assert tensors["means"].shape == (3, 32)
    assert tensors["precision"].shape == (32, 32)
    assert np.allclose(tensors["precision"], tensors["precision"].T, atol=1e-2)


def test_loaded_intent_predictor_flags_unknown_input(tiny_artifact: Path) -> None:
    predictor = Predictor.load(tiny_artifact, device="cpu")
    texts = [text for text, _ in synthetic_pairs()] + ["zzz qqq", "", "x" * 300]

    predictions = predictor.predict(texts)

    assert predictor.detector is not None and predictor.detector.method == DEFAULT_METHOD
    threshold = predictor.detector.threshold
    for prediction in predictions:
        assert type(prediction.unknown_score) is float
        assert type(prediction.unknown) is bool
        assert prediction.unknown == (prediction.unknown_score > threshold)
        assert prediction.intensity is None
    # The detector's threshold accepts 95% of validation texts; texts it was
    # fitted on are nearer still.
    known = predictions[:-3]
    assert sum(p.unknown for p in known) / len(known) <= 0.1


def test_loaded_intent_predictor_applies_the_temperature(tiny_artifact: Path) -> None:
    predictor = Predictor.load(tiny_artifact, device="cpu")
    texts = ["where is my order 1", "hello", "refund please"]

    logits = predictor.outputs(texts)["logits"]

    assert predictor.temperature == classifier_json(tiny_artifact)["calibration"]["temperature"]
    assert np.allclose(predictor.predict_proba(texts).numpy(),
                       softmax(logits, predictor.temperature), atol=1e-6)


def test_out_of_scope_none_writes_no_detector(train_tiny) -> None:
    result = train_tiny(epochs=1, out_of_scope="none")

    predictor = Predictor.load(result.output_dir, device="cpu")
    [prediction] = predictor.predict(["where is my order 1"])

    assert classifier_json(result.output_dir)["out_of_scope"] == {}
    assert not (result.output_dir / OUT_OF_SCOPE_FILE).exists()
    assert "temperature" in result.info.calibration
    assert predictor.detector is None
    assert (prediction.unknown_score, prediction.unknown) == (None, False)
    assert "out_of_scope_rate" not in result.results["validation"]


def test_other_detector_and_no_calibration(train_tiny) -> None:
    from safetensors.numpy import load_file

    result = train_tiny(epochs=1, out_of_scope="mahalanobis", calibrate=False)

    tensors = load_file(str(result.output_dir / OUT_OF_SCOPE_FILE))
    predictor = Predictor.load(result.output_dir, device="cpu")

    assert result.info.calibration == {}
    assert predictor.temperature == 1.0
    assert result.info.out_of_scope["method"] == "mahalanobis"
    assert set(tensors) == {"means", "precision"}
    assert tensors["means"].shape == (3, 32)
    assert 0.0 <= result.results["validation"]["out_of_scope_rate"] <= 1.0
    assert type(predictor.predict(["hello"])[0].unknown_score) is float


def test_without_validation_nothing_is_calibrated_nor_detected(train_tiny, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="training.trainer"):
        result = train_tiny(epochs=1, data_options={"validation_split": 0.0})

    info = classifier_json(result.output_dir)
    predictor = Predictor.load(result.output_dir, device="cpu")

    assert info["calibration"] == {} and info["out_of_scope"] == {}
    assert not (result.output_dir / OUT_OF_SCOPE_FILE).exists()
    assert predictor.temperature == 1.0 and predictor.detector is None
    assert "no validation data: the out-of-scope detector is not fitted" in caplog.text


# -- sentiment intensity --------------------------------------------------------


def test_intensity_run_writes_the_head_and_its_isotonic_map(intensity_run: TrainResult
                                                           ) -> None:
    knots = classifier_json(intensity_run.output_dir)["calibration"]["intensity"]

    assert (intensity_run.output_dir / INTENSITY_HEAD_FILE).is_file()
    assert len(knots["xs"]) == len(knots["ys"]) >= 1
    assert knots["xs"] == sorted(knots["xs"])
    assert knots["ys"] == sorted(knots["ys"])
    assert all(0.0 <= y <= 1.0 for y in knots["ys"])
    validation = intensity_run.trainer.validation_set  # type: ignore[attr-defined]
    with_target = [t for t in validation.texts if t in intensity_run.trainer.intensities]
    assert knots["examples"] == len(with_target) > 0
    assert intensity_run.info.out_of_scope == {}  # detectors are for intents


def test_intensity_predictions_are_levels_from_zero_to_one(intensity_run: TrainResult
                                                          ) -> None:
    predictor = Predictor.load(intensity_run.output_dir, device="cpu")

    predictions = predictor.predict(SENTIMENT_TEXTS + ["", "x" * 400])

    assert all(type(p.intensity) is float and 0.0 <= p.intensity <= 1.0 for p in predictions)
    by_text = dict(zip(SENTIMENT_TEXTS, predictions))
    strong = np.mean([by_text[t].intensity for t in SENTIMENT_TEXTS[:3]])
    neutral = np.mean([by_text[t].intensity for t in SENTIMENT_TEXTS[3:6]])
    assert strong > neutral


def test_intensity_run_without_the_column_has_no_intensity(train_tiny, tmp_path: Path) -> None:
    rows, header = sentiment_rows(with_intensity=False)
    data = write_rows(tmp_path / "plain.csv", rows, header)

    result = train_tiny(data, task="sentiment", epochs=1,
                        data_options={"intensity_column": "intensity"})
    [prediction] = Predictor.load(result.output_dir, device="cpu").predict(["awful 1"])

    assert not (result.output_dir / INTENSITY_HEAD_FILE).exists()
    assert "intensity" not in result.info.calibration
    assert prediction.intensity is None


# -- float16 artifacts ----------------------------------------------------------


def test_half_precision_artifact_is_float16_and_predicts_like_float32(train_tiny) -> None:
    from safetensors import safe_open

    result = train_tiny(half_precision=True)
    trainer = result.trainer
    in_memory = Predictor(trainer.model, trainer.tokenizer, trainer.info, torch.device("cpu"),
                          detector=trainer.detector)
    texts = ["where is my order 4321", "refund please", "hello", "no idea at all", ""]

    with safe_open(str(result.output_dir / "model.safetensors"), "np") as weights:
        dtypes = {weights.get_tensor(name).dtype for name in weights.keys()}
    loaded = Predictor.load(result.output_dir, device="cpu")

    assert dtypes == {np.dtype("float16")}
    assert all(p.dtype == torch.float32 for p in loaded.model.parameters())
    assert np.allclose(loaded.predict_proba(texts).numpy(),
                       in_memory.predict_proba(texts).numpy(), atol=1e-2)
    assert [p.label for p in loaded.predict(texts)] == [p.label for p in
                                                        in_memory.predict(texts)]
    assert (result.output_dir / "model.safetensors").stat().st_size < 0.6 * sum(
        p.numel() * 4 for p in trainer.model.encoder.parameters())


def test_float32_is_the_default_precision(tiny_artifact: Path) -> None:
    from safetensors import safe_open

    with safe_open(str(tiny_artifact / "model.safetensors"), "np") as weights:
        dtypes = {weights.get_tensor(name).dtype for name in weights.keys()}

    assert dtypes == {np.dtype("float32")}


# -- typo augmentation ----------------------------------------------------------


@pytest.fixture
def tokenized(tiny_checkpoint: Path):
    """Factory: a ``TokenizedDataset`` of a few texts on the tiny tokenizer."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    dataset = LabelledTexts(("where is my order 48213", "refund please", "hi"),
                            ("order_status", "refund", "greet"))
    label_ids = {"greet": 0, "order_status": 1, "refund": 2}

    def build(**options) -> tuple[TokenizedDataset, list[list[int]]]:
        clean = [tokenizer(text, truncation=True, max_length=32)["input_ids"]
                 for text in dataset.texts]
        return TokenizedDataset(dataset, tokenizer, label_ids, 32, **options), clean

    return build


def test_typo_rate_one_serves_perturbed_input_ids(tokenized) -> None:
    dataset, clean = tokenized(typo_rate=1.0, seed=0)

    draws = [dataset[0] for _ in range(20)]

    assert all(draw["input_ids"] != clean[0] for draw in draws)
    assert len({tuple(draw["input_ids"]) for draw in draws}) > 1  # fresh typos each time
    assert all(draw["labels"] == 1 for draw in draws)
    assert all(len(draw["attention_mask"]) == len(draw["input_ids"]) for draw in draws)
    # The order number is the last word: its pieces (and [SEP]) are intact.
    assert all(draw["input_ids"][-6:] == clean[0][-6:] for draw in draws)
    assert dataset[2]["input_ids"] == clean[2]  # "hi" has no word to misspell


def test_typo_rate_zero_serves_the_clean_input_ids(tokenized) -> None:
    dataset, clean = tokenized(typo_rate=0.0)

    assert [dataset[i]["input_ids"] for i in range(3)] == clean
    assert dataset[0] is dataset.features[0]


def test_typos_keep_the_intensity_target(tokenized) -> None:
    dataset, _ = tokenized(typo_rate=1.0, intensities={"refund please": 0.5})

    assert dataset[1]["intensity"] == 0.5
    assert math.isnan(dataset[0]["intensity"])


def test_training_with_typo_augmentation_runs(train_tiny) -> None:
    result = train_tiny(epochs=2, typo_augmentation=1.0)

    assert classifier_json(result.output_dir)["training_arguments"]["typo_augmentation"] == 1.0
    assert result.results["validation"]["examples"] > 0


# -- ONNX: the intensity output ---------------------------------------------------


def test_onnx_export_of_an_intensity_model_has_three_outputs(intensity_exported: Path) -> None:
    onnx = Predictor.load(intensity_exported, backend="onnx", num_threads=1)

    assert [item.name for item in onnx.session.get_outputs()] == ["logits", "features",
                                                                  "intensity"]


def test_onnx_and_torch_agree_on_labels_and_intensity(intensity_exported: Path) -> None:
    texts = SENTIMENT_TEXTS + ["", "😡😡 order!!!", "x" * 400]
    torch_predictions = Predictor.load(intensity_exported, backend="torch").predict(texts)
    onnx_predictions = Predictor.load(intensity_exported, backend="onnx",
                                      num_threads=1).predict(texts)

    assert [p.label for p in onnx_predictions] == [p.label for p in torch_predictions]
    for onnx_prediction, torch_prediction in zip(onnx_predictions, torch_predictions):
        assert onnx_prediction.intensity == pytest.approx(torch_prediction.intensity, abs=0.05)
