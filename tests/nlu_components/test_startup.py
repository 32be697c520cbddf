"""The Rasa server's start-up hook: the turn's process-wide cuts (``tune_turn``)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.engine.exceptions import GraphRunError
from rasa.engine.graph import GraphComponent, GraphSchema, SchemaNode
from rasa.engine.runner.dask import DaskGraphRunner

from nlu_components import startup


@pytest.fixture
def remote_action() -> RemoteAction:
    return RemoteAction("action_check_order", None)


@pytest.fixture
def restore_validator() -> Iterator[None]:
    original = RemoteAction._validate_action_result
    yield
    RemoteAction._validate_action_result = original


def test_threads_default_to_one_where_unset() -> None:
    # OPENBLAS_NUM_THREADS set: this test process's BLAS pool stays as it is
    # (tests/cs_core/test_threads.py resizes one and restores it).
    environ = {"OMP_NUM_THREADS": "4", "OPENBLAS_NUM_THREADS": "2"}
    chosen = startup.limit_inference_threads(environ)
    assert environ["OMP_NUM_THREADS"] == "4"  # the operator's choice wins
    assert "OMP_NUM_THREADS" not in chosen
    for name in ("MKL_NUM_THREADS", "TF_INTRA_OP_PARALLELISM_THREADS",
                 "TF_INTER_OP_PARALLELISM_THREADS"):
        assert environ[name] == "1"
        assert name in chosen


def test_a_library_started_too_early_is_named(monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "torch", sys.modules.get("torch") or object())
    startup.limit_inference_threads({"OPENBLAS_NUM_THREADS": "2"})
    assert "torch" in caplog.text and "stays as it is" in caplog.text


def test_compiled_validator_accepts_what_rasa_accepts(remote_action: RemoteAction,
                                                      restore_validator: None) -> None:
    startup.compile_action_result_validator()
    assert getattr(RemoteAction._validate_action_result, "_compiled", False)
    answer = {"events": [{"event": "slot", "name": "order_id", "value": "12345"}],
              "responses": [{"text": "On its way."}]}
    assert remote_action._validate_action_result(answer) is True


@pytest.mark.parametrize("answer", [
    {"events": "not a list"},
    {"events": [{"no_event_key": 1}]},
    {"responses": "not a list"},
])
def test_compiled_validator_refuses_with_rasas_message(remote_action: RemoteAction,
                                                       restore_validator: None,
                                                       answer: dict) -> None:
    startup.compile_action_result_validator()
    with pytest.raises(ValidationError, match="Failed to validate Action server response"):
        remote_action._validate_action_result(answer)


def test_compiling_twice_wraps_once(restore_validator: None) -> None:
    startup.compile_action_result_validator()
    first = RemoteAction._validate_action_result
    startup.compile_action_result_validator()
    assert RemoteAction._validate_action_result is first


def test_tuning_off_leaves_rasa_as_it_was(monkeypatch: pytest.MonkeyPatch,
                                          restore_validator: None) -> None:
    calls: list[str] = []
    monkeypatch.setattr(startup, "tune_turn", lambda environ: calls.append("tuned"))
    monkeypatch.setenv(startup.TUNING_VARIABLE, "off")
    startup.install(Path("config.yml"))
    assert calls == []
    monkeypatch.setenv(startup.TUNING_VARIABLE, "on")
    startup.install(Path("config.yml"))
    assert calls == ["tuned"]


@pytest.fixture
def restore_event_types() -> Iterator[None]:
    from rasa.shared.core.events import Event

    original = Event.__dict__["resolve_by_type"]
    yield
    Event.resolve_by_type = original


def test_event_types_resolve_as_rasas_do(restore_event_types: None) -> None:
    from rasa.shared.core.events import ActionExecuted, Event, SlotSet, UserUttered

    startup.cache_event_types()
    startup.cache_event_types()  # idempotent
    assert Event.resolve_by_type("slot") is SlotSet
    assert Event.resolve_by_type("user") is UserUttered
    assert Event.resolve_by_type("slot") is SlotSet  # from the dictionary now
    assert Event.resolve_by_type("no_such_event", ActionExecuted) is ActionExecuted
    assert Event.resolve_by_type("topic") is None  # Rasa's backwards compatibility
    with pytest.raises(ValueError, match="Unknown event name"):
        Event.resolve_by_type("no_such_event")
    events = [{"event": "action", "name": "action_listen"},
              {"event": "slot", "name": "order_id", "value": "12345"}]
    from rasa.shared.core.events import deserialise_events

    assert [type(e) for e in deserialise_events(events)] == [ActionExecuted, SlotSet]


class RecordingProcessor:
    """Stands in for Rasa's MessageProcessor: records when each turn runs."""

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.started: list[str] = []

    async def handle_message(self, message):
        self.running += 1
        self.most = max(self.most, self.running)
        self.started.append(message.text)
        await asyncio.sleep(0.01)
        self.running -= 1
        return [message.text]


class ReadyAgent:
    """What the queue uses of Rasa's Agent: readiness, the lock store, the processor."""

    def __init__(self) -> None:
        from rasa.core.lock_store import InMemoryLockStore

        self.lock_store = InMemoryLockStore()
        self.processor = RecordingProcessor()

    def is_ready(self) -> bool:
        return True


@pytest.fixture
def agent(monkeypatch: pytest.MonkeyPatch) -> ReadyAgent:
    from rasa.core.agent import Agent

    monkeypatch.setattr(Agent, "handle_message", Agent.handle_message)  # restored after
    return ReadyAgent()


def message(text: str, sender: str | None = None):
    from rasa.core.channels.channel import UserMessage

    return UserMessage(text, sender_id=sender or text)


async def test_turns_beyond_the_limit_wait_in_order(agent: ReadyAgent) -> None:
    from rasa.core.agent import Agent

    startup.admit_turns(2)
    texts = [f"customer {n}" for n in range(6)]
    replies = await asyncio.gather(*[Agent.handle_message(agent, message(t)) for t in texts])
    assert replies == [[t] for t in texts]
    assert agent.processor.most == 2
    assert agent.processor.started == texts  # first come, first served


async def test_a_turn_waiting_for_its_lock_takes_no_place(agent: ReadyAgent) -> None:
    from rasa.core.agent import Agent

    startup.admit_turns(1)
    held, release = asyncio.Event(), asyncio.Event()

    async def hold_the_lock() -> None:  # as a killed instance's lock would be
        async with agent.lock_store.lock("stuck"):
            held.set()
            await release.wait()

    holder = asyncio.create_task(hold_the_lock())
    await held.wait()
    stuck = asyncio.create_task(Agent.handle_message(agent, message("stuck")))
    await asyncio.sleep(0.05)
    others = await asyncio.wait_for(asyncio.gather(
        *[Agent.handle_message(agent, message(t)) for t in ("b", "c")]), timeout=5)
    assert others == [["b"], ["c"]]
    assert not stuck.done()
    release.set()
    assert await asyncio.wait_for(stuck, timeout=5) == ["stuck"]
    await holder


async def test_no_limit_restores_rasas_method(agent: ReadyAgent) -> None:
    from rasa.core.agent import Agent

    # Another test may have run the start-up hook in this process already.
    rasas = getattr(Agent.handle_message, "_unlimited", Agent.handle_message)
    startup.admit_turns(1)
    startup.admit_turns(3)  # wraps Rasa's method, not the first queue
    assert Agent.handle_message._unlimited is rasas
    startup.admit_turns(0)
    assert Agent.handle_message is rasas


@pytest.mark.parametrize(("value", "turns"), [("", startup.CONCURRENT_TURNS), ("0", 0),
                                              (" 8 ", 8)])
def test_concurrent_turns_from_the_environment(value: str, turns: int) -> None:
    assert startup.concurrent_turns({startup.TURNS_VARIABLE: value}) == turns
    assert startup.concurrent_turns({}) == startup.CONCURRENT_TURNS


@pytest.mark.parametrize("value", ["-1", "two", "2.5"])
def test_a_bad_concurrent_turns_names_the_variable(value: str) -> None:
    from rasa.shared.exceptions import InvalidConfigException

    with pytest.raises(InvalidConfigException, match=startup.TURNS_VARIABLE):
        startup.concurrent_turns({startup.TURNS_VARIABLE: value})


class Node:
    """A graph node as Rasa's runner calls it: ``(name, value)`` pairs in and out."""

    def __init__(self, name: str, calls: list[str], fail: Exception | None = None) -> None:
        self.name, self.calls, self.fail = name, calls, fail

    def __call__(self, *inputs: Any) -> tuple[str, Any]:
        self.calls.append(self.name)
        if self.fail is not None:
            raise self.fail
        return self.name, [self.name, *inputs]


@pytest.fixture
def runner_factory() -> Iterator[Callable[..., DaskGraphRunner]]:
    """Runners over a small schema without loading components; restores Rasa's run."""
    original = DaskGraphRunner.run

    def make(needs: dict[str, dict[str, str]], targets: set[str], calls: list[str],
             fail: dict[str, Exception] | None = None) -> DaskGraphRunner:
        runner = DaskGraphRunner.__new__(DaskGraphRunner)
        runner._graph_schema = GraphSchema({
            name: SchemaNode(needs=node_needs, uses=GraphComponent, constructor_name="create",
                             fn="process", config={}, is_target=name in targets)
            for name, node_needs in needs.items()})
        runner._execution_context = None
        runner._instantiated_nodes = {name: Node(name, calls, (fail or {}).get(name))
                                      for name in needs}
        return runner

    yield make
    DaskGraphRunner.run = original


# A diamond with an input, a node only one target needs and a need naming no node.
DIAMOND = {"a": {"x": "__message__"}, "b": {"x": "a"}, "c": {"x": "a", "y": "literal"},
           "d": {"x": "b", "y": "c"}, "unused": {"x": "a"}}


@pytest.mark.parametrize("targets", [None, ["d"], ["b", "c"], ["a"]])
def test_graphs_in_order_give_dasks_results(runner_factory: Callable[..., DaskGraphRunner],
                                            targets: list[str] | None) -> None:
    dask_calls: list[str] = []
    expected = runner_factory(DIAMOND, {"d"}, dask_calls).run({"__message__": "hi"}, targets)
    startup.run_graphs_in_order()
    startup.run_graphs_in_order()  # idempotent
    calls: list[str] = []
    runner = runner_factory(DIAMOND, {"d"}, calls)

    assert runner.run({"__message__": "hi"}, targets) == expected
    assert runner.run({"__message__": "hello"}, targets) != expected  # plan kept, not values
    assert sorted(calls) == sorted(dask_calls * 2)  # each node once per run, as dask does
    assert "unused" not in calls


def test_an_input_replaces_the_node_of_its_name(
        runner_factory: Callable[..., DaskGraphRunner]) -> None:
    inputs = {"__message__": "hi", "a": "given"}
    expected = runner_factory(DIAMOND, {"d"}, []).run(inputs)
    startup.run_graphs_in_order()
    calls: list[str] = []
    result = runner_factory(DIAMOND, {"d"}, calls).run(inputs)

    assert result == expected
    assert "a" not in calls
    assert result["d"][1] == ("b", ["b", ("a", "given")])


def test_graph_errors_are_raised_as_rasas(runner_factory: Callable[..., DaskGraphRunner]
                                          ) -> None:
    startup.run_graphs_in_order()
    with pytest.raises(GraphRunError, match="clashes with a node name"):
        runner_factory(DIAMOND, {"d"}, []).run({"__message__": "b"})
    with pytest.raises(ValueError, match="bad text"):  # a node's own error, unchanged
        runner_factory(DIAMOND, {"d"}, [], {"c": ValueError("bad text")}).run(
            {"__message__": "hi"})
    with pytest.raises(GraphRunError):
        runner_factory(DIAMOND, {"d"}, [], {"c": RuntimeError("boom")}).run(
            {"__message__": "hi"})
