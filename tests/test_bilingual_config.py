"""config.en.yml is config.yml with Chinese and its encoder's recipe taken out, and nothing else.

Two configs would otherwise drift apart: every threshold keeps one home (config.yml).
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def component(config: dict, name: str) -> dict:
    [found] = [entry for entry in config["pipeline"] if entry["name"].endswith(name)]
    return found


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text(encoding="utf-8"))


def sentiment_analyzers(config: dict) -> list[dict]:
    return [entry for entry in config["pipeline"] if entry["name"].endswith("SentimentAnalyzer")]


def test_the_english_config_differs_only_in_language_and_encoder() -> None:
    expected = copy.deepcopy(load("config.yml"))
    component(expected, "LanguageIdentifier")["languages"] = ["en"]
    intent = component(expected, "TransformerIntentClassifier")
    del intent["base_model"], intent["freeze_word_embeddings"], intent["batch_size"]
    expected["pipeline"] = [entry for entry in expected["pipeline"]
                            if entry.get("languages") != ["zh"]]  # the Chinese sentiment

    assert load("config.en.yml") == expected


def test_each_language_has_one_sentiment_model() -> None:
    served = [analyzer["languages"] for analyzer in sentiment_analyzers(load("config.yml"))]

    assert served == [["en"], ["zh"]]
    assert [a["languages"] for a in sentiment_analyzers(load("config.en.yml"))] == [["en"]]


def test_the_default_config_serves_chinese_on_the_multilingual_encoder() -> None:
    config = load("config.yml")

    assert component(config, "LanguageIdentifier")["languages"] == ["en", "zh"]
    assert component(config, "TransformerIntentClassifier")["base_model"] == (
        "assets/encoders/multilingual-e5-small")
