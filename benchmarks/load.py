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
compared with what was sent: a missing or misplaced message is "lost", one the
customer did not send (another customer's, or a duplicate) is "extra";
a user message not followed by the bot's answer before the next one is
"interleaved" (two turns of one conversation processed at once).
Writes ``benchmarks/results/load_rest.json`` and ``load_rest.png``.

As a multi-instance deployment (``make reliability``)::

    .venv/bin/python benchmarks/load.py --assistants ours --instances 2 \
        --lock-store redis --levels 32 --tag-senders --double-send --check \
        --name load_multi_instance

starts two ``rasa run`` processes on one SQLite tracker store with Rasa's Redis
lock store (a ``redis-server`` on a free loopback port), sends each customer's
messages to the instances in turn, as a load balancer without sticky sessions
would, and has every customer send one message twice at once, to both
instances, as an impatient customer does. ``--tag-senders`` puts the customer's
number in its first message, so a message in another customer's tracker shows
as lost. ``--check`` exits 1 on any error, lost, extra or interleaved message.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import json
import os
import platform
import shutil
import socket
import sqlite3
import subprocess
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
    "alex@example.com",  # proves the order is theirs (actions/ownership.py)
    "can you track it for me?",
    "how much does shipping cost?",
    "thanks, bye",
]

# With --double-send, this message of each conversation is sent twice at once.
DOUBLE_SENT = 1


def script(index: int, tag: bool) -> list[str]:
    """One conversation's messages; with ``tag`` the first names the customer."""
    if not tag:
        return list(CONVERSATION)
    return [f"hi, this is customer {index}", *CONVERSATION[1:]]


async def send(session: aiohttp.ClientSession, url: str, sender: str, text: str,
               latencies: list[float], errors: list[str]) -> None:
    began = time.perf_counter()
    try:
        async with session.post(url, json={"sender": sender, "message": text}) as reply:
            body = await reply.json(content_type=None)
            if reply.status != 200 or not isinstance(body, list) or not body:
                errors.append(f"{sender}: HTTP {reply.status} {str(body)[:100]}")
                return
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
        errors.append(f"{sender}: {type(error).__name__} {error}")
        return
    latencies.append(time.perf_counter() - began)


async def customer(session: aiohttp.ClientSession, urls: list[str], index: int, sender: str,
                   conversations: int, latencies: list[float], errors: list[str],
                   sent: dict[str, list[str]], tag: bool = False,
                   double_send: bool = False) -> None:
    turn = index  # spreads the customers' first messages over the instances
    for _ in range(conversations):
        for position, text in enumerate(script(index, tag)):
            if double_send and position == DOUBLE_SENT:
                # Both copies at once, to two instances: only the lock store keeps
                # the two turns from running on the same conversation together.
                sent.setdefault(sender, []).extend([text, text])
                await asyncio.gather(*[
                    send(session, urls[(turn + k) % len(urls)], sender, text, latencies,
                         errors) for k in range(2)])
            else:
                sent.setdefault(sender, []).append(text)
                await send(session, urls[turn % len(urls)], sender, text, latencies, errors)
            turn += 1


async def run_level(urls: list[str], prefix: str, customers: int, conversations: int,
                    tag: bool = False, double_send: bool = False) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    sent: dict[str, list[str]] = {}
    timeout = aiohttp.ClientTimeout(total=120)
    connector = aiohttp.TCPConnector(limit=customers * 2)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        began = time.perf_counter()
        await asyncio.gather(*[
            customer(session, urls, index, f"{prefix}-{customers}-{index}", conversations,
                     latencies, errors, sent, tag, double_send)
            for index in range(customers)])
        wall = time.perf_counter() - began
    total = sum(len(texts) for texts in sent.values())
    return {"customers": customers, "messages": total, "wall_s": round(wall, 2),
            "messages_per_s": round(total / wall, 2), "errors": len(errors),
            "error_samples": errors[:5], "latency": percentiles(latencies or [0.0]),
            "sent": sent}


def stored_vs_sent(tracker_db: Path, sent: dict[str, list[str]]) -> tuple[int, int]:
    """Compares each sender's user messages in the tracker store with what was sent.

    Returns:
        ``(lost, extra)``: sent messages missing from the sender's tracker (or out
        of order), and stored ones that were not sent by this sender (another
        customer's, or duplicates), summed over the senders.
    """
    lost = extra = 0
    with sqlite3.connect(tracker_db) as database:
        for sender, texts in sent.items():
            stored = [json.loads(row[0]).get("text") for row in database.execute(
                "SELECT data FROM events WHERE sender_id = ? AND type_name = 'user' "
                "ORDER BY id", (f"rest:{sender}",))]
            missing, added = lost_and_extra(texts, stored)
            lost, extra = lost + missing, extra + added
    return lost, extra


def lost_and_extra(texts: list[str], stored: list[str]) -> tuple[int, int]:
    """One sender's ``(lost, extra)``: sent messages not stored in order, and stored
    ones not sent (any tracker store; benchmarks/scale.py reads PostgreSQL)."""
    matched = sum(block.size for block in difflib.SequenceMatcher(
        None, texts, stored, autojunk=False).get_matching_blocks())
    return len(texts) - matched, len(stored) - matched


def unanswered_turns(kinds: list[str]) -> int:
    """User messages in ``kinds`` (``user``/``bot`` in order) with no bot message
    before the next user message or the end."""
    answered = [kind == "bot" for previous, kind in zip(kinds, kinds[1:]) if previous == "user"]
    return answered.count(False) + (1 if kinds and kinds[-1] == "user" else 0)


def interleaved_turns(tracker_db: Path, senders: list[str]) -> int:
    """User messages not followed by a bot message before the next user message.

    The REST channel stores each conversation under ``rest:<sender>`` (bot/trust.py).

    Each turn ends with the bot's answer when turns of one conversation are
    processed one at a time, which the lock store guarantees.
    """
    interleaved = 0
    with sqlite3.connect(tracker_db) as database:
        for sender in senders:
            kinds = [row[0] for row in database.execute(
                "SELECT type_name FROM events WHERE sender_id = ? AND type_name IN "
                "('user', 'bot') ORDER BY id", (f"rest:{sender}",))]
            interleaved += unanswered_turns(kinds)
    return interleaved


def start_redis(log: Path) -> tuple[subprocess.Popen, int]:
    """A throw-away redis-server on a free loopback port, persisting nothing."""
    if shutil.which("redis-server") is None:
        raise SystemExit("--lock-store redis needs redis-server (Debian: apt-get install "
                         "redis-server; `make reliability` installs it)")
    port = free_port()
    process = start(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                     "--save", "", "--appendonly", "no"], log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process, port
        except OSError:
            time.sleep(0.2)
    stop(process)
    raise SystemExit("redis-server did not start; see " + str(log))


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
    parser.add_argument("--instances", type=int, default=1,
                        help="rasa run processes sharing the tracker store (default 1)")
    parser.add_argument("--lock-store", choices=("memory", "redis"), default="memory",
                        help="Rasa's lock store: in-memory (one process) or redis")
    parser.add_argument("--tag-senders", action="store_true",
                        help="put the customer's number in its first message")
    parser.add_argument("--double-send", action="store_true",
                        help="send one message of each conversation twice at once")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 on any error, lost, extra or interleaved message")
    options = parser.parse_args()
    if options.instances < 1:
        parser.error("--instances must be 1 or more")
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
    failures = 0
    for name in names:
        model = assistant_model(name)
        rasa_ports, actions_port = [free_port() for _ in range(options.instances)], free_port()
        tracker_db, shop_db = work / f"tracker_{name}.db", work / f"shop_{name}.db"
        for stale in (tracker_db, shop_db):
            stale.unlink(missing_ok=True)
        endpoints = work / f"endpoints_{name}.yml"
        config = (f'action_endpoint:\n  url: "http://127.0.0.1:{actions_port}/webhook"\n'
                  f'tracker_store:\n  type: SQL\n  dialect: "sqlite"\n  db: "{tracker_db}"\n')
        servers: list[subprocess.Popen] = []
        if options.lock_store == "redis":
            redis, redis_port = start_redis(logs / f"load_{name}_redis.log")
            servers.append(redis)
            config += (f'lock_store:\n  type: redis\n  url: "127.0.0.1"\n'
                       f'  port: {redis_port}\n  db: 1\n')
        endpoints.write_text(config)
        actions = start([str(BIN / "python"), "-m", "actions",
                         "--port", str(actions_port)], logs / f"load_{name}_actions.log",
                        {"SANIC_HOST": "127.0.0.1", "SHOP_DATABASE_URL":
                         f"sqlite+aiosqlite:///{shop_db}",
                         "RASA_URL": f"http://127.0.0.1:{rasa_ports[0]}"})
        servers.append(actions)
        rasas = []
        for number, port in enumerate(rasa_ports):
            rasas.append(start([str(BIN / "python"), "-m", "bot.serve", "--interface",
                                "127.0.0.1", "--port", str(port), "--model", str(model),
                                "--endpoints", str(endpoints),
                                "--credentials", str(ROOT / "credentials.yml")],
                               logs / f"load_{name}_rasa{number or ''}.log"))
        servers.extend(rasas)
        try:
            wait_until_up(f"http://127.0.0.1:{actions_port}/health", actions)
            for port, rasa in zip(rasa_ports, rasas):
                wait_until_up(f"http://127.0.0.1:{port}/", rasa)
            urls = [f"http://127.0.0.1:{port}/webhooks/rest/webhook" for port in rasa_ports]
            asyncio.run(run_level(urls, f"warmup-{name}", len(urls), 1))
            results[name] = []
            for customers in levels:
                level = asyncio.run(run_level(urls, f"{name}-{os.getpid()}", customers,
                                              options.conversations, options.tag_senders,
                                              options.double_send))
                sent = level.pop("sent")
                level["lost_messages"], level["extra_messages"] = stored_vs_sent(tracker_db,
                                                                                sent)
                level["interleaved_turns"] = interleaved_turns(tracker_db, list(sent))
                failures += (level["errors"] + level["lost_messages"] + level["extra_messages"]
                             + level["interleaved_turns"])
                results[name].append(level)
                print(json.dumps({"assistant": name, **{k: v for k, v in level.items()
                                                        if k != "error_samples"}}), flush=True)
            rss = [rss_mb(rasa) for rasa in rasas]
            summary[name] = {"rss_mb_rasa": rss[0] if len(rss) == 1 else rss,
                             "rss_mb_actions": rss_mb(actions), "model": str(model)}
        finally:
            stop(*reversed(servers))

    result = {
        "benchmark": "REST webhook with the action server, concurrent multi-turn customers",
        "conversation": CONVERSATION,
        "conversations_per_customer": options.conversations,
        "deployment": {"rasa_instances": options.instances, "lock_store": options.lock_store,
                       "tracker_store": "SQL (one SQLite file)",
                       "routing": "each customer's messages to the instances in turn",
                       "tagged_senders": options.tag_senders,
                       "double_send": options.double_send},
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
    if options.check and failures:
        print(f"check failed: {failures} errors, lost, extra or interleaved messages",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
