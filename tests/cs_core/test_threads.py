"""One compute thread per server process (``cs_core.threads``)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy  # noqa: F401  (loads the BLAS library whose pool is resized)
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from cs_core import threads


@pytest.fixture
def restore_blas() -> Iterator[None]:
    before = {pool["filepath"]: pool["num_threads"] for pool in threadpool_info()
              if pool["user_api"] == "blas"}
    yield
    for pool in threadpool_info():
        if pool["filepath"] in before:
            threadpool_limits(limits=before[pool["filepath"]], user_api="blas")


def blas_threads() -> set[int]:
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


def test_every_library_gets_one_thread_unless_set(restore_blas: None) -> None:
    environ = {"OMP_NUM_THREADS": "4"}
    threadpool_limits(limits=2, user_api="blas")  # a pool numpy started before the hook

    chosen = threads.limit_compute_threads(environ)

    assert environ["OMP_NUM_THREADS"] == "4"  # the operator's choice wins
    assert "OMP_NUM_THREADS" not in chosen
    for name in set(threads.THREAD_VARIABLES) - {"OMP_NUM_THREADS"}:
        assert environ[name] == threads.INFERENCE_THREADS
        assert name in chosen
    assert blas_threads() == {1}


def test_an_operators_blas_thread_count_is_left_alone(restore_blas: None) -> None:
    threadpool_limits(limits=2, user_api="blas")

    chosen = threads.limit_compute_threads({"OPENBLAS_NUM_THREADS": "2"})

    assert "OPENBLAS_NUM_THREADS" not in chosen
    assert blas_threads() == {2}
