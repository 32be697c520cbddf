"""Starting and stopping Rasa servers for the benchmarks (loopback only)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = os.environ | {"RASA_TELEMETRY_ENABLED": "false", "HF_HUB_OFFLINE": "1",
                    "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                    "PYTHONPATH": str(ROOT)}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(args: Sequence[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Starts a server in the project directory, its output going to ``log``."""
    handle = log.open("w")
    return subprocess.Popen(list(args), cwd=ROOT, env=ENV | (env or {}), stdout=handle,
                            stderr=subprocess.STDOUT)


def wait_until_up(url: str, process: subprocess.Popen, seconds: float = 300) -> float:
    """Polls ``url`` until it answers; returns the seconds it took."""
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[:3]} exited during start-up")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return time.monotonic() - began
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not come up in {seconds} s")


def stop(*processes: subprocess.Popen) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def rss_mb(process: subprocess.Popen) -> float:
    """Resident memory of a server and its children, in MiB."""
    import psutil

    parent = psutil.Process(process.pid)
    total = parent.memory_info().rss
    for child in parent.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return round(total / 2**20, 1)


def percentiles(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/mean/max of latencies, in milliseconds."""
    values = np.asarray(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(values, 50)), 2),
            "p95_ms": round(float(np.percentile(values, 95)), 2),
            "p99_ms": round(float(np.percentile(values, 99)), 2),
            "mean_ms": round(float(values.mean()), 2),
            "max_ms": round(float(values.max()), 2), "count": int(values.size)}


ASSISTANT_CONFIGS = {
    "ours": ROOT / "config.yml",
    "diet": ROOT / "benchmarks" / "config_diet.yml",
    # config.yml before the turn was cut (benchmarks/turn_profile.py).
    "baseline": ROOT / "benchmarks" / "config_baseline.yml",
}


def assistant_model(name: str) -> Path:
    """The assistant trained with ``ASSISTANT_CONFIGS[name]`` and today's data.

    ``rasa train`` runs every time: its cache makes an unchanged model a quick
    repack, and an archive left by an earlier run could hold an older config.
    """
    out = ROOT / "models" / "benchmarks"
    model = out / f"assistant_{name}.tar.gz"
    out.mkdir(parents=True, exist_ok=True)
    print(f"training the {name} assistant ({ASSISTANT_CONFIGS[name].name})", flush=True)
    subprocess.run([str(BIN / "rasa"), "train", "--config", str(ASSISTANT_CONFIGS[name]),
                    "--fixed-model-name", f"assistant_{name}", "--out", str(out)],
                   cwd=ROOT, check=True, env=ENV)
    return model
