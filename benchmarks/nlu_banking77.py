"""BANKING77 intent accuracy through Rasa: our classifier versus Rasa's DIET.

One command::

    .venv/bin/python benchmarks/nlu_banking77.py            # both pipelines
    .venv/bin/python benchmarks/nlu_banking77.py --pipelines diet

Both pipelines are trained with ``rasa train nlu`` and evaluated with
``rasa test nlu`` on BANKING77's official train/test split, converted to Rasa
NLU YAML in a scratch folder (the dataset is never copied into the repo).

- ``diet``: the NLU part of Rasa 3.6's default pipeline, the one ``rasa init``
  trains with (WhitespaceTokenizer, RegexFeaturizer, LexicalSyntacticFeaturizer,
  two CountVectorsFeaturizers, DIETClassifier at 100 epochs, EntitySynonymMapper).
- ``ours``: WhitespaceTokenizer plus ``nlu_components.TransformerIntentClassifier``
  fine-tuning the packaged all-MiniLM-L6-v2 (and ``SentimentAnalyzer``, which does
  not touch intents, so that ``latency.py`` can serve the same model).

FallbackClassifier is left out of both: it would turn low-confidence answers
into ``nlu_fallback`` and measure a threshold instead of the classifier.
Writes ``benchmarks/results/nlu_banking77_<pipeline>.json`` per pipeline and keeps
each trained model as ``models/benchmarks/nlu_banking77_<pipeline>.tar.gz``.
DIET at 100 epochs takes hours on 2 cores; it is not part of CI.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PIPELINES: dict[str, str] = {
    "diet": """\
language: en
assistant_id: benchmark-diet
pipeline:
  - name: WhitespaceTokenizer
  - name: RegexFeaturizer
  - name: LexicalSyntacticFeaturizer
  - name: CountVectorsFeaturizer
  - name: CountVectorsFeaturizer
    analyzer: char_wb
    min_ngram: 1
    max_ngram: 4
  - name: DIETClassifier
    epochs: 100
    constrain_similarities: true
  - name: EntitySynonymMapper
policies: []
""",
    "ours": """\
language: en
assistant_id: benchmark-ours
pipeline:
  - name: WhitespaceTokenizer
  - name: nlu_components.TransformerIntentClassifier
    epochs: {epochs}
    learning_rate: {learning_rate}
    batch_size: {batch_size}
    label_smoothing: {label_smoothing}
    max_length: 64
    backend: {backend}
  # Not used for intents; here so that the latency benchmark serves this same
  # model with intent plus sentiment, as the assistant does.
  - name: nlu_components.SentimentAnalyzer
    model_path: {sentiment_model}
policies: []
""",
}


def write_rasa_nlu(csv_path: Path, out: Path) -> int:
    """Convert a BANKING77 CSV (text, category) into Rasa NLU YAML.

    Returns:
        The number of examples written.
    """
    by_intent: dict[str, list[str]] = {}
    with csv_path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            text = " ".join(row["text"].split())
            # Rasa reads [x](y) as entity markup; BANKING77 has no entities.
            text = text.replace("[", "(").replace("]", ")")
            if text:
                by_intent.setdefault(row["category"], []).append(text)
    lines = ['version: "3.1"', "nlu:"]
    count = 0
    for intent, texts in sorted(by_intent.items()):
        lines += [f"- intent: {intent}", "  examples: |"]
        for text in dict.fromkeys(texts):  # de-duplicate, keep order
            lines.append(f"    - {text}")
            count += 1
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return count


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Run a command, streaming its output; returns its wall time in seconds."""
    print("$", " ".join(cmd), flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True)
    return time.perf_counter() - start


def bench(name: str, options: argparse.Namespace, work: Path) -> dict:
    rasa = str(Path(sys.executable).with_name("rasa"))
    env = dict(os.environ, RASA_TELEMETRY_ENABLED="false", HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    project = work / name
    project.mkdir()
    n_train = write_rasa_nlu(options.datasets / "banking77" / "train.csv", project / "train.yml")
    n_test = write_rasa_nlu(options.datasets / "banking77" / "test.csv", project / "test.yml")
    config = PIPELINES[name].format(epochs=options.epochs, learning_rate=options.learning_rate,
                                    batch_size=options.batch_size,
                                    label_smoothing=options.label_smoothing,
                                    backend=options.backend,
                                    sentiment_model=ROOT / "models" / "sentiment")
    (project / "config.yml").write_text(config, encoding="utf-8")
    train_s = run([rasa, "train", "nlu", "--config", "config.yml", "--nlu", "train.yml",
                   "--out", "models", "--fixed-model-name", name], project, env)
    test_s = run([rasa, "test", "nlu", "--nlu", "test.yml", "--model", f"models/{name}.tar.gz",
                  "--out", "report", "--no-plot"], project, env)
    report = json.loads((project / "report" / "intent_report.json").read_text())
    kept = ROOT / "models" / "benchmarks" / f"nlu_banking77_{name}.tar.gz"
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(project / "models" / f"{name}.tar.gz", kept)
    result = {
        "benchmark": "banking77 intent accuracy through rasa train nlu / rasa test nlu",
        "pipeline": name,
        "config": config,
        "train_examples": n_train,
        "test_examples": n_test,
        "accuracy": round(report["accuracy"], 4),
        "macro_f1": round(report["macro avg"]["f1-score"], 4),
        "weighted_f1": round(report["weighted avg"]["f1-score"], 4),
        "train_wall_s": round(train_s, 1),
        "test_wall_s": round(test_s, 1),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
    }
    out = options.results / f"nlu_banking77_{name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("pipeline", "accuracy", "macro_f1", "train_wall_s")}),
          flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipelines", default="ours,diet",
                        help="comma-separated subset of: " + ", ".join(PIPELINES))
    parser.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--epochs", type=float, default=6, help="ours: epochs (default 6)")
    parser.add_argument("--learning-rate", type=float, default=2e-4, help="ours: peak rate")
    parser.add_argument("--batch-size", type=int, default=32, help="ours: batch size")
    parser.add_argument("--label-smoothing", type=float, default=0.1,
                        help="ours: label smoothing (default 0.1)")
    parser.add_argument("--backend", default="torch", choices=("torch", "onnx", "auto"),
                        help="ours: serving backend while testing (default torch; "
                             "benchmarks/onnx_accuracy.py measures what int8 ONNX changes)")
    options = parser.parse_args()
    names = [n.strip() for n in options.pipelines.split(",") if n.strip()]
    unknown = sorted(set(names) - set(PIPELINES))
    if unknown:
        parser.error(f"unknown pipeline(s) {unknown}; choose from {sorted(PIPELINES)}")
    options.results.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="nlu_banking77_") as tmp:
        for name in names:
            bench(name, options, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
