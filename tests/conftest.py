"""Shared fixtures: tiny random BERT checkpoints and synthetic data (no network)."""

from __future__ import annotations

import csv
import json
import string
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"

# Three labels with distinct keywords, so that a tiny model can learn them.
SYNTHETIC_TEMPLATES = {
    "order_status": ["where is my order {n}", "track order {n} please", "status of order {n}",
                     "has order {n} shipped", "order {n} where is it"],
    "refund": ["i want a refund for {n}", "refund my money {n}", "refund please {n}",
               "when is my refund {n} coming", "money back refund {n}"],
    "greet": ["hello there {n}", "hi {n}", "good morning {n}", "hey hello {n}",
              "hello hi {n}"],
}


SENTIMENT_TEMPLATES = {
    "negative": ["this is terrible {n}", "awful service {n}", "i am angry {n}",
                 "worst shop ever {n}", "terrible and awful {n}"],
    "neutral": ["where is my order {n}", "what are your hours {n}", "order {n} status",
                "change my address {n}", "i have a question {n}"],
    "positive": ["great thanks {n}", "i love it {n}", "thank you so much {n}",
                 "great service {n}", "love this shop {n}"],
}

# Big steps so that a 2-layer random BERT learns three keyword labels in seconds.
TINY_TRAINING = {"epochs": 8, "learning_rate": 3e-3, "batch_size": 8, "max_length": 32,
                 "warmup_ratio": 0.0, "early_stopping_patience": 0, "device": "cpu"}


def synthetic_pairs(per_label: int = 12,
                    templates: dict[str, list[str]] | None = None) -> list[tuple[str, str]]:
    """Deterministic ``(text, label)`` pairs, ``per_label`` of each label."""
    pairs = []
    for label, templates in (templates or SYNTHETIC_TEMPLATES).items():
        for i in range(per_label):
            pairs.append((templates[i % len(templates)].format(n=1000 + i * 7), label))
    return pairs


def _vocabulary() -> list[str]:
    words = sorted({w for table in (SYNTHETIC_TEMPLATES, SENTIMENT_TEMPLATES)
                    for ts in table.values() for t in ts for w in t.replace("{n}", "").split()})
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    tokens = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars
              + [f"##{c}" for c in string.ascii_lowercase + string.digits] + words)
    return list(dict.fromkeys(tokens))  # one-letter words are characters too


def save_tiny_bert(directory: Path, *, seed: int = 0) -> Path:
    """Writes a randomly initialised 2-layer BERT and its WordPiece tokenizer."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    vocab = _vocabulary()
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=128)
    BertModel(config).save_pretrained(directory)
    BertTokenizer(vocab={token: i for i, token in enumerate(vocab)}).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT checkpoint directory, built once per session."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., Path]:
    """Factory: writes rows to a CSV (or TSV) file under ``tmp_path``."""

    def write(rows: Sequence[tuple[str, str]], name: str = "data.csv",
              header: Sequence[str] = ("text", "label"), delimiter: str = ",") -> Path:
        path = tmp_path / name
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, delimiter=delimiter)
            writer.writerow(header)
            writer.writerows(rows)
        return path

    return write


@pytest.fixture
def write_jsonl(tmp_path: Path) -> Callable[..., Path]:
    """Factory: writes dicts to a JSONL file under ``tmp_path``."""

    def write(records: Sequence[dict], name: str = "data.jsonl") -> Path:
        path = tmp_path / name
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        return path

    return write


def _train_tiny_artifact(root: Path, checkpoint: Path, task: str,
                         templates: dict[str, list[str]]) -> Path:
    from training.arguments import DataArguments, TrainArguments
    from training.trainer import ClassifierTrainer

    data = root / "train.csv"
    with data.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(synthetic_pairs(templates=templates))
    options = TINY_TRAINING | {"output_dir": root / "artifact", "base_model": str(checkpoint),
                               "task": task}
    ClassifierTrainer(DataArguments(path=data, validation_split=0.2),
                      TrainArguments(**options)).run()
    return root / "artifact"


@pytest.fixture(scope="session")
def tiny_artifact(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An intent artifact (greet, order_status, refund) trained once; read-only."""
    return _train_tiny_artifact(tmp_path_factory.mktemp("tiny-intent"), tiny_checkpoint,
                                "intent", SYNTHETIC_TEMPLATES)


@pytest.fixture(scope="session")
def tiny_sentiment_artifact(tiny_checkpoint: Path,
                            tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sentiment artifact (negative, neutral, positive) trained once; read-only."""
    return _train_tiny_artifact(tmp_path_factory.mktemp("tiny-sentiment"), tiny_checkpoint,
                                "sentiment", SENTIMENT_TEMPLATES)


# The served assistant: trained once per test session, shared by every
# end-to-end test (tests/test_assistant.py, the browser test, the action flows).
@pytest.fixture(scope="session")
def assistant_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`make run`'s training step: `rasa train` with the shipped sentiment model."""
    from tests.served import train_assistant

    return train_assistant(tmp_path_factory)


@pytest.fixture(scope="session")
def served(assistant_model: Path, tmp_path_factory: pytest.TempPathFactory):
    """`rasa run --enable-api` and the action server on free localhost ports."""
    from tests.served import serve_assistant

    yield from serve_assistant(assistant_model, tmp_path_factory)


@pytest.fixture(scope="session")
def bilingual_model(assistant_model: Path) -> Path:
    """The served assistant, which is bilingual (config.yml): the Chinese tests' name for
    ``assistant_model``."""
    return assistant_model
