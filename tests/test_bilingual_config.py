"""config.bilingual.yml is config.yml with two documented changes, and nothing else.

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


def test_the_bilingual_config_differs_only_in_language_and_encoder() -> None:
    english = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    bilingual = yaml.safe_load((ROOT / "config.bilingual.yml").read_text(encoding="utf-8"))

    expected = copy.deepcopy(english)
    component(expected, "LanguageIdentifier")["languages"] = ["en", "zh"]
    component(expected, "TransformerIntentClassifier")["base_model"] = (
        "assets/encoders/multilingual-e5-small")
    assert bilingual == expected


def test_sentiment_stays_english_in_both() -> None:
    for name in ("config.yml", "config.bilingual.yml"):
        config = yaml.safe_load((ROOT / name).read_text(encoding="utf-8"))
        assert component(config, "SentimentAnalyzer")["languages"] == ["en"], name
