"""The shared escalation rules: reasons, priorities, and their one source in config.yml."""

from __future__ import annotations

from pathlib import Path

import pytest

from cs_core.errors import InvalidRule
from cs_core.escalation import (
    PERSISTENTLY_NEGATIVE,
    STRONG_INTENSITY,
    STRONGLY_NEGATIVE,
    EscalationRules,
    escalation_reason,
    priority,
    rules_from_config,
)

RULES = EscalationRules(strong_intensity=0.7, negative_score=0.5, negative_turns=3)
N, U, P = "negative", "neutral", "positive"


def turns(*moods: tuple) -> list[dict]:
    """Turns from (label, negative score[, intensity])."""
    return [{"label": mood[0], "negative": mood[1],
             "intensity": mood[2] if len(mood) > 2 else None, "intent": "inform", "text": ""}
            for mood in moods]


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        ([], None),
        ([(U, 0.1)], None),
        ([(N, 0.8)], None),
        ([(N, 0.98)], None),  # no intensity (an older model): only the several-turns rule
        ([(N, 0.9, 0.8)], STRONGLY_NEGATIVE),
        ([(N, 0.999, 0.4)], None),  # surely negative, but mildly: no human yet
        ([(U, 0.1), (U, 0.1), (N, 0.97, 0.7)], STRONGLY_NEGATIVE),
        ([(N, 0.98, 0.9), (U, 0.1)], None),  # it was, but the customer calmed down
        ([(P, 0.0, 0.95)], None),  # ecstatic is intense too, but not negative
        ([(N, 0.8), (N, 0.7)], None),
        ([(N, 0.8), (N, 0.7), (N, 0.9)], PERSISTENTLY_NEGATIVE),
        ([(P, 0.0), (N, 0.8), (N, 0.7), (N, 0.9)], PERSISTENTLY_NEGATIVE),
        ([(N, 0.8), (U, 0.3), (N, 0.9), (N, 0.9)], None),
        ([(N, 0.8), (N, 0.4), (N, 0.9)], None),  # labelled negative, but barely
        ([(N, 0.8), (None, 0.0), (N, 0.9)], None),  # a turn without sentiment
        ([(U, 0.99)], None),  # a high score without the label is not negative
    ],
)
def test_escalation_rules(history, expected) -> None:
    assert escalation_reason(turns(*history), RULES) == expected


@pytest.mark.parametrize("turns_needed", [1, 2, 5])
def test_negative_turns_setting(turns_needed: int) -> None:
    rules = EscalationRules(strong_intensity=1.0, negative_turns=turns_needed)
    history = turns(*[(N, 0.8)] * turns_needed)

    assert escalation_reason(history[:-1], rules) is None
    assert escalation_reason(history, rules) == PERSISTENTLY_NEGATIVE


@pytest.mark.parametrize(
    "kwargs", [{"strong_intensity": 0}, {"strong_intensity": 1.5}, {"negative_score": "high"},
               {"negative_turns": 0}, {"negative_turns": 2.5}, {"negative_turns": True}])
def test_bad_rules_are_refused(kwargs) -> None:
    with pytest.raises(InvalidRule):
        EscalationRules(**kwargs)


@pytest.mark.parametrize(
    ("reason", "last", "expected"),
    [(STRONGLY_NEGATIVE, (N, 0.99), "urgent"), (PERSISTENTLY_NEGATIVE, (N, 0.8), "high"),
     ("requested", (N, 0.8), "high"), ("requested", (U, 0.1), "normal")])
def test_priority(reason, last, expected) -> None:
    assert priority(reason, turns(last), RULES) == expected




def write_config(tmp_path: Path, policy_options: str) -> Path:
    path = tmp_path / "config.yml"
    path.write_text("recipe: default.v1\nlanguage: en\npolicies:\n"
                    "  - name: RulePolicy\n" + policy_options, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["nlu_components.SentimentEscalationPolicy",
                                  "nlu_components.policies.SentimentEscalationPolicy"])
def test_rules_are_read_from_the_policy_options(tmp_path: Path, name: str) -> None:
    path = write_config(tmp_path, f"  - name: {name}\n    strong_intensity: 0.6\n"
                                  "    negative_score: 7.5e-1\n    negative_turns: 2\n")

    assert rules_from_config(path) == EscalationRules(0.6, 0.75, 2)


def test_options_left_out_and_an_absent_policy_keep_the_defaults(tmp_path: Path) -> None:
    partial = write_config(tmp_path, "  - name: nlu_components.SentimentEscalationPolicy\n"
                                     "    negative_turns: 4\n")
    assert rules_from_config(partial) == EscalationRules(negative_turns=4)
    assert rules_from_config(write_config(tmp_path, "")).strong_intensity == STRONG_INTENSITY


@pytest.mark.parametrize(("options", "key"), [("    strong_intensity: 2\n", "strong_intensity"),
                                              ("    negative_score: lots\n", "negative_score")])
def test_bad_values_in_the_config_name_their_key(tmp_path: Path, options: str, key: str) -> None:
    path = write_config(tmp_path, "  - name: nlu_components.SentimentEscalationPolicy\n" + options)
    with pytest.raises(InvalidRule) as caught:
        rules_from_config(path)
    assert caught.value.key == key


def test_an_unreadable_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidRule, match="config"):
        rules_from_config(tmp_path / "missing.yml")
