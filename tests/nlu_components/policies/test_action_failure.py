"""ActionFailurePolicy: trackers built from events, and Rasa's real RemoteAction
against a loopback action server that is slow or answers 500."""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import rasa.core.actions.action as rasa_action
from aiohttp import web
from rasa.engine.storage.resource import Resource
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import InvalidConfigException, RasaException
from rasa.utils.endpoints import EndpointConfig

from nlu_components import ActionFailurePolicy, startup
from nlu_components.policies.action_failure import failed_action, judged_actions
from tests.served import serve_on_loopback

DOMAIN_YAML = """
version: "3.1"
intents: [order_status, complaint]
slots:
  order_id:
    type: text
    mappings:
      - type: from_text
forms:
  complaint_form:
    required_slots: [order_id]
actions: [action_order_status, action_quiet, validate_complaint_form]
responses:
  utter_greet: [{text: hi}]
  utter_action_failed: [{text: "sorry, that failed"}]
"""


def _domain(data: dict | None = None) -> Domain:
    # Rasa 3.6 warns "slot auto-fill has been removed" on every domain it builds.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return Domain.from_dict(data) if data else Domain.from_yaml(DOMAIN_YAML)


DOMAIN = _domain()
JUDGED = judged_actions(DOMAIN.user_actions, DOMAIN.form_names, ["action_quiet"])


@pytest.fixture(autouse=True)
def _restore_rasa_timeout(monkeypatch) -> Iterator[None]:
    # The start-up hook sets Rasa's module constant; put it back after each test.
    monkeypatch.setattr(rasa_action, "DEFAULT_REQUEST_TIMEOUT",
                        rasa_action.DEFAULT_REQUEST_TIMEOUT)
    # ... and its log masking, which is process-wide too.
    previous = logging.getLogRecordFactory()
    yield
    logging.setLogRecordFactory(previous)


@pytest.fixture
def make_policy(model_storage, execution_context):
    def make(**config: Any) -> ActionFailurePolicy:
        merged = {**ActionFailurePolicy.get_default_config(), **config}
        return ActionFailurePolicy.create(merged, model_storage, Resource("policy"),
                                          execution_context)
    return make


def test_judged_actions_are_custom_actions_and_forms() -> None:
    assert JUDGED == {"action_order_status", "complaint_form"}


def served(action: str) -> ActionExecuted:
    """An action as the processor logs it while serving: with the predicting policy."""
    return ActionExecuted(action, policy="RulePolicy", confidence=1.0)


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([], None),
        ([served("action_order_status")], "action_order_status"),
        ([served("complaint_form")], "complaint_form"),
        ([served("action_order_status"), BotUttered("order 12345 has shipped")], None),
        ([served("complaint_form"), SlotSet("requested_slot", "order_id")], None),
        ([served("utter_greet")], None),
        ([served("action_listen")], None),
        ([served("action_quiet")], None),  # listed in quiet_actions
        ([served("validate_complaint_form")], None),
        ([served("action_order_status"), BotUttered("x"),
          served("action_listen"), UserUttered("hi")], None),
        ([ActionExecuted("action_order_status")], None),  # run through /execute
    ],
)
def test_failed_action_table(events, expected) -> None:
    assert failed_action(events, JUDGED) == expected


def tracker_with(*events) -> DialogueStateTracker:
    start = [ActionExecuted("action_listen"), UserUttered("where is my order 12345",
                                                          intent={"name": "order_status"})]
    return DialogueStateTracker.from_events("customer", start + list(events), DOMAIN.slots)


def predicted(policy: ActionFailurePolicy, tracker: DialogueStateTracker) -> str | None:
    prediction = policy.predict_action_probabilities(tracker, DOMAIN)
    if max(prediction.probabilities) == 0:
        return None
    return DOMAIN.action_names_or_texts[prediction.max_confidence_index]


def test_a_failed_action_is_answered_then_the_bot_listens(make_policy) -> None:
    policy = make_policy()
    failed = tracker_with(served("action_order_status"))

    prediction = policy.predict_action_probabilities(failed, DOMAIN)

    assert predicted(policy, failed) == "utter_action_failed"
    assert prediction.policy_priority == 8 and prediction.is_no_user_prediction
    answered = tracker_with(served("action_order_status"),
                            served("utter_action_failed"), BotUttered("sorry"))
    assert predicted(policy, answered) == "action_listen"


@pytest.mark.parametrize("events", [
    [],  # right after the user message
    [served("action_order_status"), BotUttered("shipped")],
    [served("utter_greet"), BotUttered("hi")],
])
def test_abstains_when_nothing_failed(make_policy, events) -> None:
    assert predicted(make_policy(), tracker_with(*events)) is None


def test_stories_replayed_by_rasa_test_are_not_judged(make_policy) -> None:
    # `rasa test` replays story steps without running the actions; its trackers
    # carry the story file's name.
    tracker = tracker_with(served("action_order_status"))
    tracker.sender_source = "tests/stories/test_conversations.yml"

    assert predicted(make_policy(), tracker) is None


def test_quiet_actions_come_from_config(make_policy) -> None:
    tracker = tracker_with(served("action_order_status"))

    assert predicted(make_policy(quiet_actions=["action_order_status"]), tracker) is None


def test_creating_the_policy_leaves_rasas_action_timeout_alone(make_policy) -> None:
    before = rasa_action.DEFAULT_REQUEST_TIMEOUT
    make_policy(action_timeout=3)

    assert rasa_action.DEFAULT_REQUEST_TIMEOUT == before


@pytest.mark.parametrize("name", ["nlu_components.ActionFailurePolicy",
                                  "nlu_components.policies.ActionFailurePolicy"])
def test_the_startup_hook_sets_rasas_action_timeout_from_config(tmp_path, name) -> None:
    config = tmp_path / "config.yml"
    config.write_text(f"policies:\n  - name: RulePolicy\n  - name: {name}\n"
                      "    action_timeout: 3\n", encoding="utf-8")

    startup.install(config)

    assert rasa_action.DEFAULT_REQUEST_TIMEOUT == 3.0


def test_the_startup_hook_refuses_a_bad_timeout(tmp_path) -> None:
    config = tmp_path / "config.yml"
    config.write_text("policies:\n  - name: nlu_components.policies.ActionFailurePolicy\n"
                      "    action_timeout: 0\n", encoding="utf-8")

    with pytest.raises(InvalidConfigException, match="action_timeout"):
        startup.install(config)


def test_without_the_policy_the_startup_hook_keeps_rasas_wait(tmp_path) -> None:
    config = tmp_path / "config.yml"
    config.write_text("policies:\n  - name: RulePolicy\n", encoding="utf-8")
    before = rasa_action.DEFAULT_REQUEST_TIMEOUT

    startup.install(config)

    assert rasa_action.DEFAULT_REQUEST_TIMEOUT == before


@pytest.mark.parametrize(
    ("key", "value"),
    [("response", "action_sorry"), ("response", 5), ("action_timeout", 0),
     ("action_timeout", 301), ("action_timeout", "soon"), ("quiet_actions", "action_x"),
     ("priority", "8")])
def test_bad_config_names_key_and_value(make_policy, key, value) -> None:
    with pytest.raises(InvalidConfigException, match=key):
        make_policy(**{key: value})


def test_training_checks_the_domain_has_the_response(make_policy) -> None:
    domain = _domain({**DOMAIN.as_dict(), "responses": {"utter_greet": [{"text": "hi"}]}})

    with pytest.raises(InvalidConfigException, match="utter_action_failed"):
        make_policy().train([], domain)


# Rasa's own RemoteAction against a loopback action server: the failures the
# policy then answers (the served assistant does the whole turn, see
# tests/test_faults.py).

async def _serve(handler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/webhook", handler)
    runner, port = await serve_on_loopback(app)
    return runner, f"http://127.0.0.1:{port}/webhook"


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(30)
    return web.json_response({"events": [], "responses": []})


async def _broken(request: web.Request) -> web.Response:
    return web.Response(status=500, text="Internal Server Error")


@pytest.mark.parametrize("handler", [_slow, _broken], ids=["slow", "500"])
async def test_rasa_gives_up_on_the_action_server_within_the_timeout(make_policy,
                                                                     handler) -> None:
    startup.set_action_timeout(1)
    runner, url = await _serve(handler)
    action = rasa_action.RemoteAction("action_order_status", EndpointConfig(url))
    tracker = tracker_with()
    try:
        started = time.monotonic()
        with pytest.raises((RasaException, asyncio.TimeoutError)):
            await action.run(None, None, tracker, DOMAIN)
        assert time.monotonic() - started < 10
    finally:
        await runner.cleanup()
