"""A conversation as the agent reads it, and the sentiment sparkline (console/transcript.py)."""

from __future__ import annotations

from console.transcript import lines, sparkline


def test_only_readable_lines_are_kept() -> None:
    events = [{"event": "action", "name": "action_listen"},
              {"event": "slot", "name": "handoff", "value": True},
              {"event": "bot", "text": "", "timestamp": 1},
              {"event": "agent", "text": "from another tool", "timestamp": 2},
              {"event": "user", "text": "hi", "timestamp": 3,
               "parse_data": {"intent": {"name": "greet", "confidence": True}}}]

    result = lines(events)

    assert [(line.kind, line.text) for line in result] == [("agent", "from another tool"),
                                                           ("customer", "hi")]
    assert result[1].confidence is None  # a bool is not a confidence


def test_a_sparkline_holds_numbers_only_and_marks_the_last_value() -> None:
    svg = sparkline([0.1, 0.4, 0.95])

    assert svg.startswith('<svg class="sparkline"') and svg.count("<polyline") == 1
    assert "last 0.95" in svg and "#c0392b" in svg  # red: the last turn is negative
    assert "#2e86c1" in sparkline([0.9, 0.1])


def test_one_value_is_a_visible_flat_line() -> None:
    assert 'points="0.0,2.0 120.0,2.0"' in sparkline([1.0])


def test_values_are_clamped_and_an_empty_series_is_flat() -> None:
    clamped = sparkline([-3, 7], width=100, height=24)

    assert "0.0,22.0" in clamped and "100.0,2.0" in clamped
    assert "<line" in sparkline([]) and "no sentiment yet" in sparkline([])
