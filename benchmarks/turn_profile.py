"""Where one REST turn spends its time, and what the cut configuration gains.

One command (trains what is missing first)::

    .venv/bin/python benchmarks/turn_profile.py

For each assistant (``baseline``: ``benchmarks/config_baseline.yml``, config.yml as
it was before the cut, served with ``SHOPWISE_TURN_TUNING=off``, i.e. without the
start-up hook's cuts; ``ours``: today's ``config.yml`` and hook) it serves the assistant as
``make run`` does (``python -m bot.serve``, the SQLite tracker store, the action
server) with timers patched into the Rasa process (``benchmarks/_turn_timers.py``),
and sends the ``benchmarks/load.py`` conversation:

- with **1 customer**, one message at a time: the per-turn breakdown (NLU and each
  of its components, the policies and each policy, the action server calls, the
  tracker store, the lock), in CPU and wall milliseconds per message;
- with **32 customers** at once: messages per second and latency percentiles, the
  targets' ratios to the baseline in this same run (>= 3x messages per second,
  p95 <= 1/3), and lost, extra or interleaved messages read back from the tracker.

Both assistants are served and measured ``--rounds`` times (default 3), alternating
which goes first, because two runs minutes apart on this shared machine differed by
up to 15%; the targets are judged on the median of the rounds' ratios, and every
round's figures are kept (``later_rounds``, ``targets_by_round``). Each level also
records CPU per thread of both servers (``rasa_threads``, ``action_server_threads``),
which found the spinning BLAS threads that ``cs_core.threads`` now stops.

Writes ``benchmarks/results/turn_profile.json`` and ``turn_profile.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _servers import (  # noqa: E402
    ASSISTANT_CONFIGS,
    BIN,
    ROOT,
    assistant_model,
    free_port,
    rss_mb,
    start,
    stop,
    wait_until_up,
)
from load import CONVERSATION, interleaved_turns, run_level, stored_vs_sent  # noqa: E402

TIMERS = Path(__file__).resolve().parent / "_turn_timers.py"
# The baseline is today's serving as it was: its config, and Rasa without the
# start-up hook's turn cuts (nlu_components/startup.py, ``tune_turn``).
SERVING_ENV = {"baseline": {"SHOPWISE_TURN_TUNING": "off"}}
# ... and Rasa's own SQL tracker store; the others use endpoints.yml's.
TRACKER_STORES = {"baseline": "SQL"}


def tracker_store_type(name: str) -> str:
    """The tracker store class an assistant is served with."""
    import yaml

    served = yaml.safe_load((ROOT / "endpoints.yml").read_text())["tracker_store"]["type"]
    return TRACKER_STORES.get(name, served)
# The sections a turn is made of, in the order they run (see _turn_timers.py).
SECTIONS = ("lock", "tracker_retrieve", "nlu", "policies", "action_server", "tracker_save")


def read_timers(path: Path, settle_s: float = 2.5) -> dict[str, dict[str, float]]:
    """The server's totals, once its timer thread has written them after the load."""
    time.sleep(settle_s)
    return json.loads(path.read_text()) if path.is_file() else {}


def difference(after: dict, before: dict) -> dict[str, dict[str, float]]:
    """Per-section totals of one level: ``after`` minus ``before``."""
    out = {}
    for name, totals in after.items():
        earlier = before.get(name, {"calls": 0, "wall_s": 0.0, "cpu_s": 0.0})
        out[name] = {key: totals[key] - earlier[key] for key in ("calls", "wall_s", "cpu_s")}
    return out


def breakdown(totals: dict[str, dict[str, float]], messages: int) -> dict[str, dict]:
    """Milliseconds per message for each section and graph node.

    ``lock`` is the turn minus the processor's own handling: waiting for the
    conversation lock and taking it.
    """
    def per_message(name: str) -> dict[str, float]:
        entry = totals.get(name, {"calls": 0, "wall_s": 0.0, "cpu_s": 0.0})
        return {"calls_per_message": round(entry["calls"] / messages, 2),
                "wall_ms": round(1000 * entry["wall_s"] / messages, 3),
                "cpu_ms": round(1000 * entry["cpu_s"] / messages, 3)}

    sections = {name: per_message(name) for name in
                ("turn", "processor", *SECTIONS) if name != "lock"}
    sections["lock"] = {key: round(sections["turn"][key] - sections["processor"][key], 3)
                        for key in ("wall_ms", "cpu_ms")}
    nodes = {name.removeprefix("node:"): per_message(name)
             for name in sorted(totals) if name.startswith("node:")}
    return {"sections": sections, "graph_nodes": nodes}


def thread_cpu_s(process: subprocess.Popen) -> dict[str, float]:
    """CPU seconds of a server's threads, summed by thread name (Linux ``comm``):
    where the CPU goes that a main-thread profile does not see."""
    totals: dict[str, float] = {}
    for thread in psutil.Process(process.pid).threads():
        try:
            name = Path(f"/proc/{process.pid}/task/{thread.id}/comm").read_text().strip()
        except OSError:
            continue
        name = "main" if thread.id == process.pid else name
        totals[name] = totals.get(name, 0.0) + thread.user_time + thread.system_time
    return totals


def process_cpu_s(process: subprocess.Popen) -> float:
    """User plus system CPU seconds of a server and its children."""
    parent = psutil.Process(process.pid)
    total = sum(parent.cpu_times()[:2])
    for child in parent.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.Error:
            pass
    return total


def profile(name: str, levels: list[int], conversations: int, work: Path,
            logs: Path) -> dict:
    """Serves one assistant with the timers and runs every load level against it."""
    model = assistant_model(name)
    rasa_port, actions_port = free_port(), free_port()
    tracker_db, shop_db = work / f"tracker_{name}.db", work / f"shop_{name}.db"
    timers = work / f"timers_{name}.json"
    for stale in (tracker_db, shop_db, timers):
        stale.unlink(missing_ok=True)
    endpoints = work / f"endpoints_{name}.yml"
    endpoints.write_text(
        f'action_endpoint:\n  url: "http://127.0.0.1:{actions_port}/webhook"\n'
        f'tracker_store:\n  type: {tracker_store_type(name)}\n  dialect: "sqlite"\n'
        f'  db: "{tracker_db}"\n')
    # ACTIONS_CPROFILE=<file>: the action server under cProfile too, for digging.
    profiled = (["-m", "cProfile", "-o", os.environ["ACTIONS_CPROFILE"]]
                if os.environ.get("ACTIONS_CPROFILE") else [])
    actions = start([str(BIN / "python"), *profiled, "-m", "actions", "--port",
                     str(actions_port)],
                    logs / f"turn_{name}_actions.log",
                    {"SANIC_HOST": "127.0.0.1",
                     "SHOP_DATABASE_URL": f"sqlite+aiosqlite:///{shop_db}",
                     "RASA_URL": f"http://127.0.0.1:{rasa_port}"})
    rasa = start([str(BIN / "python"), str(TIMERS), str(timers), "--interface", "127.0.0.1",
                  "--port", str(rasa_port), "--model", str(model), "--endpoints",
                  str(endpoints), "--credentials", str(ROOT / "credentials.yml")],
                 logs / f"turn_{name}_rasa.log",
                 {"RASA_CONFIG": str(ASSISTANT_CONFIGS[name]), **SERVING_ENV.get(name, {})})
    try:
        wait_until_up(f"http://127.0.0.1:{actions_port}/health", actions)
        wait_until_up(f"http://127.0.0.1:{rasa_port}/", rasa)
        url = f"http://127.0.0.1:{rasa_port}/webhooks/rest/webhook"
        asyncio.run(run_level([url], f"warmup-{name}", 2, 1))
        out = {"config": ASSISTANT_CONFIGS[name].relative_to(ROOT).as_posix(),
               "tracker_store": tracker_store_type(name),
               "serving_env": SERVING_ENV.get(name, {}), "levels": []}
        for customers in levels:
            before = read_timers(timers)
            cpu_before = (process_cpu_s(rasa), process_cpu_s(actions))
            threads_before = (thread_cpu_s(rasa), thread_cpu_s(actions))
            level = asyncio.run(run_level([url], f"{name}-{os.getpid()}", customers,
                                          conversations, tag=True))
            totals = difference(read_timers(timers), before)
            cpu_after = (process_cpu_s(rasa), process_cpu_s(actions))
            threads_after = (thread_cpu_s(rasa), thread_cpu_s(actions))
            sent = level.pop("sent")
            level["lost_messages"], level["extra_messages"] = stored_vs_sent(tracker_db, sent)
            level["interleaved_turns"] = interleaved_turns(tracker_db, list(sent))
            messages = level["messages"]
            # The settle time is idle, so whole-process CPU is the load's own.
            level["cpu_ms_per_message"] = {
                "rasa_process": round(1000 * (cpu_after[0] - cpu_before[0]) / messages, 2),
                "action_server": round(1000 * (cpu_after[1] - cpu_before[1]) / messages, 2)}
            level.update(breakdown(totals, messages))
            for server, before, after in zip(("rasa", "action_server"), threads_before,
                                             threads_after):
                level[f"{server}_threads_cpu_ms_per_message"] = {
                    name: round(1000 * (spent - before.get(name, 0.0)) / messages, 2)
                    for name, spent in sorted(after.items(), key=lambda kv: -kv[1])
                    if spent - before.get(name, 0.0) > 0}
            out["levels"].append(level)
            print(json.dumps({"assistant": name, "customers": customers,
                              "nodes_wall_ms": {k: v["wall_ms"]
                                                for k, v in level["graph_nodes"].items()},
                              "messages_per_s": level["messages_per_s"],
                              "p95_ms": level["latency"]["p95_ms"],
                              "cpu_ms_per_message": level["cpu_ms_per_message"],
                              "rasa_threads": level["rasa_threads_cpu_ms_per_message"],
                              "action_server_threads":
                                  level["action_server_threads_cpu_ms_per_message"],
                              "sections_cpu_ms": {k: v["cpu_ms"]
                                                  for k, v in level["sections"].items()}}),
                  flush=True)
        out["rss_mb"] = {"rasa": rss_mb(rasa), "action_server": rss_mb(actions)}
        return out
    finally:
        stop(rasa, actions)


def targets(results: dict, customers: int) -> dict:
    """The issue's targets at ``customers``: new against baseline, same run."""
    def level(name: str) -> dict:
        return next(x for x in results[name]["levels"] if x["customers"] == customers)

    base, new = level("baseline"), level("ours")
    throughput = new["messages_per_s"] / base["messages_per_s"]
    p95 = new["latency"]["p95_ms"] / base["latency"]["p95_ms"]
    lost = sum(level(n)[k] for n in ("baseline", "ours")
               for k in ("errors", "lost_messages", "extra_messages", "interleaved_turns"))
    return {"customers": customers,
            "throughput_ratio": round(throughput, 2), "throughput_target": 3.0,
            "p95_ratio": round(p95, 3), "p95_target": round(1 / 3, 3),
            "lost_extra_interleaved_or_errors": lost,
            "met": throughput >= 3.0 and p95 <= 1 / 3 and lost == 0}


def median_targets(by_round: list[dict]) -> dict:
    """The targets judged on the median of the rounds' ratios; nothing lost in any."""
    summary = dict(by_round[0])
    for key in ("throughput_ratio", "p95_ratio"):
        summary[key] = round(float(statistics.median(x[key] for x in by_round)), 3)
        summary[f"{key}_by_round"] = [x[key] for x in by_round]
    summary["lost_extra_interleaved_or_errors"] = sum(
        x["lost_extra_interleaved_or_errors"] for x in by_round)
    summary["met"] = (summary["throughput_ratio"] >= summary["throughput_target"]
                      and summary["p95_ratio"] <= summary["p95_target"]
                      and summary["lost_extra_interleaved_or_errors"] == 0)
    summary["judged_on"] = f"median of {len(by_round)} rounds"
    return summary


def plot(results: dict, out: Path) -> None:
    """Per-message CPU by section (1 customer) and the 32-customer figures."""
    from _plotting import pyplot, save

    names = list(results)
    figure, (left, right) = pyplot().subplots(1, 2, figsize=(12, 4.5))
    bottom = [0.0] * len(names)
    for section in ("nlu", "policies", "action_server", "tracker_retrieve", "tracker_save",
                    "lock", "other"):
        heights = []
        for name in names:
            first = results[name]["levels"][0]
            sections = first["sections"]
            if section == "other":  # HTTP, Sanic, the REST channel, JSON
                named = sum(sections[s]["cpu_ms"] for s in SECTIONS if s != "lock")
                heights.append(max(first["cpu_ms_per_message"]["rasa_process"] - named, 0))
            else:
                heights.append(max(sections[section]["cpu_ms"], 0))
        left.bar(names, heights, bottom=bottom, label=section)
        bottom = [b + h for b, h in zip(bottom, heights)]
    left.set_ylabel("Rasa process CPU ms per message (1 customer)")
    left.legend(fontsize=8)
    last = [results[name]["levels"][-1] for name in names]
    right.bar([f"{n}\nmsg/s" for n in names], [x["messages_per_s"] for x in last],
              color="tab:blue")
    twin = right.twinx()
    twin.bar([f"{n}\np95" for n in names], [x["latency"]["p95_ms"] for x in last],
             color="tab:orange")
    right.set_ylabel("messages per second")
    twin.set_ylabel("p95 latency (ms)")
    right.set_title(f"{last[0]['customers']} concurrent customers, one Rasa instance")
    figure.tight_layout()
    save(figure, out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assistants", default="baseline,ours")
    parser.add_argument("--levels", default="1,32")
    parser.add_argument("--conversations", type=int, default=3,
                        help="conversations per customer per level (default 3)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="times each assistant is served and measured, alternating "
                             "which goes first; the targets are judged on the median "
                             "of the rounds' ratios (default 3)")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--name", default="turn_profile")
    options = parser.parse_args()
    names = [n for n in options.assistants.split(",") if n]
    levels = [int(n) for n in options.levels.split(",")]
    work = ROOT / "models" / "benchmarks" / "turn"
    work.mkdir(parents=True, exist_ok=True)
    logs = options.results.parent / "logs"
    logs.mkdir(exist_ok=True)
    rounds = []
    for number in range(options.rounds):
        # Alternate the order: the machine's load drifts within a run.
        order = names if number % 2 == 0 else names[::-1]
        measured = {name: profile(name, levels, options.conversations, work, logs)
                    for name in order}
        rounds.append({name: measured[name] for name in names})
    results = rounds[0]
    result = {
        "benchmark": "where a REST turn spends its time; baseline and cut config, same run",
        "conversation": CONVERSATION,
        "conversations_per_customer": options.conversations,
        "deployment": "python -m bot.serve, SQLite tracker store, in-memory lock store, "
                      "the action server on SQLite; loopback",
        "rounds": len(rounds),
        "assistants": results,
        "later_rounds": rounds[1:],
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
    }
    if {"baseline", "ours"} <= set(names):
        result["targets_by_round"] = [targets(measured, max(levels)) for measured in rounds]
        result["targets"] = median_targets(result["targets_by_round"])
        print(json.dumps(result["targets"]), flush=True)
    options.results.mkdir(parents=True, exist_ok=True)
    (options.results / f"{options.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(results, options.results / f"{options.name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
