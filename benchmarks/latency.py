"""`/model/parse` latency through `rasa run --enable-api`: our pipeline versus DIET.

One command (trains what is missing first)::

    .venv/bin/python benchmarks/latency.py

Serves the Shopwise assistant trained with ``config.yml`` (TransformerIntentClassifier
plus SentimentAnalyzer) and with ``benchmarks/config_diet.yml`` (Rasa's default DIET
pipeline), side by side on loopback; ``--model NAME=PATH`` serves other models (for
example the BANKING77 ones of ``nlu_banking77.py``). One client sends the first 1,000 BANKING77
test messages (``--texts``: another CSV's, such as the Chinese held-out set), each
to both servers in alternating order, so that background noise hits both alike.
Records p50/p95/p99 per server, their ratio and each server's resident memory in
``benchmarks/results/latency_parse.json``, and the latency distributions in
``latency_parse.png``.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import platform
import secrets
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _servers import (  # noqa: E402
    BIN,
    ROOT,
    assistant_model,
    free_port,
    percentiles,
    rss_mb,
    start,
    stop,
    wait_until_up,
)

sys.path.insert(0, str(ROOT))
from cs_core.api_auth import bearer_headers  # noqa: E402


def read_texts(path: Path, count: int) -> list[str]:
    """The first ``count`` texts of a CSV's ``text`` column, repeated when it has fewer."""
    with path.open(newline="", encoding="utf-8") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)]
    return (texts * (count // len(texts) + 1))[:count]


class Client:
    """One keep-alive HTTP connection to a server's /model/parse."""

    def __init__(self, port: int, jwt_secret: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        # As the action server calls it: a Bearer token (Rasa's JWT auth); one for the run.
        self.headers = {"Content-Type": "application/json"} | bearer_headers(
            jwt_secret, username="latency-benchmark", ttl_s=6 * 3600)

    def parse(self, text: str) -> tuple[float, dict]:
        body = json.dumps({"text": text})
        began = time.perf_counter()
        self.connection.request("POST", "/model/parse", body, self.headers)
        response = self.connection.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - began
        if response.status != 200:
            raise RuntimeError(f"/model/parse answered {response.status}: {data[:200]!r}")
        return elapsed, json.loads(data)


def plot(latencies: dict[str, list[float]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    figure, axis = plt.subplots(figsize=(7, 4))
    for name, values in latencies.items():
        ms = np.sort(np.asarray(values) * 1000)
        axis.plot(ms, np.arange(1, ms.size + 1) / ms.size, label=name)
    axis.set_xlabel("/model/parse latency (ms)")
    axis.set_ylabel("share of requests")
    axis.set_xscale("log")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    axis.set_title("BANKING77 test messages, one client, loopback")
    figure.tight_layout()
    figure.savefig(out, dpi=120)
    plt.close(figure)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", metavar="NAME=PATH",
                        help="a model to serve (repeatable; default: the assistant with "
                             "ours and with diet)")
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--texts", type=Path,
                        help="a CSV with a text column to send instead of BANKING77's test set "
                             "(benchmarks/data/intent_zh_test.csv: Chinese customers)")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--name", default="latency_parse", help="results file name")
    options = parser.parse_args()
    if options.model:
        served = dict(pair.split("=", 1) for pair in options.model)
    else:
        served = {name: str(assistant_model(name)) for name in ("ours", "diet")}
    for name, path in served.items():
        if not Path(path).is_file():
            parser.error(f"{name}: no model at {path}")
    source = options.texts or options.datasets / "banking77" / "test.csv"
    texts = read_texts(source, options.messages + options.warmup)

    options.results.mkdir(parents=True, exist_ok=True)
    logs = options.results.parent / "logs"
    logs.mkdir(exist_ok=True)
    processes, clients, startup = {}, {}, {}
    jwt_secret = secrets.token_urlsafe(32)
    try:
        for name, path in served.items():
            port = free_port()
            processes[name] = start(
                [str(BIN / "python"), "-m", "bot.serve", "--enable-api", "--interface",
                 "127.0.0.1", "--port", str(port), "--model", str(path)],
                logs / f"latency_{name}.log", {"RASA_JWT_SECRET": jwt_secret})
            startup[name] = round(wait_until_up(f"http://127.0.0.1:{port}/", processes[name]), 1)
            clients[name] = Client(port, jwt_secret)
        names = list(served)
        for text in texts[:options.warmup]:
            for name in names:
                clients[name].parse(text)
        latencies: dict[str, list[float]] = {name: [] for name in names}
        sample = {}
        for index, text in enumerate(tqdm(texts[options.warmup:], desc="parse", unit="msg")):
            order = names if index % 2 == 0 else names[::-1]
            for name in order:
                elapsed, answer = clients[name].parse(text)
                latencies[name].append(elapsed)
                sample.setdefault(name, answer)
        memory = {name: rss_mb(process) for name, process in processes.items()}
    finally:
        stop(*processes.values())

    stats = {name: percentiles(values) | {"rss_mb": memory[name],
                                          "startup_s": startup[name],
                                          "model": str(served[name]),
                                          "output_keys": sorted(sample[name])}
             for name, values in latencies.items()}
    result = {
        "benchmark": "/model/parse latency, rasa run --enable-api, one keep-alive client",
        "messages": options.messages,
        "texts": source.name,
        "warmup": options.warmup,
        "servers": stats,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
    }
    if {"ours", "diet"} <= set(stats):
        result["ratio_ours_to_diet"] = {
            key: round(stats["ours"][key] / stats["diet"][key], 3)
            for key in ("p50_ms", "p95_ms", "p99_ms")}
    out = options.results / f"{options.name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    plot(latencies, options.results / f"{options.name}.png")
    print(json.dumps({name: {k: v for k, v in s.items() if k.endswith("_ms") or k == "rss_mb"}
                      for name, s in stats.items()} | {"ratio": result.get("ratio_ours_to_diet")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
