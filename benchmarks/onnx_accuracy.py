"""What the int8 ONNX backend costs in accuracy and gains in speed, on BANKING77.

One command (after ``benchmarks/training_accuracy.py banking77`` wrote the artifact)::

    .venv/bin/python benchmarks/onnx_accuracy.py

Exports ``models/benchmarks/banking77_minilm`` to int8 ONNX (``training.export``),
classifies the whole BANKING77 test set with the torch and the ONNX backend, and
times single-message predictions (one thread, as the components serve) on the first
``--timed`` test messages. Writes ``benchmarks/results/onnx_banking77.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from training.artifact import ONNX_DIR, onnx_path  # noqa: E402
from training.evaluation import compute_metrics  # noqa: E402
from training.export import export_onnx  # noqa: E402
from training.predict import Predictor  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifact", type=Path,
                        default=ROOT / "models" / "benchmarks" / "banking77_minilm")
    parser.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--timed", type=int, default=500)
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    options = parser.parse_args()
    if not (options.artifact / "classifier.json").is_file():
        parser.error(f"no artifact at {options.artifact}; run "
                     "benchmarks/training_accuracy.py banking77 first")
    shutil.rmtree(options.artifact / ONNX_DIR, ignore_errors=True)
    began = time.perf_counter()
    export_onnx(options.artifact)
    export_s = time.perf_counter() - began

    with (options.datasets / "banking77" / "test.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    texts, gold = [row["text"] for row in rows], [row["category"] for row in rows]
    backends = {}
    labels_of = {}
    for backend in ("torch", "onnx"):
        predictor = Predictor.load(options.artifact, backend=backend, device="cpu",
                                   num_threads=1)
        probabilities = predictor.predict_proba(texts, batch_size=64).numpy()
        labels_of[backend] = [predictor.labels[i] for i in probabilities.argmax(axis=1)]
        index = {label: i for i, label in enumerate(predictor.labels)}
        metrics = compute_metrics([index[label] for label in gold], probabilities,
                                  predictor.labels)
        for text in texts[:20]:
            predictor.predict([text])
        timings = []
        for text in texts[:options.timed]:
            start = time.perf_counter()
            predictor.predict([text])
            timings.append(time.perf_counter() - start)
        timings.sort()
        backends[backend] = {
            "accuracy": round(metrics["accuracy"], 4),
            "macro_f1": round(metrics["macro_f1"], 4),
            "single_message_p50_ms": round(timings[len(timings) // 2] * 1000, 2),
            "single_message_p99_ms": round(timings[int(len(timings) * 0.99) - 1] * 1000, 2),
        }
    agreement = sum(a == b for a, b in zip(labels_of["torch"], labels_of["onnx"])) / len(texts)
    result = {
        "benchmark": "int8 ONNX Runtime versus PyTorch, BANKING77 test set, one thread",
        "artifact": str(options.artifact.relative_to(ROOT)),
        "onnx_file_mb": round(onnx_path(options.artifact).stat().st_size / 2**20, 1),
        "export_s": round(export_s, 1),
        "test_examples": len(texts),
        "backends": backends,
        "label_agreement": round(agreement, 4),
        "accuracy_change_points": round(
            (backends["onnx"]["accuracy"] - backends["torch"]["accuracy"]) * 100, 2),
        "speedup_p50": round(backends["torch"]["single_message_p50_ms"]
                             / backends["onnx"]["single_message_p50_ms"], 2),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
    }
    options.results.mkdir(parents=True, exist_ok=True)
    (options.results / "onnx_banking77.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
