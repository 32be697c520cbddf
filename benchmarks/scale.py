"""The scale stack under load and faults: ``make scale-check`` (CI: ``make scale-check-ci``).

One command (trains the assistant with ``rasa train`` first; its cache makes an
unchanged model a quick repack)::

    .venv/bin/python benchmarks/scale.py --levels 32,128 --scaling 32 \\
        --faults rasa,actions,postgres --check --name scale_check

It starts the stack of ``make scale`` (``deploy/``: PostgreSQL as the tracker store
and the shop database, Redis as the lock store, HAProxy in front of two Rasa
instances and two action servers) on free loopback ports, with a fresh cluster in
``.scale/check/``, and drives ``benchmarks/load.py``'s customers through the
balancer: each sends the load conversation one message at a time, with one message
of each conversation sent twice at once (both copies go through the balancer, so
usually to both instances: only the Redis lock keeps their turns apart).

The customer retries as a web client does: on a connection error or an HTTP
500/502/503/504 it waits (0.5 s, doubling to 4 s) and sends the same message
again, for up to 3 minutes. Every retry is recorded with what the customer saw.

1. **Web chat** through the balancer: socket.io sessions (polling, then the
   websocket upgrade) stay on their instance (HAProxy's cookie) and get answers.
2. **Scaling** (``--scaling N``): N customers with one instance in HAProxy's
   rotation (the other set to maintenance), then with two; the ratio of messages
   per second. ``--one-instance-levels`` adds more loads on one instance, for the
   per-instance capacity (customers at p95 <= 1 s).
3. **Levels** (``--levels``): each through both instances.
4. **Faults** (``--faults``) during one longer run, at even fractions of its
   messages: ``rasa`` SIGKILLs Rasa instance 1 and restarts it (an orchestrator's
   part), ``actions`` does the same to action server 1, ``postgres`` stops
   PostgreSQL for ``--postgres-down`` seconds and starts it again.

After each run every customer's conversation is read back from the PostgreSQL
tracker store: a sent message missing (or out of order) is lost, one stored that
was not sent (or stored twice) is extra, a user message without the bot's answer
before the next is an interleaved turn. ``--check`` exits 1 on any of them or on a
customer who gave up. Writes ``benchmarks/results/<name>.json`` and ``<name>.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _plotting import pyplot, save  # noqa: E402
from _servers import ENV, ROOT, percentiles, rss_mb  # noqa: E402
from load import CONVERSATION, DOUBLE_SENT, lost_and_extra, script, unanswered_turns  # noqa: E402

from bot.lock_store import EXPIRED_WHILE_HELD  # noqa: E402
from deploy.config import SCALE_DIR, StackConfig  # noqa: E402
from deploy.stack import Stack  # noqa: E402

# A web client's retries: these answers mean "not handled, send it again".
RETRY_STATUSES = frozenset({500, 502, 503, 504})
FIRST_DELAY_S, MAX_DELAY_S, GIVE_UP_S = 0.5, 4.0, 180.0
# domain.yml's utter_action_failed (ActionFailurePolicy): an action failed for good.
APOLOGY = "Sorry, I couldn't finish that just now"
MODEL = ROOT / "models" / "assistant.tar.gz"


@dataclass
class Turn:
    """One message as the customer experienced it."""

    sender: str
    text: str
    sent_at: float  # seconds since the run began
    latency_s: float = 0.0
    attempts: list[dict] = field(default_factory=list)  # the failed ones: at_s, saw
    outcome: str = "answered"  # answered | apology | empty | gave_up | refused


@dataclass
class Run:
    """What one load run records while it goes."""

    began: float = field(default_factory=time.perf_counter)
    turns: list[Turn] = field(default_factory=list)
    sent: dict[str, list[str]] = field(default_factory=dict)
    done: int = 0
    finished: bool = False
    progress: asyncio.Event | None = None
    # Work a fault left running (a replacement server coming up), awaited at the end.
    background: list[asyncio.Task] = field(default_factory=list)

    def now(self) -> float:
        return time.perf_counter() - self.began


async def send_retrying(session: aiohttp.ClientSession, url: str, sender: str, text: str,
                        run: Run) -> None:
    """Sends one message as a web client does, resending it after a failure."""
    turn = Turn(sender, text, run.now())
    began, delay = time.perf_counter(), FIRST_DELAY_S
    while True:
        attempt_at = run.now()
        try:
            async with session.post(url, json={"sender": sender, "message": text}) as reply:
                try:
                    body: Any = await reply.json(content_type=None)
                except ValueError:
                    body = None
                status = reply.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            saw = f"{type(error).__name__}"
        else:
            if status == 200 and isinstance(body, list):
                texts = " ".join(str(m.get("text", "")) for m in body if isinstance(m, dict))
                turn.outcome = ("empty" if not body else
                                "apology" if APOLOGY in texts else "answered")
                break
            saw = f"HTTP {status}"
            if status not in RETRY_STATUSES:
                turn.outcome = "refused"
                turn.attempts.append({"sent_s": round(attempt_at, 2),
                                      "at_s": round(run.now(), 2), "saw": saw})
                break
        # at_s: when the customer saw the failure (the request may have waited long).
        turn.attempts.append({"sent_s": round(attempt_at, 2), "at_s": round(run.now(), 2),
                              "saw": saw})
        if time.perf_counter() - began > GIVE_UP_S:
            turn.outcome = "gave_up"
            break
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_DELAY_S)
    turn.latency_s = time.perf_counter() - began
    run.turns.append(turn)
    run.done += 1
    if run.progress is not None:
        run.progress.set()


async def customer(session: aiohttp.ClientSession, url: str, index: int, sender: str,
                   conversations: int, run: Run) -> None:
    """``load.customer``'s conversations, through one balancer URL, with retries."""
    for _ in range(conversations):
        for position, text in enumerate(script(index, tag=True)):
            if position == DOUBLE_SENT:
                run.sent.setdefault(sender, []).extend([text, text])
                await asyncio.gather(*[send_retrying(session, url, sender, text, run)
                                       for _ in range(2)])
            else:
                run.sent.setdefault(sender, []).append(text)
                await send_retrying(session, url, sender, text, run)


# A fault: does its harm, returns its record; may leave work in ``Run.background``
# that completes the record later (a replacement server coming up).
Fault = Callable[[Run, dict], Awaitable[None]]


async def load_run(url: str, prefix: str, customers: int, conversations: int,
                   faults: list[tuple[float, str, Fault]] | None = None) -> tuple[Run, dict]:
    """``customers`` at once; each fault runs when its fraction of messages is done."""
    run = Run(progress=asyncio.Event())
    expected = customers * conversations * (len(CONVERSATION) + 1)
    records: list[dict] = []

    async def injector() -> None:
        for fraction, name, fault in faults or []:
            while run.done < fraction * expected and not run.finished:
                assert run.progress is not None
                run.progress.clear()
                await run.progress.wait()
            if run.finished:
                records.append({"fault": name, "skipped": "the run ended first"})
                continue
            at = run.now()
            print(f"fault: {name} at {at:.1f} s ({run.done}/{expected} messages)", flush=True)
            record = {"fault": name, "at_s": round(at, 2), "at_message": run.done}
            records.append(record)
            await fault(run, record)

    timeout = aiohttp.ClientTimeout(total=150)
    connector = aiohttp.TCPConnector(limit=customers * 2)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        run.began = time.perf_counter()
        injecting = asyncio.create_task(injector())
        await asyncio.gather(*[
            customer(session, url, index, f"{prefix}-{index}", conversations, run)
            for index in range(customers)])
        wall = run.now()
        run.finished = True
        assert run.progress is not None
        run.progress.set()
        await injecting
        await asyncio.gather(*run.background)  # replacements still coming up
    return run, summarise(run, customers, wall, records)


def summarise(run: Run, customers: int, wall: float, faults: list[dict]) -> dict:
    """The run's figures; the tracker store's verdict is added by ``verify``."""
    messages = sum(len(texts) for texts in run.sent.values())
    outcomes = Counter(turn.outcome for turn in run.turns)
    retried = [turn for turn in run.turns if turn.attempts]
    level: dict[str, Any] = {
        "customers": customers, "messages": messages, "wall_s": round(wall, 2),
        "messages_per_s": round(messages / wall, 2),
        "latency": percentiles([t.latency_s for t in run.turns] or [0.0]),
        "outcomes": dict(outcomes),
        "retried_messages": len(retried),
        "retries": sum(len(t.attempts) for t in retried),
        "saw_on_retries": dict(Counter(a["saw"] for t in retried for a in t.attempts)),
        "gave_up": outcomes.get("gave_up", 0) + outcomes.get("refused", 0),
    }
    if faults:
        starts = [f["at_s"] for f in faults if "at_s" in f] + [float("inf")]
        level["faults"] = [fault | (seen_during(fault["at_s"] - 1.0, starts[i + 1] - 1.0,
                                                run.turns) if "at_s" in fault else {})
                           for i, fault in enumerate(faults)]
    return level


def seen_during(start: float, end: float, turns: list[Turn]) -> dict:
    """What customers saw after one fault: the turns whose first failure (or an
    apology) came between ``start`` and ``end`` (the next fault)."""
    hit = [t for t in turns
           if (t.attempts and start <= t.attempts[0]["at_s"] < end)
           or (t.outcome == "apology" and start <= t.sent_at + t.latency_s < end)]
    gaps = [t.latency_s for t in hit]
    return {"customers_affected": len({t.sender for t in hit}),
            "messages_affected": len(hit),
            "retries": sum(len(t.attempts) for t in hit),
            "saw": dict(Counter(a["saw"] for t in hit for a in t.attempts)),
            "apologies": sum(t.outcome == "apology" for t in hit),
            "gap_s": ({"median": round(statistics.median(gaps), 2),
                       "max": round(max(gaps), 2)} if gaps else None),
            "examples": [{"text": t.text, "sent_at_s": round(t.sent_at, 2),
                          "attempts": t.attempts[:4], "answered_after_s": round(t.latency_s, 2),
                          "outcome": t.outcome} for t in hit[:3]]}


def verify(tracker_url: str, sent: dict[str, list[str]]) -> dict[str, int]:
    """Each customer's conversation as the PostgreSQL tracker store holds it."""
    import sqlalchemy as sa

    engine = sa.create_engine(tracker_url)
    lost = extra = interleaved = 0
    mismatches: list[dict] = []
    try:
        with engine.connect() as connection:
            for sender, texts in sent.items():
                rows = connection.execute(sa.text(
                    "SELECT type_name, data FROM events WHERE sender_id = :sender AND "
                    "type_name IN ('user', 'bot') ORDER BY id"), {"sender": f"rest:{sender}"}
                ).fetchall()
                stored = [json.loads(data).get("text") for kind, data in rows if kind == "user"]
                missing, added = lost_and_extra(texts, stored)
                unanswered = unanswered_turns([kind for kind, _ in rows])
                lost, extra = lost + missing, extra + added
                interleaved += unanswered
                if (missing or added or unanswered) and len(mismatches) < 5:
                    mismatches.append({"sender": sender, "sent": texts, "stored": stored,
                                       "kinds": [kind for kind, _ in rows]})
    finally:
        engine.dispose()
    return {"lost_messages": lost, "extra_messages": extra, "interleaved_turns": interleaved,
            "mismatches": mismatches}


def served_by(stack: Stack) -> dict[str, int]:
    """Requests each Rasa instance has had through the balancer so far."""
    import csv
    import io

    rows = csv.DictReader(io.StringIO(stack.haproxy_command("show stat").lstrip("# ")))
    return {row["svname"]: int(row["stot"] or 0) for row in rows
            if row["pxname"] in ("rasa", "actions")
            and row["svname"] not in ("FRONTEND", "BACKEND")}


def measured(stack: Stack, name: str, customers: int, conversations: int,
             faults: list[tuple[float, str, Fault]] | None = None) -> dict:
    """One load run through the balancer, verified against the tracker store."""
    before = served_by(stack)
    run, level = asyncio.run(load_run(stack.url + "/webhooks/rest/webhook",
                                      f"{name}-{os.getpid()}", customers, conversations,
                                      faults))
    after = served_by(stack)
    level["requests_per_server"] = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    level.update(verify(stack.tracker_url(), run.sent))
    level["name"] = name
    level["_timeline"] = [(round(t.sent_at + t.latency_s, 2), round(t.latency_s, 3),
                           bool(t.attempts)) for t in run.turns]
    shown = {k: v for k, v in level.items()
             if not k.startswith("_") and k not in ("faults", "mismatches")}
    print(json.dumps(shown), flush=True)
    for fault in level.get("faults", []):
        print(json.dumps({k: v for k, v in fault.items() if k != "examples"}), flush=True)
    return level


def failures_of(level: dict) -> int:
    return (level["lost_messages"] + level["extra_messages"] + level["interleaved_turns"]
            + level["gave_up"])


# -- web chat -----------------------------------------------------------------------------


async def webchat_sessions(stack: Stack, sessions: int, messages: list[str]) -> dict:
    """Web chat customers through the balancer: socket.io sessions with HAProxy's
    stickiness cookie; each must get an answer to every message.

    The sessions use socket.io's long-polling transport, where stickiness matters
    most (every poll is a new request): python-engineio's websocket transport needs
    a newer aiohttp than Rasa 3.6 pins. The websocket upgrade through HAProxy is
    checked on its own (``websocket_opens``).
    """
    import socketio

    from bot.webchat import DEFAULT_SOCKETIO_PATH

    # "localhost", not 127.0.0.1: aiohttp keeps no cookies for IP addresses.
    url = f"http://localhost:{stack.ports.balancer}"
    instances: Counter[str] = Counter()
    answered = unanswered = 0
    for number in range(sessions):
        sio = socketio.AsyncClient(reconnection=False)
        replies: asyncio.Queue = asyncio.Queue()
        sio.on("bot_uttered", replies.put_nowait)
        confirmed: asyncio.Future = asyncio.get_running_loop().create_future()
        sio.on("session_confirm", lambda sid, f=confirmed: f.done() or f.set_result(sid))
        await sio.connect(url, socketio_path=DEFAULT_SOCKETIO_PATH, transports=["polling"],
                          headers={"Origin": url}, wait_timeout=20)
        try:
            await sio.emit("session_request", {"session_id": None})
            session_id = await asyncio.wait_for(confirmed, 20)
            for text in messages:
                await sio.emit("user_uttered", {"message": f"{text} ({number})"
                                                if text == messages[0] else text,
                                                "session_id": session_id})
                try:
                    await asyncio.wait_for(replies.get(), 60)
                    answered += 1
                    while not replies.empty():
                        replies.get_nowait()
                except asyncio.TimeoutError:
                    unanswered += 1
            jar = sio.eio.http.cookie_jar if sio.eio.http is not None else []
            cookie = next((c.value for c in jar if c.key == "SCALE_RASA"), "none")
            instances[cookie] += 1
            transport = sio.transport()
        finally:
            await sio.disconnect()
    return {"sessions": sessions, "messages": sessions * len(messages),
            "answered": answered, "unanswered": unanswered, "transport": transport,
            "sessions_per_instance": dict(instances),
            "websocket_upgrade_through_haproxy": await websocket_opens(url)}


async def websocket_opens(url: str) -> bool:
    """Whether an engine.io websocket opens through the balancer (its ``open`` packet)."""
    from bot.webchat import DEFAULT_SOCKETIO_PATH

    ws_url = url.replace("http://", "ws://") + DEFAULT_SOCKETIO_PATH + "/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url, headers={"Origin": url}, timeout=20) as socket_:
            first = await socket_.receive(timeout=20)
            return isinstance(first.data, str) and first.data.startswith("0{")


# -- faults -------------------------------------------------------------------------------


def fault_plan(stack: Stack, names: list[str], postgres_down_s: float
               ) -> list[tuple[float, str, Fault]]:
    """The faults at even fractions of the run's messages."""

    def restart_after_kill(server_name: str) -> Fault:
        async def fault(run: Run, record: dict) -> None:
            server = next(s for s in (*stack.rasa, *stack.actions) if s.name == server_name)
            server.kill()
            killed = time.monotonic()
            record["what"] = f"SIGKILL {server_name}, then a new one started"

            async def replace() -> None:
                # An orchestrator notices and starts a new one; the balancer routes
                # around the dead one meanwhile (its health checks).
                await asyncio.sleep(1.0)
                server.start()
                await asyncio.to_thread(stack.wait_healthy, [server], 600)
                await asyncio.to_thread(stack.wait_balanced, 120)
                record["replacement_in_rotation_after_s"] = round(time.monotonic() - killed, 1)
                record["replacement_in_rotation_at_s"] = round(run.now(), 1)

            run.background.append(asyncio.create_task(replace()))
        return fault

    async def postgres(run: Run, record: dict) -> None:
        record["what"] = f"PostgreSQL stopped (fast) for {postgres_down_s:.0f} s, then started"
        gap = await asyncio.to_thread(stack.restart_postgres, postgres_down_s)
        record["unreachable_s"] = round(gap, 1)

    available = {"rasa": ("kill rasa1", restart_after_kill("rasa1")),
                 "actions": ("kill actions1", restart_after_kill("actions1")),
                 "postgres": ("restart postgres", postgres)}
    unknown = sorted(set(names) - set(available))
    if unknown:
        raise SystemExit(f"unknown fault(s) {unknown}; choose from {sorted(available)}")
    return [((i + 1) / (len(names) + 1), *available[name]) for i, name in enumerate(names)]


# -- the report ---------------------------------------------------------------------------


def plot(result: dict, out: Path) -> None:
    plt = pyplot()
    figure, (left, middle, right) = plt.subplots(1, 3, figsize=(16, 4.5))
    scaling = result["scaling"]
    runs = [*scaling.get("one_instance_levels", []),
            *([scaling["two_instances"]] if "two_instances" in scaling else []),
            *result["levels"]]
    labels = [f"{r['instances']}×Rasa\n{r['customers']} cust." for r in runs]
    left.bar(labels, [r["messages_per_s"] for r in runs], color=[
        "tab:orange" if r["instances"] == 1 else "tab:blue" for r in runs])
    left.set(ylabel="messages / s", title="throughput through HAProxy")
    middle.bar(labels, [r["latency"]["p95_ms"] / 1000 for r in runs], color=[
        "tab:orange" if r["instances"] == 1 else "tab:blue" for r in runs])
    middle.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    middle.set(ylabel="p95 latency (s)", title="p95 per message (dashed: 1 s)")
    for axis in (left, middle):
        axis.tick_params(axis="x", labelsize=7)
        axis.grid(True, axis="y", alpha=0.3)
    fault_run = result.get("faults_run")
    if fault_run:
        timeline = fault_run["_timeline"]
        plain = [(t, lat) for t, lat, retried in timeline if not retried]
        retried = [(t, lat) for t, lat, retried in timeline if retried]
        if plain:
            right.scatter(*zip(*plain), s=4, alpha=0.4, label="answered first time")
        if retried:
            right.scatter(*zip(*retried), s=14, color="tab:red", label="answered after retries")
        for fault in fault_run.get("faults", []):
            if "at_s" not in fault:
                continue
            right.axvline(fault["at_s"], color="black", linestyle=":", linewidth=1)
            right.text(fault["at_s"], 0.5, fault["fault"], transform=right.get_xaxis_transform(),
                       rotation=90, fontsize=8, va="center", ha="right")
        right.set(xlabel="seconds into the run", ylabel="message latency (s)",
                  title=f"faults under load ({fault_run['customers']} customers)")
        right.legend(fontsize=7, loc="upper right")
        right.grid(True, alpha=0.3)
    else:
        right.set_axis_off()
    save(figure, out)


def train(model: Path) -> None:
    """``make run``'s training step (its cache makes an unchanged model a repack)."""
    print("training the assistant (rasa train)", flush=True)
    subprocess.run([str(Path(sys.executable).parent / "rasa"), "train", "--fixed-model-name",
                    model.name.removesuffix(".tar.gz"), "--out", str(model.parent)],
                   cwd=ROOT, check=True, env=ENV)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="32,128",
                        help="customers per run through both instances (default 32,128)")
    parser.add_argument("--conversations", type=int, default=2,
                        help="conversations per customer per run (default 2)")
    parser.add_argument("--scaling", type=int, default=0,
                        help="customers for the 1-against-2-instances runs (0: none)")
    parser.add_argument("--one-instance-levels", default="",
                        help="further loads on one instance, for its capacity (e.g. 4,8,16)")
    parser.add_argument("--faults", default="", help="rasa,actions,postgres (default: none)")
    parser.add_argument("--fault-customers", type=int, default=32)
    parser.add_argument("--fault-conversations", type=int, default=6)
    parser.add_argument("--postgres-down", type=float, default=5.0)
    parser.add_argument("--webchat-sessions", type=int, default=6)
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--lock-lifetime", type=int, default=StackConfig.lock_lifetime_s,
                        help="TICKET_LOCK_LIFETIME: how long a dead instance's lock holds a "
                             f"conversation (default {StackConfig.lock_lifetime_s})")
    parser.add_argument("--no-train", action="store_true",
                        help="serve models/assistant.tar.gz as it is")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--name", default="scale_check")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 on any lost, extra or interleaved message, a "
                             "customer who gave up, or a live lock ticket that expired")
    options = parser.parse_args()
    levels = [int(n) for n in options.levels.split(",") if n]
    one_levels = [int(n) for n in options.one_instance_levels.split(",") if n]
    fault_names = [n for n in options.faults.split(",") if n]
    if not options.no_train or not MODEL.is_file():
        train(MODEL)

    work = SCALE_DIR / "check"
    if work.exists():  # a fresh cluster each time: the check counts every stored event
        shutil.rmtree(work)
    config = StackConfig(work_dir=work, base_port=0, model=MODEL,
                         rasa_instances=options.instances, action_servers=2,
                         lock_lifetime_s=options.lock_lifetime)
    stack = Stack(config, say=lambda line: print(line, flush=True))
    result: dict[str, Any] = {"benchmark": "the scale stack through HAProxy under load"}
    began = time.monotonic()
    with stack:
        result["start_up_s"] = round(time.monotonic() - began, 1)
        measured(stack, "warmup", options.instances * 2, 1)
        result["webchat"] = asyncio.run(webchat_sessions(
            stack, options.webchat_sessions, ["hi", "where is my order 12345?"]))
        print(json.dumps({"webchat": result["webchat"]}), flush=True)

        scaling: dict[str, Any] = {}
        if options.scaling or one_levels:
            for index in range(1, options.instances):
                stack.set_rasa_enabled(index, False)
            ones = []
            for customers in sorted(set(one_levels + ([options.scaling] if options.scaling
                                                      else []))):
                ones.append(measured(stack, f"one-{customers}", customers,
                                     options.conversations) | {"instances": 1})
            for index in range(1, options.instances):
                stack.set_rasa_enabled(index, True)
            stack.wait_balanced()
            scaling["one_instance_levels"] = ones
        if options.scaling:
            two = measured(stack, f"two-{options.scaling}", options.scaling,
                           options.conversations) | {"instances": options.instances}
            one = next(r for r in scaling["one_instance_levels"]
                       if r["customers"] == options.scaling)
            scaling |= {
                "customers": options.scaling, "two_instances": two,
                "one_instance": {k: one[k] for k in ("messages_per_s", "latency")},
                "throughput_ratio": round(two["messages_per_s"] / one["messages_per_s"], 2),
                "p95_ratio": round(two["latency"]["p95_ms"] / one["latency"]["p95_ms"], 2),
                "cpu_count": os.cpu_count(),
                "note": ("every process of the stack (2 Rasa instances, 2 action servers, "
                         "PostgreSQL, Redis, HAProxy and the load generator) shares these "
                         f"{os.cpu_count()} cores; one Rasa instance alone keeps about one "
                         "core busy, so a second one can add at most what the remaining "
                         "core has left after the others"),
            }
            print(json.dumps({"throughput_ratio": scaling["throughput_ratio"],
                              "p95_ratio": scaling["p95_ratio"]}), flush=True)
        result["scaling"] = scaling
        result["levels"] = [measured(stack, f"level-{c}", c, options.conversations)
                            | {"instances": options.instances} for c in levels]
        if fault_names:
            result["faults_run"] = measured(
                stack, "faults", options.fault_customers, options.fault_conversations,
                fault_plan(stack, fault_names, options.postgres_down)) | {
                    "instances": options.instances}
        result["rss_mb"] = {s.name: rss_mb(s.process) for s in (*stack.rasa, *stack.actions)
                            if s.process is not None and s.alive()}
        result["server_starts"] = {s.name: s.starts for s in (*stack.rasa, *stack.actions)}

    # The servers' logs (HAProxy's per request) outlive the next run's fresh work dir.
    kept = ROOT / "benchmarks" / "logs" / options.name
    shutil.rmtree(kept, ignore_errors=True)
    shutil.copytree(stack.logs, kept)
    runs = [*scaling.get("one_instance_levels", []),
            *([scaling["two_instances"]] if "two_instances" in scaling else []),
            *result["levels"], *([result["faults_run"]] if "faults_run" in result else [])]
    # A live ticket that could not be renewed: two turns of a conversation may have run
    # at once, whether or not this run's stored messages show it.
    expired = sum(log.read_text(errors="replace").count(EXPIRED_WHILE_HELD)
                  for log in kept.glob("rasa*.log"))
    failures = (sum(failures_of(r) for r in runs) + result["webchat"]["unanswered"]
                + expired)
    result |= {
        "stack": {"rasa_instances": options.instances, "action_servers": 2,
                  "balancer": "HAProxy (leastconn; socket.io sticky by cookie)",
                  "tracker_store": "PostgreSQL (SQL tracker store, psycopg2)",
                  "shop_database": "PostgreSQL (asyncpg)", "lock_store": "Redis",
                  "ticket_lock_lifetime_s": config.lock_lifetime_s},
        "client": {"conversation": CONVERSATION, "double_sent_message": DOUBLE_SENT,
                   "retry_on": sorted(RETRY_STATUSES) + ["connection errors"],
                   "backoff_s": [FIRST_DELAY_S, MAX_DELAY_S], "gives_up_after_s": GIVE_UP_S},
        "totals": {"lost_messages": sum(r["lost_messages"] for r in runs),
                   "extra_messages": sum(r["extra_messages"] for r in runs),
                   "interleaved_turns": sum(r["interleaved_turns"] for r in runs),
                   "gave_up": sum(r["gave_up"] for r in runs),
                   "webchat_unanswered": result["webchat"]["unanswered"],
                   "lock_tickets_expired_while_held": expired},
        "passed": failures == 0,
        "assistant": {"model": str(MODEL.relative_to(ROOT)),
                      "config_yml_sha256": hashlib.sha256(
                          (ROOT / "config.yml").read_bytes()).hexdigest()[:16]},
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "load_average": os.getloadavg()},
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
    }
    options.results.mkdir(parents=True, exist_ok=True)
    plot(result, options.results / f"{options.name}.png")
    for run_level in runs:
        run_level.pop("_timeline", None)
    (options.results / f"{options.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"totals": result["totals"], "passed": result["passed"]}), flush=True)
    if options.check and failures:
        print(f"check failed: {failures} lost, extra, interleaved, given-up, unanswered or "
              "expired-while-held",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
