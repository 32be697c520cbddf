"""Throughput under load: simulated customers on the REST channel with the action server.

One command (trains what is missing first)::

    .venv/bin/python benchmarks/load.py

For each assistant (``ours``: the repo's ``config.yml``; ``diet``: the same domain,
data and policies with Rasa's default DIET pipeline, ``benchmarks/config_diet.yml``)
it starts ``rasa run`` with an SQLite tracker store and the action server with its
own shop database, all on loopback. Then, for N = 1, 8 and 32 concurrent customers,
each customer holds multi-turn conversations (a fixed script through the order,
tracking and FAQ flows) with its own sender id, one message at a time, waiting for
each answer. The load is bounded: ``--conversations`` per customer.

Afterwards every sender's user messages are read back from the tracker store and
compared with what was sent: a missing, extra or misplaced message is "lost".
Writes ``benchmarks/results/load_rest.json`` and ``load_rest.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _servers import (  # noqa: E402
    ASSISTANT_CONFIGS,
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

CONVERSATION = [
    "hi",
    "where is my order 12345?",
    "can you track it for me?",
    "how much does shipping cost?",
    "thanks, bye",
]

async def customer(session: aiohttp.ClientSession, url: str, sender: str,
                   conversations: int, latencies: list[float], errors: list[str],
                   sent: dict[str, list[str]]) -> None:
    for _ in range(conversations):
        for text in CONVERSATION:
            sent.setdefault(sender, []).append(text)
            began = time.perf_counter()
            try:
                async with session.post(url, json={"sender": sender, "message": text}) as reply:
                    body = await reply.json(content_type=None)
                    if reply.status != 200 or not isinstance(body, list) or not body:
                        errors.append(f"{sender}: HTTP {reply.status} {str(body)[:100]}")
                        continue
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
                errors.append(f"{sender}: {type(error).__name__} {error}")
                continue
            latencies.append(time.perf_counter() - began)


async def run_level(url: str, prefix: str, customers: int, conversations: int) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    sent: dict[str, list[str]] = {}
    timeout = aiohttp.ClientTimeout(total=120)
    connector = aiohttp.TCPConnector(limit=customers)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        began = time.perf_counter()
        await asyncio.gather(*[
            customer(session, url, f"{prefix}-{customers}-{index}", conversations, latencies,
                     errors, sent) for index in range(customers)])
        wall = time.perf_counter() - began
    total = sum(len(texts) for texts in sent.values())
    return {"customers": customers, "messages": total, "wall_s": round(wall, 2),
            "messages_per_s": round(total / wall, 2), "errors": len(errors),
            "error_samples": errors[:5], "latency": percentiles(latencies or [0.0]),
            "sent": sent}


def lost_messages(tracker_db: Path, sent: dict[str, list[str]]) -> int:
    """Messages missing from (or extra or out of order in) each sender's tracker."""
    lost = 0
    with sqlite3.connect(tracker_db) as database:
        for sender, texts in sent.items():
            stored = [json.loads(row[0]).get("text") for row in database.execute(
                "SELECT data FROM events WHERE sender_id = ? AND type_name = 'user' "
                "ORDER BY id", (sender,))]
            if stored != texts:
                lost += max(len(texts), len(stored)) - sum(
                    1 for a, b in zip(stored, texts) if a == b)
    return lost


def plot(results: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name, levels in results.items():
        xs = [level["customers"] for level in levels]
        left.plot(xs, [level["messages_per_s"] for level in levels], marker="o", label=name)
        right.plot(xs, [level["latency"]["p95_ms"] for level in levels], marker="o",
                   label=name)
    left.set(xlabel="concurrent customers", ylabel="messages / s", xscale="log", title="throughput")
    right.set(xlabel="concurrent customers", ylabel="p95 latency (ms)", xscale="log",
              title="REST webhook latency")
    for axis in (left, right):
        axis.grid(True, alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(out, dpi=120)
    plt.close(figure)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assistants", default="ours,diet")
    parser.add_argument("--levels", default="1,8,32", help="concurrent customers per level")
    parser.add_argument("--conversations", type=int, default=2,
                        help="conversations per customer per level (default 2)")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--name", default="load_rest")
    options = parser.parse_args()
    names = [n for n in options.assistants.split(",") if n]
    levels = [int(n) for n in options.levels.split(",")]
    unknown = sorted(set(names) - set(ASSISTANT_CONFIGS))
    if unknown:
        parser.error(f"unknown assistant(s) {unknown}; choose from {sorted(ASSISTANT_CONFIGS)}")
    work = ROOT / "models" / "benchmarks" / "load"
    work.mkdir(parents=True, exist_ok=True)
    logs = options.results.parent / "logs"
    logs.mkdir(exist_ok=True)

    results: dict[str, list[dict]] = {}
    summary: dict[str, dict] = {}
    for name in names:
        model = assistant_model(name)
        rasa_port, actions_port = free_port(), free_port()
        tracker_db, shop_db = work / f"tracker_{name}.db", work / f"shop_{name}.db"
        for stale in (tracker_db, shop_db):
            stale.unlink(missing_ok=True)
        endpoints = work / f"endpoints_{name}.yml"
        endpoints.write_text(
            f'action_endpoint:\n  url: "http://127.0.0.1:{actions_port}/webhook"\n'
            f'tracker_store:\n  type: SQL\n  dialect: "sqlite"\n  db: "{tracker_db}"\n')
        actions = start([str(BIN / "rasa"), "run", "actions", "--actions", "actions",
                         "--port", str(actions_port)], logs / f"load_{name}_actions.log",
                        {"SANIC_HOST": "127.0.0.1", "SHOP_DATABASE_URL":
                         f"sqlite+aiosqlite:///{shop_db}",
                         "RASA_URL": f"http://127.0.0.1:{rasa_port}"})
        rasa = start([str(BIN / "rasa"), "run", "--interface", "127.0.0.1", "--port",
                      str(rasa_port), "--model", str(model), "--endpoints", str(endpoints),
                      "--credentials", str(ROOT / "credentials.yml")],
                     logs / f"load_{name}_rasa.log")
        try:
            wait_until_up(f"http://127.0.0.1:{actions_port}/health", actions)
            wait_until_up(f"http://127.0.0.1:{rasa_port}/", rasa)
            url = f"http://127.0.0.1:{rasa_port}/webhooks/rest/webhook"
            asyncio.run(run_level(url, f"warmup-{name}", 1, 1))
            results[name] = []
            for customers in levels:
                level = asyncio.run(run_level(url, f"{name}-{os.getpid()}", customers,
                                              options.conversations))
                level["lost_messages"] = lost_messages(tracker_db, level.pop("sent"))
                results[name].append(level)
                print(json.dumps({"assistant": name, **{k: v for k, v in level.items()
                                                        if k != "error_samples"}}), flush=True)
            summary[name] = {"rss_mb_rasa": rss_mb(rasa), "rss_mb_actions": rss_mb(actions),
                             "model": str(model)}
        finally:
            stop(rasa, actions)

    result = {
        "benchmark": "REST webhook with the action server, concurrent multi-turn customers",
        "conversation": CONVERSATION,
        "conversations_per_customer": options.conversations,
        "levels": results,
        "servers": summary,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
    }
    options.results.mkdir(parents=True, exist_ok=True)
    (options.results / f"{options.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(results, options.results / f"{options.name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
