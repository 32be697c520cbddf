"""bot.dingtalk.push: messages without an incoming message (a human agent's replies),
through the recent sessionWebhook or the robot API, both played by local stubs."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.utils.common import class_from_module_path
from rasa.shared.utils.io import read_config_file

from bot.dingtalk.channel import DingTalkInput
from bot.dingtalk.push import DingTalkPushOutput
from bot.dingtalk.robot_api import DingTalkRobotApi
from bot.dingtalk.sessions import RecentWebhooks
from tests.bot.dingtalk.conftest import (
    ACCESS_TOKEN,
    AGENT_TEXT,
    APP_KEY,
    HOUR_MS,
    NOW_MS,
    PYKWALIFY_NOISE,
    SECRET,
    SESSION_TOKEN,
    USER,
    Clock,
    FakeRobotApi,
    FakeSendApi,
    Robot,
    assert_no_secrets,
    body,
)

SENDER = f"dingtalk:{USER}"


def agent_reply() -> dict[str, Any]:
    """A new Rasa response each time: OutputChannel.send_response pops its keys."""
    return {"text": AGENT_TEXT}


SENT_TEXT = {"msgtype": "text", "text": {"content": AGENT_TEXT}}
SENT_TEMPLATE = {"robotCode": APP_KEY, "userIds": [USER], "msgKey": "sampleText",
                 "msgParam": json.dumps({"content": AGENT_TEXT}, ensure_ascii=False)}

MakePush = Callable[..., DingTalkPushOutput]


@pytest.fixture(autouse=True)
def all_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


@pytest.fixture
def webhooks() -> RecentWebhooks:
    return RecentWebhooks()


@pytest.fixture
def make_push(webhooks: RecentWebhooks, robot_api_stub: FakeRobotApi,
              clock: Clock) -> MakePush:
    """Factory: a push output on the test's clock; with the stub robot API unless
    ``robot_api=False``."""

    def make(robot_api: bool = True) -> DingTalkPushOutput:
        api = (DingTalkRobotApi(APP_KEY, SECRET, api_base=robot_api_stub.origin,
                                timeout_s=2.0, clock=clock) if robot_api else None)
        return DingTalkPushOutput(webhooks, api, timeout_s=2.0, clock=clock)

    return make


# --- the route a message takes ---------------------------------------------------------------


async def test_a_recent_webhook_is_used(make_push: MakePush, webhooks: RecentWebhooks,
                                        send_api: FakeSendApi,
                                        robot_api_stub: FakeRobotApi) -> None:
    webhooks.remember(SENDER, send_api.url, NOW_MS + HOUR_MS)

    await make_push().send_response(SENDER, agent_reply())

    assert send_api.received == [SENT_TEXT]
    assert robot_api_stub.token_requests == [] and robot_api_stub.sends == []


async def test_an_expired_webhook_falls_back_to_the_robot_api(
        make_push: MakePush, webhooks: RecentWebhooks, send_api: FakeSendApi,
        robot_api_stub: FakeRobotApi, clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    webhooks.remember(SENDER, send_api.url, NOW_MS + HOUR_MS)
    clock.now += HOUR_MS / 1000

    await make_push().send_response(SENDER, agent_reply())

    assert send_api.received == []
    assert robot_api_stub.sends == [(f"{ACCESS_TOKEN}-1", SENT_TEMPLATE)]
    assert_no_secrets(caplog)


async def test_a_group_webhook_is_used_for_its_conversation(
        make_push: MakePush, webhooks: RecentWebhooks, send_api: FakeSendApi) -> None:
    group_sender = f"dingtalk:cidAbC+dEf==:{USER}"
    webhooks.remember(group_sender, send_api.url, NOW_MS + HOUR_MS)

    await make_push().send_response(group_sender, agent_reply())

    assert send_api.received == [SENT_TEXT]


async def test_images_go_as_markdown_through_the_robot_api(
        make_push: MakePush, robot_api_stub: FakeRobotApi) -> None:
    await make_push().send_response(SENDER, {"image": "https://example.org/p.png"})

    [(_, sent)] = robot_api_stub.sends
    assert (sent["msgKey"], json.loads(sent["msgParam"])) == (
        "sampleMarkdown", {"title": "image", "text": "![image](https://example.org/p.png)"})


@pytest.mark.parametrize(
    ("sender", "robot_api", "payload", "logged"),
    [
        (SENDER, False, SENT_TEXT, "no app_key for the robot API"),
        (f"dingtalk:cidAbC+dEf==:{USER}", True, SENT_TEXT, "only reaches single chats"),
        ("dingtalk:$:LWCP_v1:$abcdef", True, SENT_TEXT, "only reaches single chats"),
        (f"rest:{USER}", True, SENT_TEXT, "only reaches single chats"),
        (SENDER, True, {"msgtype": "actionCard", "actionCard": {"title": "t", "text": AGENT_TEXT}},
         "a actionCard message cannot go through the robot API"),
    ],
    ids=["no-credentials", "group", "outsider", "other-channel", "action-card"],
)
async def test_a_message_with_no_route_is_dropped_with_a_warning(
        make_push: MakePush, robot_api_stub: FakeRobotApi, send_api: FakeSendApi,
        caplog: pytest.LogCaptureFixture, sender: str, robot_api: bool,
        payload: dict[str, Any], logged: str) -> None:
    assert not await make_push(robot_api=robot_api).deliver(sender, payload)

    assert robot_api_stub.sends == [] and send_api.received == []
    [warning] = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert logged in warning.getMessage()
    assert_no_secrets(caplog)


async def test_without_credentials_a_rasa_response_is_dropped_not_raised(
        make_push: MakePush, caplog: pytest.LogCaptureFixture) -> None:
    await make_push(robot_api=False).send_response(
        SENDER, {"text": AGENT_TEXT, "buttons": [{"title": "Yes", "payload": "/affirm"}]})

    assert "no app_key for the robot API; text message dropped" in caplog.text
    assert_no_secrets(caplog)


async def test_a_failing_robot_api_is_logged_not_raised(
        make_push: MakePush, robot_api_stub: FakeRobotApi,
        caplog: pytest.LogCaptureFixture) -> None:
    robot_api_stub.send_status = 500
    robot_api_stub.send_reply = {"code": "ServiceUnavailable", "message": AGENT_TEXT}

    await make_push().send_response(SENDER, agent_reply())

    assert "HTTP 500 code=ServiceUnavailable" in caplog.text
    assert_no_secrets(caplog)


# --- the channel: its webhooks and its output channel ----------------------------------------


async def test_the_channel_remembers_webhooks_of_accepted_messages_only(
        robot: Callable[..., Awaitable[Robot]], send_api: FakeSendApi,
        robot_api_stub: FakeRobotApi, clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    bot = await robot(app_key=APP_KEY, api_base=robot_api_stub.origin, clock=clock)
    await bot.post(body(sessionWebhook=send_api.url))
    replies = len(send_api.received)
    # Neither a message for another robot nor a foreign webhook replaces the real one.
    await bot.post(body(robotCode="otherapp", sessionWebhook=send_api.url + "&other=1"))
    await bot.post(body(sessionWebhook="https://attacker.example/robot"))

    await bot.channel.get_output_channel().send_response(SENDER, agent_reply())
    clock.now += HOUR_MS / 1000
    await bot.channel.get_output_channel().send_response(SENDER, agent_reply())

    assert send_api.received[replies:] == [SENT_TEXT]
    assert send_api.queries[-1] == {"session": SESSION_TOKEN}
    assert robot_api_stub.sends == [(f"{ACCESS_TOKEN}-1", SENT_TEMPLATE)]
    assert_no_secrets(caplog)


@PYKWALIFY_NOISE
async def test_a_channel_built_from_credentials_pushes_through_the_robot_api(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, robot_api_stub: FakeRobotApi,
        caplog: pytest.LogCaptureFixture) -> None:
    # What `rasa run --credentials` does (rasa.core.run._create_single_channel).
    path = tmp_path / "credentials.im.yml"
    path.write_text("bot.dingtalk.DingTalkInput:\n"
                    "  app_secret: ${DINGTALK_APP_SECRET}\n"
                    "  app_key: ${DINGTALK_APP_KEY}\n"
                    f"  api_base: {robot_api_stub.origin}\n")
    monkeypatch.setenv("DINGTALK_APP_SECRET", SECRET)
    monkeypatch.setenv("DINGTALK_APP_KEY", APP_KEY)
    [(class_path, block)] = read_config_file(path).items()
    channel = class_from_module_path(class_path).from_credentials(block)

    output = channel.get_output_channel()
    await output.send_response(SENDER, agent_reply())

    assert isinstance(output, DingTalkPushOutput)
    assert robot_api_stub.token_requests == [{"appKey": APP_KEY, "appSecret": SECRET}]
    assert [sent for _, sent in robot_api_stub.sends] == [SENT_TEMPLATE]
    assert_no_secrets(caplog)


# Importing rasa.server loads sanic_cors, which warns about distutils at import time.
@pytest.mark.filterwarnings("ignore:distutils Version classes:DeprecationWarning")
async def test_rasa_sends_an_added_bot_event_through_the_push_output(
        robot_api_stub: FakeRobotApi) -> None:
    # What POST /conversations/<id>/tracker/events?output_channel=latest
    # &execute_side_effects=true does with a `bot` event (rasa/server.py).
    from rasa.core.processor import MessageProcessor
    from rasa.server import _get_output_channel

    channel = DingTalkInput.from_credentials({"app_secret": SECRET, "app_key": APP_KEY,
                                              "api_base": robot_api_stub.origin})
    request = SimpleNamespace(args={"output_channel": "latest"},
                              app=SimpleNamespace(ctx=SimpleNamespace(input_channels=[channel])))
    tracker = DialogueStateTracker.from_events(
        SENDER, [UserUttered("where is my refund?", input_channel="dingtalk")])
    events = [BotUttered(AGENT_TEXT, metadata={"agent": "wang"})]

    output = _get_output_channel(request, tracker)
    await MessageProcessor._send_bot_messages(events, tracker, output)  # noqa: SLF001

    assert isinstance(output, DingTalkPushOutput)
    assert [sent for _, sent in robot_api_stub.sends] == [SENT_TEMPLATE]


# --- credentials -----------------------------------------------------------------------------


def test_without_an_app_key_there_is_no_robot_api() -> None:
    channel = DingTalkInput.from_credentials({"app_secret": SECRET})

    assert channel.robot_api is None
    assert isinstance(channel.get_output_channel(), DingTalkPushOutput)


def test_the_robot_api_defaults_to_dingtalk() -> None:
    channel = DingTalkInput.from_credentials({"app_secret": SECRET, "app_key": APP_KEY})

    assert channel.robot_api is not None
    assert (channel.robot_api.api_base, channel.robot_api.robot_code) == (
        "https://api.dingtalk.com", APP_KEY)


@pytest.mark.parametrize("api_base", ["https://attacker.example", "http://api.dingtalk.com",
                                      "https://api.dingtalk.com/v1.0", 42,
                                      "http://localhost:8080"])
def test_from_credentials_refuses_another_api_base(api_base: Any) -> None:
    with pytest.raises(InvalidConfigException, match="api_base"):
        DingTalkInput.from_credentials({"app_secret": SECRET, "app_key": APP_KEY,
                                        "api_base": api_base})
