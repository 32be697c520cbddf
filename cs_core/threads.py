"""One compute thread per server process, for both servers' start-up hooks.

A message is a few dozen tokens: a second thread barely shortens its forward pass
or its similarity search, while the library's pool spins between calls and takes
the core the other server, the tracker store and the other customers' turns need.
Measured with ``benchmarks/turn_profile.py`` (``rasa_threads`` and
``action_server_threads`` in its JSON): numpy's OpenBLAS keeps a second thread
that spun for 23-37 ms of CPU per message in the Rasa process at one customer,
more than the main thread's whole turn; in the action server (the FAQ's similarity
search) it took a third to a half of its CPU.
More throughput comes from more instances.
"""

from __future__ import annotations

from collections.abc import MutableMapping

# Read by OpenMP (torch), MKL, OpenBLAS (numpy's, scipy's) and TensorFlow when
# they load.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "TF_INTRA_OP_PARALLELISM_THREADS", "TF_INTER_OP_PARALLELISM_THREADS")
INFERENCE_THREADS = "1"


def limit_compute_threads(environ: MutableMapping[str, str]) -> list[str]:
    """One thread for every compute library, unless the operator set a count.

    Libraries loaded later read the variables. numpy, loaded before any hook can
    run (the hooks' own imports need it), has its BLAS pool resized in place.

    Args:
        environ: The process environment; thread counts already set there win.

    Returns:
        The variables this call set.
    """
    chosen = [name for name in THREAD_VARIABLES if not environ.get(name)]
    for name in chosen:
        environ[name] = INFERENCE_THREADS
    if "OPENBLAS_NUM_THREADS" in chosen:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=int(INFERENCE_THREADS), user_api="blas")
    return chosen
