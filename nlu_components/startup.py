"""The Rasa server's start-up hook: every process-wide setting, in one place.

``install()`` runs once, before Rasa loads a model, from the launcher
``python -m bot.serve`` (``make run`` and the tests use it). It

- masks e-mails, phone and card numbers in every log record of the process
  (``cs_core.privacy``), whatever the config's components and policies are;
- bounds Rasa's wait for the action server with ``ActionFailurePolicy``'s
  ``action_timeout`` from ``config.yml`` (Rasa 3.6 offers no other way to set it);
- cuts the cost of a turn (``tune_turn``; measured by ``benchmarks/turn_profile.py``):
  one compute thread for torch, TensorFlow and numpy's BLAS, one compiled
  validator for the action server's answers, event classes looked up in a
  dictionary, graphs run in a plain loop rather than dask's scheduler, and a
  first-come-first-served queue in front of the turns (``admit_turns``); the
  tracker store's cut is ``bot.tracker_cache``, chosen in endpoints.yml.
  ``SHOPWISE_TURN_TUNING=off`` leaves Rasa as it was, for the benchmark's baseline.

Components and policies never change process-wide state themselves; when the
hook has not run (a plain ``rasa run``), ``_shared.warn_if_not_installed``
says so once, when a model is loaded.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

import yaml

from cs_core.privacy import mask_all_records
from cs_core.threads import limit_compute_threads
from nlu_components import _shared
from nlu_components.policies.action_failure import NAME as ACTION_FAILURE
from nlu_components.policies.action_failure import ActionFailureConfig

logger = logging.getLogger(__name__)

TUNING_VARIABLE = "SHOPWISE_TURN_TUNING"
# Turns one Rasa process runs at once; the others wait their turn, first come first
# served. SHOPWISE_CONCURRENT_TURNS overrides it; 0 lets every request in.
TURNS_VARIABLE = "SHOPWISE_CONCURRENT_TURNS"
CONCURRENT_TURNS = 4


def install(config_path: str | Path | None = None) -> None:
    """Applies the Rasa server's process-wide settings (idempotent).

    Args:
        config_path: The Rasa ``config.yml``; default ``$RASA_CONFIG`` or ``config.yml``.

    Raises:
        InvalidConfigException: ``ActionFailurePolicy``'s options are invalid.
    """
    mask_all_records()
    if os.environ.get(TUNING_VARIABLE, "on").lower() != "off":
        tune_turn(os.environ)
    timeout = action_timeout(Path(config_path or os.environ.get("RASA_CONFIG") or "config.yml"))
    if timeout is not None:
        set_action_timeout(timeout)


def action_timeout(config_path: Path) -> float | None:
    """``ActionFailurePolicy``'s ``action_timeout`` in a config file, or ``None``
    when the file or the policy is absent (Rasa's own wait then applies)."""
    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        logger.warning("no action timeout from %s: %s", config_path, error)
        return None
    policies = config.get("policies") if isinstance(config, Mapping) else None
    for policy in policies if isinstance(policies, list) else []:
        name = policy.get("name", "") if isinstance(policy, Mapping) else ""
        if isinstance(name, str) and name.rsplit(".", 1)[-1] == ACTION_FAILURE:
            options = {key: value for key, value in policy.items() if key != "name"}
            return float(_shared.parse_config(ActionFailureConfig, options,
                                              ACTION_FAILURE).action_timeout)
    return None


def set_action_timeout(seconds: float) -> None:
    """Makes Rasa's calls to the action server give up after ``seconds``.

    ``RemoteAction.run`` reads the module constant at call time; this is the
    only place a configured value can reach it in Rasa 3.6.
    """
    import rasa.core.actions.action as rasa_action

    if rasa_action.DEFAULT_REQUEST_TIMEOUT != seconds:
        rasa_action.DEFAULT_REQUEST_TIMEOUT = seconds
        logger.info("calls to the action server time out after %s s", seconds)


def tune_turn(environ: MutableMapping[str, str]) -> None:
    """The turn's cuts that need the process rather than the config (idempotent).

    Args:
        environ: The process environment; thread counts already set there win.
    """
    limit_inference_threads(environ)
    compile_action_result_validator()
    cache_event_types()
    run_graphs_in_order()
    admit_turns(concurrent_turns(environ))


def limit_inference_threads(environ: MutableMapping[str, str]) -> list[str]:
    """One thread for torch, MKL, OpenBLAS and TensorFlow, unless set already
    (``cs_core.threads``; with TEDPolicy, the Rasa process used 159 ms of CPU per
    message with the libraries' defaults, 76 ms with one thread). Must run before
    torch or TensorFlow start, which read the variables once.

    Returns:
        The variables this call set.
    """
    started = [name for name in ("torch", "tensorflow") if name in sys.modules]
    if started:
        logger.warning("%s already started: its thread count stays as it is", started)
    return limit_compute_threads(environ)


def compile_action_result_validator() -> None:
    """Validates the action server's answers with one validator built once.

    Rasa 3.6's ``RemoteAction._validate_action_result`` calls
    ``jsonschema.validate``, which checks the schema itself and builds a new
    validator on every call: a third of a turn's CPU in the Rasa process. The
    schema, the errors and their message stay Rasa's.
    """
    from rasa.core.actions.action import RemoteAction

    if getattr(RemoteAction._validate_action_result, "_compiled", False):
        return
    from jsonschema import validators
    from jsonschema.exceptions import best_match

    original = RemoteAction._validate_action_result
    schema = RemoteAction.action_response_format_spec()
    validator = validators.validator_for(schema)(schema)

    def validate(self: RemoteAction, result: dict[str, Any]) -> bool:
        error = best_match(validator.iter_errors(result))
        if error is None:
            return True
        # Rasa's own wording for the failure, from the original method.
        return original(self, result)

    validate._compiled = True  # type: ignore[attr-defined]
    RemoteAction._validate_action_result = validate


def cache_event_types() -> None:
    """Finds an event's class by its name in a dictionary.

    Rasa 3.6's ``Event.resolve_by_type`` walks every subclass of ``Event``
    recursively for each event it reads: every event of the tracker loaded from
    the store and of each action server answer, a tenth of a turn's CPU. Only
    classes found are cached, so a class defined later is still found.
    """
    from rasa.shared.core.events import Event

    if getattr(Event.resolve_by_type, "_cached", False):
        return
    original = Event.resolve_by_type
    found: dict[str, type] = {}

    def resolve_by_type(type_name: str, default: type | None = None) -> type | None:
        cls = found.get(type_name)
        if cls is None:
            cls = original(type_name, default)
            if cls is not None and cls is not default:
                found[type_name] = cls
        return cls

    resolve_by_type._cached = True  # type: ignore[attr-defined]
    Event.resolve_by_type = staticmethod(resolve_by_type)  # type: ignore[assignment]


def run_graphs_in_order() -> None:
    """Runs Rasa's graphs (NLU, policies) in a plain loop instead of dask's scheduler.

    Rasa 3.6's ``DaskGraphRunner.run`` prunes the schema, builds a dask graph and
    hands it to ``dask.get`` on every parse and every predicted action: 0.7 ms of
    scheduling per run, three runs a message, for graphs of a dozen nodes that run
    one after another anyway. Here each runner works out the order once per set of
    targets and then calls its nodes in that order, with dask's semantics: inputs
    replace nodes of the same name, a need that names no node is passed as it is,
    and node errors propagate as they did.
    """
    from rasa.engine.exceptions import GraphRunError
    from rasa.engine.runner.dask import DaskGraphRunner

    if getattr(DaskGraphRunner.run, "_in_order", False):
        return

    def plan(runner: DaskGraphRunner, targets: list[str]) -> list[tuple[str, Any, tuple]]:
        nodes = runner._graph_schema.minimal_graph_schema(targets).nodes
        ordered: list[tuple[str, Any, tuple]] = []
        done: set[str] = set()

        def visit(name: str) -> None:  # Rasa validates at training that there is no cycle
            if name in done or name not in nodes:
                return
            needs = tuple(nodes[name].needs.values())
            for need in needs:
                visit(need)
            done.add(name)
            ordered.append((name, runner._instantiated_nodes[name], needs))

        for target in targets:
            visit(target)
        return ordered

    def run(self: DaskGraphRunner, inputs: dict[str, Any] | None = None,
            targets: list[str] | None = None) -> dict[str, Any]:
        run_targets = list(targets) if targets else self._graph_schema.target_names
        plans = self.__dict__.setdefault("_plans_in_order", {})
        steps = plans.get(tuple(run_targets))
        if steps is None:
            steps = plans[tuple(run_targets)] = plan(self, run_targets)
        values: dict[str, Any] = {}
        names = {name for name, _, _ in steps}
        for name, value in (inputs or {}).items():
            if isinstance(value, str) and value in names:
                raise GraphRunError(
                    f"Input value '{value}' clashes with a node name. Make sure that none of "
                    f"the input names passed to the `run` method are the same as node names "
                    f"in the graph schema.")
            names.add(name)
            values[name] = (name, value)
        try:
            for name, node, needs in steps:
                if name not in values:  # an input of that name replaces the node
                    values[name] = node(*(values.get(need, need) for need in needs))
        except RuntimeError as error:
            raise GraphRunError("Error running runner.") from error
        return dict(values[target] for target in run_targets)

    run._in_order = True  # type: ignore[attr-defined]
    run.__doc__ = DaskGraphRunner.run.__doc__
    DaskGraphRunner.run = run


def concurrent_turns(environ: Mapping[str, str]) -> int:
    """``SHOPWISE_CONCURRENT_TURNS``, or ``CONCURRENT_TURNS``.

    Raises:
        InvalidConfigException: Not a whole number of 0 or more.
    """
    value = environ.get(TURNS_VARIABLE, "").strip()
    if not value:
        return CONCURRENT_TURNS
    if not value.isdigit():
        from rasa.shared.exceptions import InvalidConfigException

        raise InvalidConfigException(
            f"{TURNS_VARIABLE}={value!r}: use a whole number of turns run at once per "
            f"Rasa process (0: no limit), or unset it for the default ({CONCURRENT_TURNS})")
    return int(value)


def admit_turns(limit: int) -> None:
    """Lets ``limit`` turns run at once in this process; the rest queue in order.

    A turn's NLU and policies run on the event loop without yielding, and every
    call to the action server yields: without a limit, each new request's NLU runs
    inside the turns already started, so under load old turns keep waiting behind
    new ones and the slowest customers wait longest. A first-come-first-served
    queue keeps the order. A turn queues once it holds its conversation's lock
    (Rasa's lock store): a turn still waiting for a lock, e.g. one a killed
    instance held, must not take a place from turns that could run. ``0`` removes
    the limit.
    """
    import asyncio

    from rasa.core.agent import Agent

    handle = getattr(Agent.handle_message, "_unlimited", Agent.handle_message)
    if limit <= 0:
        Agent.handle_message = handle
        return
    gates: dict[int, asyncio.Semaphore] = {}

    async def handle_message(self: Agent, message: Any) -> Any:
        # Rasa 3.6's Agent.handle_message, with the queue inside the lock.
        if not self.is_ready():
            logger.info("Ignoring message as there is no agent to handle it.")
            return None
        loop = id(asyncio.get_running_loop())
        gate = gates.get(loop)
        if gate is None:  # one per event loop: a semaphore belongs to its loop
            gate = gates[loop] = asyncio.Semaphore(limit)
        async with self.lock_store.lock(message.sender_id):
            async with gate:
                return await self.processor.handle_message(message)

    handle_message._unlimited = handle  # type: ignore[attr-defined]
    handle_message.__doc__ = handle.__doc__
    Agent.handle_message = handle_message
