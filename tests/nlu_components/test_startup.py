"""The Rasa server's start-up hook: the turn's process-wide cuts (``tune_turn``)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction

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
    environ = {"OMP_NUM_THREADS": "4"}
    chosen = startup.limit_inference_threads(environ)
    assert environ["OMP_NUM_THREADS"] == "4"  # the operator's choice wins
    assert "OMP_NUM_THREADS" not in chosen
    for name in ("MKL_NUM_THREADS", "TF_INTRA_OP_PARALLELISM_THREADS",
                 "TF_INTER_OP_PARALLELISM_THREADS"):
        assert environ[name] == "1"
        assert name in chosen


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
