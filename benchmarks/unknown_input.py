"""The assistant's NLU on messages it was never trained on, through Rasa itself.

Loads the trained assistant (``models/assistant.tar.gz``; ``make run`` or
``rasa train --fixed-model-name assistant`` writes it) with Rasa's ``Agent`` and
parses, exactly as ``/model/parse`` does:

- ``benchmarks/data/assistant_nlu_test.yml``: 330 held-out customer messages
  (written independently of ``data/nlu.yml``): intent accuracy, and how many
  were turned away (``nlu_fallback`` or ``out_of_scope`` where a known intent
  was meant);
- ``benchmarks/data/unknown_input_test.csv``: messages in 21 other languages
  (routed to the other-language answer?), keyboard mash (reaching the
  fallback?) and short English chat ("ok", "48213": not turned away?).

::

    .venv/bin/python benchmarks/unknown_input.py

Writes ``benchmarks/results/assistant_understanding.json`` and a PNG.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import logging
import os
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")

from training.data import load_rasa_nlu  # noqa: E402

NLU_TEST = ROOT / "benchmarks" / "data" / "assistant_nlu_test.yml"
UNKNOWN_TEST = ROOT / "benchmarks" / "data" / "unknown_input_test.csv"
TURNED_AWAY = {"nlu_fallback", "out_of_scope"}


async def parse_all(model: Path, texts: list[str]) -> list[dict]:
    from rasa.core.agent import Agent

    agent = Agent.load(str(model))
    return [await agent.parse_message(text) for text in texts]


def plot(record: dict, path: Path) -> None:
    from _plotting import pyplot, save  # noqa: PLC0415 (benchmarks/ sibling)

    plt = pyplot()
    heldout = record["heldout_intents"]
    unknown = record["unknown_input"]
    names = ["held-out intents\naccuracy", "other language\nrouted", "keyboard mash\nto fallback",
             "short English\nnot turned away"]
    values = [heldout["accuracy"], unknown["other_language"]["routed_other_language"],
              unknown["gibberish"]["to_fallback"], 1 - unknown["english_short"]["turned_away"]]
    figure, axes = plt.subplots(figsize=(8, 4))
    axes.bar(range(len(values)), values, color=["#36c", "#a6c", "#e90", "#4a4"])
    for i, value in enumerate(values):
        axes.text(i, value + 0.01, f"{value:.3f}", ha="center")
    axes.set_xticks(range(len(values)), names)
    axes.set_ylim(0, 1.1)
    axes.set_title("the served assistant on messages it never saw")
    save(figure, path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "assistant.tar.gz")
    parser.add_argument("--name", default="assistant_understanding")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    options = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    heldout = load_rasa_nlu(NLU_TEST)
    with UNKNOWN_TEST.open(newline="", encoding="utf-8") as handle:
        unknown_rows = list(csv.DictReader(handle))
    texts = list(heldout.texts) + [row["text"] for row in unknown_rows]
    parsed = asyncio.run(parse_all(options.model, texts))
    intents = [result["intent"]["name"] for result in parsed]
    reasons = [(result.get("unknown_input") or {}).get("reason", "") for result in parsed]

    n = len(heldout)
    truth, predicted = list(heldout.labels), intents[:n]
    misses = [{"text": t, "intent": y, "predicted": p, "reason": r}
              for t, y, p, r in zip(heldout.texts, truth, predicted, reasons[:n]) if y != p]
    per_intent = {}
    for label in sorted(set(truth)):
        rows = [p == label for y, p in zip(truth, predicted) if y == label]
        per_intent[label] = round(sum(rows) / len(rows), 4)
    known = [(y, p) for y, p in zip(truth, predicted) if y not in TURNED_AWAY]
    trained = {text.strip().lower() for text in load_rasa_nlu(ROOT / "data" / "nlu.yml").texts}
    unseen = [(y, p) for t, y, p in zip(heldout.texts, truth, predicted)
              if t.strip().lower() not in trained]
    record = {
        "benchmark": "the served assistant's NLU on held-out and unknown input (Rasa Agent)",
        "command": "python benchmarks/unknown_input.py " + " ".join(sys.argv[1:]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": str(options.model),
        "heldout_intents": {
            "examples": n,
            "accuracy": round(sum(y == p for y, p in zip(truth, predicted)) / n, 4),
            "unseen_examples": len(unseen),
            "accuracy_unseen": round(sum(y == p for y, p in unseen) / len(unseen), 4),
            "known_turned_away": round(sum(p in TURNED_AWAY for _, p in known) / len(known), 4),
            "known_wrong_intent": round(sum(p != y and p not in TURNED_AWAY for y, p in known)
                                        / len(known), 4),
            "per_intent_accuracy": per_intent,
            "misses": misses,
        },
        "unknown_input": {},
    }
    rows = list(zip(unknown_rows, intents[n:], reasons[n:], parsed[n:]))
    for kind in ("other_language", "gibberish", "english_short"):
        part = [(row, intent, reason, result) for row, intent, reason, result in rows
                if row["kind"] == kind]
        record["unknown_input"][kind] = {
            "examples": len(part),
            "routed_other_language": round(sum(r == "other_language" for _, _, r, _ in part)
                                           / len(part), 4),
            "to_fallback": round(sum(i == "nlu_fallback" for _, i, _, _ in part) / len(part), 4),
            "turned_away": round(sum(i in TURNED_AWAY for _, i, _, _ in part) / len(part), 4),
            "intents": dict(Counter(i for _, i, _, _ in part).most_common()),
            "not_routed": [row["text"] for row, _, r, _ in part
                           if kind == "other_language" and r != "other_language"],
            "turned_away_texts": [row["text"] for row, i, _, _ in part
                                  if kind == "english_short" and i in TURNED_AWAY],
            "not_to_fallback": [(row["text"], i) for row, i, _, _ in part
                                if kind == "gibberish" and i != "nlu_fallback"],
        }
    options.results.mkdir(parents=True, exist_ok=True)
    (options.results / f"{options.name}.json").write_text(
        json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    plot(record, options.results / f"{options.name}.png")
    summary = {"heldout_accuracy": record["heldout_intents"]["accuracy"],
               "heldout_accuracy_unseen": record["heldout_intents"]["accuracy_unseen"],
               "known_turned_away": record["heldout_intents"]["known_turned_away"]}
    summary |= {kind: {k: v for k, v in values.items()
                       if k in ("routed_other_language", "to_fallback", "turned_away")}
                for kind, values in record["unknown_input"].items()}
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
