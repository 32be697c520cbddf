from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from training.predict import Prediction, Predictor


@pytest.fixture(scope="module")
def predictor(tiny_artifact: Path) -> Predictor:
    return Predictor.load(tiny_artifact, device="cpu")


def test_predictions_are_plain_sorted_and_complete(predictor: Predictor) -> None:
    [prediction] = predictor.predict(["where is my order 1234"])

    assert isinstance(prediction, Prediction)
    assert type(prediction.confidence) is float
    assert all(type(label) is str and type(score) is float for label, score in prediction.ranking)
    scores = [score for _, score in prediction.ranking]
    assert scores == sorted(scores, reverse=True)
    assert sum(scores) == pytest.approx(1.0, abs=1e-5)
    assert {label for label, _ in prediction.ranking} == set(predictor.labels)
    assert prediction.ranking[0] == (prediction.label, prediction.confidence)
    assert prediction.scores()[prediction.label] == prediction.confidence


def test_the_tiny_model_learned_its_keywords(predictor: Predictor) -> None:
    labels = [p.label for p in predictor.predict(
        ["where is my order 5555", "refund my money please", "hello hi"])]

    assert labels == ["order_status", "refund", "greet"]


@pytest.mark.parametrize(
    "text",
    ["", "   \n\t ", "😡😡 order!!! 📦", "我的订单在哪里", "أين طلبي", "x" * 50_000,
     "word " * 20_000, "\x00\x01 control"],
)
def test_awkward_input_is_classified_not_raised(predictor: Predictor, text: str) -> None:
    [prediction] = predictor.predict([text])

    assert prediction.label in predictor.labels
    assert 0.0 <= prediction.confidence <= 1.0


def test_batching_and_order_do_not_change_results(predictor: Predictor) -> None:
    texts = ["hello", "where is my order 1001 now please", "refund", "hi there", ""] * 3

    one_by_one = [predictor.predict([t])[0] for t in texts]
    batched = predictor.predict(texts, batch_size=4)

    for single, batch in zip(one_by_one, batched):
        assert single.label == batch.label
        assert single.confidence == pytest.approx(batch.confidence, abs=1e-5)


def test_safe_from_several_threads(predictor: Predictor) -> None:
    texts = [f"where is my order {i}" if i % 2 else f"hello {i}" for i in range(40)]
    expected = [p.label for p in predictor.predict(texts)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda t: predictor.predict([t])[0].label, texts))

    assert results == expected


def test_empty_batch(predictor: Predictor) -> None:
    assert predictor.predict([]) == []


def test_threads_are_set_by_one_process_wide_function(tiny_artifact: Path, monkeypatch) -> None:
    import torch

    from training import predict

    configure_threads = predict.configure_threads
    calls = []
    monkeypatch.setattr(predict, "configure_threads", calls.append)

    predict.Predictor.load(tiny_artifact, device="cpu", num_threads=3)

    assert calls == [3]
    before = torch.get_num_threads()
    configure_threads(None)  # None keeps the library's choice
    assert torch.get_num_threads() == before
