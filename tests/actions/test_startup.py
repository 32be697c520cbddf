"""The action server's start-up hook (``actions.startup``)."""

from __future__ import annotations

import os

import pytest

from actions import startup
from cs_core.threads import THREAD_VARIABLES


def test_install_gives_compute_libraries_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    # An operator's choice: this test process's BLAS pool stays as it is.
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")

    startup.install()

    assert os.environ["OPENBLAS_NUM_THREADS"] == "2"
    assert {os.environ[name] for name in THREAD_VARIABLES if name != "OPENBLAS_NUM_THREADS"} \
        == {"1"}
