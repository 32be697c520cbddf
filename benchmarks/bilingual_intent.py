"""Which encoder serves both languages: the assistant's intents in English and Chinese.

Fine-tunes the intent classifier on the assistant's own data (the English
``data/nlu.yml`` and the Chinese ``data/nlu_zh.yml``) with the recipe of ``config.yml``'s
TransformerIntentClassifier, once per encoder, and measures each on two frozen
held-out sets nobody trained on:

- Chinese: ``benchmarks/data/intent_zh_test.csv`` (198 messages, 21 intents);
- English: ``benchmarks/data/assistant_nlu_test.yml``.

Encoders: the packaged all-MiniLM-L6-v2 (English vocabulary), multilingual-e5-small
(``make multilingual-encoder``), and multilingual-e5-small with its word embeddings
frozen (``--freeze-word-embeddings``: 96M of its 118M weights are the 250,002-piece
embedding matrix, which AdamW otherwise updates at every step). Writes
``benchmarks/results/bilingual_intent.json`` and ``bilingual_intent.png``::

    .venv/bin/python benchmarks/bilingual_intent.py
    .venv/bin/python benchmarks/bilingual_intent.py --encoders minilm --epochs 2   # quick
    .venv/bin/python benchmarks/bilingual_intent.py --encoders e5 e5-frozen \
        --name bilingual_e5_frozen
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _plotting import pyplot, save  # noqa: E402

E5 = ROOT / "assets" / "encoders" / "multilingual-e5-small"
# name: (base model, None for the packaged MiniLM; extra `python -m training intent` options)
ENCODERS: dict[str, tuple[Path | None, list[str]]] = {
    "minilm": (None, []),
    "e5": (E5, []),
    "e5-frozen": (E5, ["--freeze-word-embeddings"]),
}
TESTS = {"zh": ROOT / "benchmarks" / "data" / "intent_zh_test.csv",
         "en": ROOT / "benchmarks" / "data" / "assistant_nlu_test.yml"}


def recipe(config: Path) -> dict:
    """The intent component's training options in ``config.yml`` (the assistant's recipe)."""
    pipeline = yaml.safe_load(config.read_text(encoding="utf-8"))["pipeline"]
    [component] = [c for c in pipeline if c["name"].endswith("TransformerIntentClassifier")]
    # The component's batch size when the config sets none (the CLI's default is 32).
    return {"epochs": component.get("epochs"), "learning_rate": component.get("learning_rate"),
            "batch_size": component.get("batch_size", 16),
            "validation_split": component.get("validation_split"),
            "typo_augmentation": component.get("typo_augmentation")}


def training_data() -> Path:
    """One folder with both languages' NLU files (the CLI reads one path)."""
    folder = ROOT / "models" / "benchmarks" / "bilingual_data"
    folder.mkdir(parents=True, exist_ok=True)
    for source in (ROOT / "data" / "nlu.yml", ROOT / "data" / "nlu_zh.yml"):
        target = folder / source.name
        target.unlink(missing_ok=True)
        target.symlink_to(source)
    return folder


def run(*args: str) -> None:
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                        "TOKENIZERS_PARALLELISM": "false"}
    subprocess.run([sys.executable, "-m", "training", *args], cwd=ROOT, env=env, check=True)


def evaluate(model: Path, test: Path, out: Path) -> dict:
    data = ["--data", str(test)]
    if test.suffix == ".csv":
        data += ["--text-column", "text", "--label-column", "intent"]
    run("evaluate", "--model", str(model), *data, "--output", str(out))
    report = json.loads((out / "results.json").read_text(encoding="utf-8"))["evaluation"]
    return {"accuracy": round(report["accuracy"], 4), "macro_f1": round(report["macro_f1"], 4),
            "examples": report.get("examples")}


def plot(record: dict, out: Path) -> None:
    plt = pyplot()
    names = list(record["encoders"])
    figure, axis = plt.subplots(figsize=(6, 3.2))
    width = 0.38
    for offset, language in ((-width / 2, "en"), (width / 2, "zh")):
        values = [record["encoders"][name][language]["accuracy"] * 100 for name in names]
        bars = axis.bar([i + offset for i in range(len(names))], values, width,
                        label={"en": "English held-out", "zh": "Chinese held-out"}[language])
        axis.bar_label(bars, fmt="%.1f", fontsize=8)
    axis.set_xticks(range(len(names)), names)
    axis.set_ylim(0, 105)
    axis.set_ylabel("intent accuracy (%)")
    axis.set_title("The assistant's intents, trained on en + zh data")
    axis.legend(loc="lower right", fontsize=8)
    save(figure, out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoders", nargs="+", choices=list(ENCODERS),
                        default=list(ENCODERS))
    parser.add_argument("--epochs", type=float, help="override the config's epochs")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--name", default="bilingual_intent")
    options = parser.parse_args()
    options_recipe = recipe(ROOT / "config.yml")
    if options.epochs:
        options_recipe["epochs"] = options.epochs
    record: dict = {"benchmark": "intent accuracy per language, per encoder",
                    "command": "python benchmarks/bilingual_intent.py " + " ".join(sys.argv[1:]),
                    "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "platform": platform.platform(), "cpu_count": os.cpu_count(),
                    "training_data": "data/nlu.yml (English) + data/nlu_zh.yml (Chinese)",
                    "recipe": options_recipe, "tests": {k: str(v.relative_to(ROOT))
                                                        for k, v in TESTS.items()},
                    "encoders": {}}
    for name in options.encoders:
        base, extra = ENCODERS[name]
        if base is not None and not (base / "config.json").is_file():
            parser.error(f"{base} is missing: run make multilingual-encoder")
        output = ROOT / "models" / "benchmarks" / f"bilingual_{name}"
        train = ["intent", "--data", str(training_data()), "--output", str(output), "--overwrite",
                 "--epochs", str(options_recipe["epochs"]),
                 "--learning-rate", str(options_recipe["learning_rate"]),
                 "--batch-size", str(options_recipe["batch_size"]),
                 "--validation-split", str(options_recipe["validation_split"]),
                 "--typo-augmentation", str(options_recipe["typo_augmentation"]), *extra]
        if base is not None:
            train += ["--base-model", str(base)]
        if options.threads:
            train += ["--threads", str(options.threads)]
        started = time.perf_counter()
        run(*train)
        wall = time.perf_counter() - started
        trained = json.loads((output / "results.json").read_text(encoding="utf-8"))
        entry = {"base_model": str(base.relative_to(ROOT)) if base else "packaged MiniLM",
                 "options": extra, "train_seconds": round(wall, 1),
                 "epochs_trained": trained.get("epochs_trained"),
                 # What a recipe is chosen on (the held-out sets below are reported only).
                 "validation": {k: round(trained["validation"][k], 4)
                                for k in ("accuracy", "macro_f1", "ece")}}
        for language, test in TESTS.items():
            entry[language] = evaluate(output, test, output / f"eval_{language}")
        record["encoders"][name] = entry
        print(json.dumps({name: entry}, indent=2), flush=True)
    options.results.mkdir(parents=True, exist_ok=True)
    (options.results / f"{options.name}.json").write_text(json.dumps(record, indent=2) + "\n",
                                                          encoding="utf-8")
    plot(record, options.results / f"{options.name}.png")
    print(f"wrote {options.results / (options.name + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
