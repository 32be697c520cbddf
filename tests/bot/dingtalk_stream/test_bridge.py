"""The bridge process (``.venv-stream``, DingTalk's real SDK) between a stand-in of
DingTalk's Stream gateway and the real channel in front of a stand-in agent.

Everything is on 127.0.0.1: the SDK opens its connection at the stand-in
(``DINGTALK_STREAM_API_BASE``), gets robot messages as ``CALLBACK`` frames, and replies
at the stand-in's ``sessionWebhook``. tests/bot/dingtalk_stream/test_served.py does the
same against the real served assistant.
"""

from __future__ import annotations

import ast
import asyncio
import json
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from rasa.core.channels.channel import UserMessage

from bot.dingtalk_stream.forward import FAILURE_REPLY
from tests.bot.dingtalk_stream import conftest
from tests.bot.dingtalk_stream.conftest import (
    APP_KEY,
    APP_SECRET,
    BOT_TOPIC,
    BRIDGE_SECRET,
    ROOT,
    Bridge,
    DingTalkStandIn,
    ServedChannel,
    robot_message,
    stream_python,
)
from tests.served import free_port

StartChannel = Callable[..., Awaitable[ServedChannel]]
StartBridge = Callable[..., Bridge]


def failure_reply(staff: str) -> dict:
    """:data:`FAILURE_REPLY` as the SDK's ``reply_text`` POSTs it."""
    return {"msgtype": "text", "text": {"content": FAILURE_REPLY}, "at": {"atUserIds": [staff]}}


async def connect(dingtalk: DingTalkStandIn, bridge: Bridge) -> None:
    try:
        await dingtalk.connected(timeout_s=60)
    except AssertionError:
        raise AssertionError("the bridge did not connect; its log:\n" + bridge.output()) from None


async def test_a_robot_message_goes_to_rasa_and_its_reply_to_the_session_webhook(
        dingtalk: DingTalkStandIn, stream_channel: StartChannel,
        start_bridge: StartBridge) -> None:
    served = await stream_channel()
    bridge = start_bridge(dingtalk.origin, served.url)
    await connect(dingtalk, bridge)

    # The connection was opened with the app's credentials, for robot messages.
    [opened] = dingtalk.open_requests
    assert (opened["clientId"], opened["clientSecret"]) == (APP_KEY, APP_SECRET)
    assert opened["subscriptions"] == [{"type": "CALLBACK", "topic": BOT_TOPIC}]
    # DingTalk's keep-alive: a SYSTEM ping is ACKed with its data.
    ping = await dingtalk.send_frame("SYSTEM", "ping", {"opaque": "ping-1"})
    assert json.loads((await dingtalk.ack(ping, 30))["data"]) == {"opaque": "ping-1"}

    message = robot_message("where is my order 48213?", senderStaffId="staff-1",
                            sessionWebhook=dingtalk.session_webhook)
    frame = await dingtalk.deliver(message)
    ack = await dingtalk.ack(frame, 30)

    assert (ack["code"], ack["headers"]["messageId"]) == (200, frame)
    assert dingtalk.replies == [{"msgtype": "text",
                                 "text": {"content": "You said: where is my order 48213?"},
                                 "at": {"atUserIds": ["staff-1"]}}]
    [received] = served.received
    assert (received.sender_id, received.message_id) == ("dingtalk:staff-1", message["msgId"])
    assert received.metadata["verified_identity"] == {"channel": "dingtalk",
                                                      "external_id": "staff-1"}
    # No secret, and not the connection's ticket, reaches the bridge's log.
    assert "endpoint is" in bridge.output()
    for secret in (APP_SECRET, BRIDGE_SECRET, dingtalk.ticket):
        assert secret not in bridge.output()


async def test_markdown_replies_go_out_as_markdown(
        dingtalk: DingTalkStandIn, stream_channel: StartChannel,
        start_bridge: StartBridge) -> None:
    async def agent(message: UserMessage) -> None:
        await message.output_channel.send_response(message.sender_id, {
            "text": "Pick one", "buttons": [{"title": "Track", "payload": "/t"}]})
        await message.output_channel.send_response(message.sender_id,
                                                   {"image": "https://shop.example/a.png"})

    served = await stream_channel(agent)
    await connect(dingtalk, start_bridge(dingtalk.origin, served.url))

    await dingtalk.ack(await dingtalk.deliver(robot_message(
        "help", senderStaffId="staff-2", sessionWebhook=dingtalk.session_webhook)), 30)

    assert dingtalk.replies == [
        {"msgtype": "text", "text": {"content": "Pick one\n• Track"},
         "at": {"atUserIds": ["staff-2"]}},
        {"msgtype": "markdown", "markdown": {"title": "image",
                                             "text": "![image](https://shop.example/a.png)"},
         "at": {"atUserIds": ["staff-2"]}}]


async def test_a_message_delivered_twice_is_answered_once(
        dingtalk: DingTalkStandIn, stream_channel: StartChannel,
        start_bridge: StartBridge) -> None:
    served = await stream_channel()
    await connect(dingtalk, start_bridge(dingtalk.origin, served.url))
    message = robot_message("hi", senderStaffId="staff-3",
                            sessionWebhook=dingtalk.session_webhook)

    first = await dingtalk.deliver(message)
    await dingtalk.ack(first, 30)
    again = await dingtalk.deliver(message)  # DingTalk's redelivery of a late ACK

    assert (await dingtalk.ack(again, 30))["code"] == 200
    assert len(dingtalk.replies) == 1 and len(served.received) == 1


async def test_a_down_rasa_gets_the_user_a_polite_line(
        dingtalk: DingTalkStandIn, start_bridge: StartBridge) -> None:
    bridge = start_bridge(dingtalk.origin,
                          f"http://127.0.0.1:{free_port()}/webhooks/dingtalk_stream/message")
    await connect(dingtalk, bridge)

    frame = await dingtalk.deliver(robot_message(
        "hello?", senderStaffId="staff-4", sessionWebhook=dingtalk.session_webhook))

    assert (await dingtalk.ack(frame, 30))["code"] == 200
    assert dingtalk.replies == [failure_reply("staff-4")]
    assert "no answer from Rasa" in bridge.output()


async def test_a_slow_rasa_gets_the_user_a_polite_line(
        dingtalk: DingTalkStandIn, stream_channel: StartChannel,
        start_bridge: StartBridge) -> None:
    release = asyncio.Event()

    async def stuck(message: UserMessage) -> None:
        await release.wait()

    served = await stream_channel(stuck)
    bridge = start_bridge(dingtalk.origin, served.url, DINGTALK_STREAM_TIMEOUT_S="1")
    await connect(dingtalk, bridge)

    frame = await dingtalk.deliver(robot_message(
        "hello?", senderStaffId="staff-5", sessionWebhook=dingtalk.session_webhook))

    assert (await dingtalk.ack(frame, 30))["code"] == 200
    release.set()
    assert dingtalk.replies == [failure_reply("staff-5")]
    assert "no answer within 1 s" in bridge.output()


async def test_a_bridge_with_the_wrong_secret_is_refused_and_says_why(
        dingtalk: DingTalkStandIn, stream_channel: StartChannel,
        start_bridge: StartBridge) -> None:
    served = await stream_channel()
    bridge = start_bridge(dingtalk.origin, served.url,
                          DINGTALK_STREAM_BRIDGE_SECRET="a different secret, 32 bytes long!")
    await connect(dingtalk, bridge)

    frame = await dingtalk.deliver(robot_message(
        "where is my order 48213?", senderStaffId="staff-6",
        sessionWebhook=dingtalk.session_webhook))

    assert (await dingtalk.ack(frame, 30))["code"] == 200
    assert served.received == []
    assert dingtalk.replies == [failure_reply("staff-6")]
    assert "check that DINGTALK_STREAM_BRIDGE_SECRET equals Rasa's bridge_secret" \
        in bridge.output()


async def test_the_bridge_reconnects_when_dingtalk_closes_the_connection(
        dingtalk: DingTalkStandIn, stream_channel: StartChannel,
        start_bridge: StartBridge) -> None:
    served = await stream_channel()
    await connect(dingtalk, start_bridge(dingtalk.origin, served.url))

    await dingtalk._socket.close()  # noqa: SLF001 - DingTalk ends the connection
    await dingtalk.wait_for(lambda: dingtalk.connections == 2 and not dingtalk._socket.closed,
                            30, "second connection")
    frame = await dingtalk.deliver(robot_message(
        "still there?", senderStaffId="staff-8", sessionWebhook=dingtalk.session_webhook))

    assert (await dingtalk.ack(frame, 30))["code"] == 200
    assert len(dingtalk.open_requests) == 2
    assert [reply["text"]["content"] for reply in dingtalk.replies] == [
        "You said: still there?"]


# --- its environment and its settings --------------------------------------------------------

def imports(module: str) -> set[str]:
    """The modules a file of bot/dingtalk_stream/ imports (statically, lazy ones too)."""
    tree = ast.parse((ROOT / "bot" / "dingtalk_stream" / f"{module}.py").read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize(("module", "allowed"), [
    ("bridge", {"dingtalk_stream", "bot.dingtalk_stream.forward", "bot.dingtalk_stream.signing"}),
    ("forward", {"aiohttp", "bot.dingtalk_stream.signing"}),
    ("signing", set()),
    ("__init__", set()),
])
def test_the_bridges_modules_import_the_standard_library_and_their_own_env_only(
        module: str, allowed: set[str]) -> None:
    foreign = {name for name in imports(module)
               if name.split(".")[0] not in sys.stdlib_module_names and name not in allowed}

    assert foreign == set()


def test_the_rasa_channel_never_imports_the_sdk() -> None:
    assert not {name for name in imports("channel")
                if name.split(".")[0] == "dingtalk_stream" or name.endswith(".bridge")}


def test_a_missing_bridge_environment_fails_and_says_how_to_build_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(conftest, "STREAM_PYTHON", tmp_path / "no-venv" / "bin" / "python")

    with pytest.raises(pytest.fail.Exception, match="run `make dingtalk-stream`"):
        conftest.stream_python()


def test_the_bridge_imports_neither_rasa_nor_the_actions() -> None:
    modules = subprocess.run(
        [str(stream_python()), "-c", "import json, sys, bot.dingtalk_stream.bridge; "
         "import aiohttp, websockets; "
         "print(json.dumps([sorted(sys.modules), aiohttp.__version__]))"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert modules.returncode == 0, modules.stderr
    names, aiohttp_version = json.loads(modules.stdout)

    ours = [n for n in names if n.split(".")[0] in {"rasa", "rasa_sdk", "actions", "sanic",
                                                    "cs_core"}
            or n == "bot.dingtalk" or n.startswith("bot.dingtalk.")]
    assert ours == []
    # Its own environment: the SDK's aiohttp, which Rasa's pins refuse.
    assert tuple(int(part) for part in aiohttp_version.split(".")[:2]) >= (3, 10)


@pytest.mark.parametrize(("change", "expected"), [
    ({"DINGTALK_APP_KEY": ""}, "DINGTALK_APP_KEY is not set"),
    ({"DINGTALK_APP_SECRET": None}, "DINGTALK_APP_SECRET is not set"),
    ({"DINGTALK_STREAM_BRIDGE_SECRET": "short-bridge-secret"},
     "DINGTALK_STREAM_BRIDGE_SECRET cannot be used: it has 19 bytes, fewer than 32"),
    ({"DINGTALK_STREAM_RASA_URL": "http://rasa.internal:5005/webhooks/dingtalk_stream/message"},
     "DINGTALK_STREAM_RASA_URL must be http:// on a loopback address or https://"),
    ({"DINGTALK_STREAM_API_BASE": "https://api.dingtalk.com.evil.example"},
     "DINGTALK_STREAM_API_BASE must be https://api.dingtalk.com"),
    ({"DINGTALK_STREAM_TIMEOUT_S": "-1"}, "DINGTALK_STREAM_TIMEOUT_S must be a positive"),
], ids=["no-key", "no-secret", "short-bridge-secret", "remote-http", "api-base", "timeout"])
def test_a_bad_setting_stops_the_bridge_with_a_message(change: dict, expected: str) -> None:
    environ = {"PATH": "/usr/bin:/bin", "DINGTALK_APP_KEY": APP_KEY,
               "DINGTALK_APP_SECRET": APP_SECRET, "DINGTALK_STREAM_BRIDGE_SECRET": BRIDGE_SECRET}
    environ = {k: v for k, v in (environ | change).items() if v is not None}

    run = subprocess.run([str(stream_python()), "-m", "bot.dingtalk_stream.bridge"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, env=environ)

    assert run.returncode == 2, run.stdout + run.stderr
    assert expected in run.stderr
    assert "short-bridge-secret" not in run.stderr and APP_SECRET not in run.stderr
