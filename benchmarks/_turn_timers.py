"""Where a served Rasa turn spends its time: timers patched into a live ``rasa run``.

``benchmarks/turn_profile.py`` starts the server as::

    python benchmarks/_turn_timers.py OUT.json <bot.serve arguments>

which runs ``python -m bot.serve`` in this process, with the timers installed right
after its start-up hook. Every
two seconds (and at exit) the totals go to ``OUT.json``: for each section its
call count, wall seconds and process CPU seconds (all threads: torch and
TensorFlow compute in their own pools).

Sections (Rasa 3.6 names):

- ``turn``: ``Agent.handle_message``, the whole turn inside the server, lock wait
  included; ``lock``: waiting for the conversation lock and, with the start-up
  hook's queue, for a place in it (``turn`` minus ``processor``);
- ``processor``: ``MessageProcessor.handle_message``;
- ``nlu``: ``MessageProcessor.parse_message``, and ``node:<Component>`` for each
  graph node it runs (tokenizer, featurizers, classifiers);
- ``policies``: ``MessageProcessor._predict_next_with_tracker`` (once per predicted
  action), and ``node:<Policy>`` for each policy;
- ``action_server``: ``RemoteAction.run`` (the HTTP call, JSON both ways, and the
  action server's own work);
- ``tracker_retrieve`` / ``tracker_save``: the tracker store (Rasa's, or the
  project's subclasses in ``bot/``).

The timers are benchmark code: nothing in the served project imports this module.
"""

from __future__ import annotations

import atexit
import contextvars
import functools
import json
import os
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

_STATS: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
_LOCK = threading.Lock()


def _record(name: str, wall: float, cpu: float) -> None:
    with _LOCK:
        entry = _STATS[name]
        entry[0] += 1
        entry[1] += wall
        entry[2] += cpu


def _timed_sync(function: Callable, name_of: Callable[[tuple], str]) -> Callable:
    @functools.wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            _record(name_of(args), time.perf_counter() - wall, time.process_time() - cpu)

    return timed


_INSIDE: contextvars.ContextVar[frozenset] = contextvars.ContextVar("inside", default=frozenset())


def _timed_async(function: Callable, name: str) -> Callable:
    # Under concurrency an awaited section's wall time includes other turns' work;
    # the per-turn breakdown is read from the one-customer run. A section that runs
    # inside itself (a subclass's save calling Rasa's) counts once, the outer call.
    @functools.wraps(function)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        inside = _INSIDE.get()
        if name in inside:
            return await function(*args, **kwargs)
        token = _INSIDE.set(inside | {name})
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return await function(*args, **kwargs)
        finally:
            _record(name, time.perf_counter() - wall, time.process_time() - cpu)
            _INSIDE.reset(token)

    return timed


def install() -> None:
    """Patches the timers into Rasa's classes (before a model is loaded)."""
    from rasa.core import tracker_store
    from rasa.core.actions.action import RemoteAction
    from rasa.core.agent import Agent
    from rasa.core.processor import MessageProcessor
    from rasa.engine.graph import GraphNode

    GraphNode.__call__ = _timed_sync(
        GraphNode.__call__, lambda args: f"node:{args[0]._component_class.__name__}")
    MessageProcessor._predict_next_with_tracker = _timed_sync(
        MessageProcessor._predict_next_with_tracker, lambda args: "policies")
    MessageProcessor.parse_message = _timed_async(MessageProcessor.parse_message, "nlu")
    MessageProcessor.handle_message = _timed_async(MessageProcessor.handle_message,
                                                   "processor")
    Agent.handle_message = _timed_async(Agent.handle_message, "turn")
    RemoteAction.run = _timed_async(RemoteAction.run, "action_server")
    # The concrete stores only: the wrappers (AwaitableTrackerStore, FailSafe...)
    # delegate to them, and would count each call twice.
    from bot import tracker_cache
    from bot import tracker_store as strict_store

    stores = [*vars(tracker_store).values(), *vars(tracker_cache).values(),
              *vars(strict_store).values()]
    for store in {cls for cls in stores
                  if isinstance(cls, type) and issubclass(cls, tracker_store.TrackerStore)
                  and not cls.__name__.startswith(("Awaitable", "FailSafe"))}:
        for method, name in (("retrieve", "tracker_retrieve"), ("save", "tracker_save")):
            if method in vars(store):  # patch where defined, so no section counts twice
                setattr(store, method, _timed_async(vars(store)[method], name))


def profile_turns(out: Path) -> None:
    """cProfile inside ``Agent.handle_message`` only (one customer at a time), written
    to ``out`` at exit; start-up and idle time stay out of it."""
    import cProfile

    from rasa.core.agent import Agent

    profiler = cProfile.Profile()
    handle = Agent.handle_message

    @functools.wraps(handle)
    async def profiled(*args: Any, **kwargs: Any) -> Any:
        profiler.enable()
        try:
            return await handle(*args, **kwargs)
        finally:
            profiler.disable()

    Agent.handle_message = profiled
    atexit.register(lambda: profiler.dump_stats(str(out)))


def snapshot() -> dict[str, dict[str, float]]:
    """The totals so far: section -> calls, wall_s, cpu_s."""
    with _LOCK:
        return {name: {"calls": int(calls), "wall_s": round(wall, 6), "cpu_s": round(cpu, 6)}
                for name, (calls, wall, cpu) in sorted(_STATS.items())}


def _write_periodically(out: Path) -> None:
    def write() -> None:
        temporary = out.with_suffix(".tmp")
        temporary.write_text(json.dumps(snapshot()))
        temporary.replace(out)

    def loop() -> None:
        while True:
            time.sleep(2)
            write()

    threading.Thread(target=loop, daemon=True).start()
    atexit.register(write)


def _after_the_start_up_hook(out_file: Path) -> None:
    """Installs the timers once the server's start-up hook has patched Rasa, so
    that ``turn`` times the turn as served (the hook's queue included)."""
    from nlu_components import startup

    hook = startup.install

    def install_then_time(*args: Any, **kwargs: Any) -> None:
        hook(*args, **kwargs)
        install()
        _write_periodically(out_file)
        if os.environ.get("TURN_CPROFILE"):  # a function-level profile, for digging
            profile_turns(Path(os.environ["TURN_CPROFILE"]))

    startup.install = install_then_time


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    _after_the_start_up_hook(Path(sys.argv[1]))
    from bot.serve import main

    main(sys.argv[2:])
