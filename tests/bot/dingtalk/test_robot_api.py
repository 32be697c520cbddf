"""bot.dingtalk.robot_api: access tokens and one-to-one robot messages, against a local stub."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Callable
from typing import Any

import pytest

from bot.dingtalk.robot_api import (
    TOKEN_REFRESH_MARGIN_S,
    DingTalkRobotApi,
    is_allowed_api_base,
)
from tests.bot.dingtalk.conftest import (
    ACCESS_TOKEN,
    AGENT_TEXT,
    APP_KEY,
    SECRET,
    USER,
    Clock,
    FakeRobotApi,
    assert_no_secrets,
)

MakeApi = Callable[..., DingTalkRobotApi]


@pytest.fixture
def make_api(robot_api_stub: FakeRobotApi, clock: Clock) -> MakeApi:
    """Factory: a client of the stub API, on the test's clock."""

    def make(**options: Any) -> DingTalkRobotApi:
        options = {"api_base": robot_api_stub.origin, "timeout_s": 2.0, "clock": clock} | options
        return DingTalkRobotApi(APP_KEY, SECRET, **options)

    return make


@pytest.fixture(autouse=True)
def all_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


async def send(api: DingTalkRobotApi, text: str = AGENT_TEXT) -> bool:
    return await api.send_to_user(USER, "sampleText", {"content": text})


# --- allowed hosts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://api.dingtalk.com", True),
        ("https://api.dingtalk.com/", True),
        ("https://API.dingtalk.com:443", True),
        ("http://127.0.0.1:8080", True),
        ("https://127.0.0.2", True),
        ("http://[::1]:9000", True),
        ("http://api.dingtalk.com", False),
        ("https://api.dingtalk.com/v1.0", False),
        ("https://api.dingtalk.com?x=1", False),
        ("https://api.dingtalk.com.example.org", False),
        ("https://user:pw@api.dingtalk.com", False),
        ("https://oapi.dingtalk.com", False),
        ("http://localhost:8080", False),  # names could resolve anywhere
        ("http://10.0.0.1", False),
        ("http://169.254.169.254", False),
        ("http://user@127.0.0.1:8080", False),
        ("http://127.0.0.1:port", False),
        ("ftp://127.0.0.1", False),
        ("", False),
    ],
)
def test_is_allowed_api_base(url: str, allowed: bool) -> None:
    assert is_allowed_api_base(url) is allowed


def test_another_host_is_refused_before_any_secret_is_sent() -> None:
    with pytest.raises(ValueError, match="attacker"):
        DingTalkRobotApi(APP_KEY, SECRET, api_base="https://attacker.example")


def test_the_repr_hides_the_secret() -> None:
    assert SECRET not in repr(DingTalkRobotApi(APP_KEY, SECRET))


# --- sending ---------------------------------------------------------------------------------


async def test_a_message_is_sent_with_a_token(make_api: MakeApi,
                                              robot_api_stub: FakeRobotApi) -> None:
    assert await send(make_api())

    assert robot_api_stub.token_requests == [{"appKey": APP_KEY, "appSecret": SECRET}]
    [(token, sent)] = robot_api_stub.sends
    assert token == f"{ACCESS_TOKEN}-1"
    assert sent == {"robotCode": APP_KEY, "userIds": [USER], "msgKey": "sampleText",
                    "msgParam": json.dumps({"content": AGENT_TEXT})}


async def test_chinese_text_arrives_unchanged(make_api: MakeApi,
                                              robot_api_stub: FakeRobotApi) -> None:
    text = "您好，退款已原路返回。\n\"订单\" 12345"

    assert await send(make_api(), text)

    assert json.loads(robot_api_stub.sends[0][1]["msgParam"]) == {"content": text}


async def test_the_robot_code_can_differ_from_the_app_key(
        make_api: MakeApi, robot_api_stub: FakeRobotApi) -> None:
    await send(make_api(robot_code="dingrobot999"))

    assert robot_api_stub.sends[0][1]["robotCode"] == "dingrobot999"


async def test_the_token_is_fetched_once_and_cached(make_api: MakeApi,
                                                    robot_api_stub: FakeRobotApi) -> None:
    api = make_api()

    assert await send(api) and await send(api)
    assert all(await asyncio.gather(*(send(api) for _ in range(3))))

    assert len(robot_api_stub.token_requests) == 1
    assert {token for token, _ in robot_api_stub.sends} == {f"{ACCESS_TOKEN}-1"}


@pytest.mark.parametrize(("expire_in", "margin"),
                         [(7200, TOKEN_REFRESH_MARGIN_S), (120, 60)],
                         ids=["usual", "short-lived"])
async def test_the_token_is_refreshed_shortly_before_it_expires(
        make_api: MakeApi, robot_api_stub: FakeRobotApi, clock: Clock,
        expire_in: int, margin: float) -> None:
    robot_api_stub.expire_in = expire_in
    api = make_api()
    start = clock.now

    await send(api)
    clock.now = start + expire_in - margin - 1
    await send(api)
    clock.now = start + expire_in - margin
    await send(api)

    assert len(robot_api_stub.token_requests) == 2
    assert [token for token, _ in robot_api_stub.sends] == [
        f"{ACCESS_TOKEN}-1", f"{ACCESS_TOKEN}-1", f"{ACCESS_TOKEN}-2"]


async def test_a_refused_token_is_replaced_once(make_api: MakeApi,
                                                robot_api_stub: FakeRobotApi) -> None:
    robot_api_stub.refuse_tokens = {f"{ACCESS_TOKEN}-1"}
    api = make_api()

    assert await send(api)

    assert [token for token, _ in robot_api_stub.sends] == [f"{ACCESS_TOKEN}-1",
                                                            f"{ACCESS_TOKEN}-2"]


async def test_a_token_refused_twice_is_a_failure_not_a_loop(
        make_api: MakeApi, robot_api_stub: FakeRobotApi,
        caplog: pytest.LogCaptureFixture) -> None:
    robot_api_stub.refuse_tokens = {f"{ACCESS_TOKEN}-1", f"{ACCESS_TOKEN}-2"}

    assert not await send(make_api())

    assert len(robot_api_stub.sends) == 2
    assert "HTTP 401 code=InvalidAuthentication requestid=r-401" in caplog.text
    assert_no_secrets(caplog)


# --- failures: logged, not raised ------------------------------------------------------------


def _token_refused(stub: FakeRobotApi) -> None:
    stub.token_status = 400
    stub.token_reply = {"code": "invalidClientIdOrSecret", "requestid": "r-1",
                        "message": f"无效的appSecret {SECRET}"}


def _token_malformed(stub: FakeRobotApi) -> None:
    stub.token_reply = {"accessToken": "", "expireIn": 7200}


def _permission_missing(stub: FakeRobotApi) -> None:
    stub.send_status = 403
    stub.send_reply = {"code": "Forbidden.AccessDenied.AccessTokenPermissionDenied",
                       "requestid": "r-2", "message": f"no permission for {AGENT_TEXT}"}


def _user_invalid(stub: FakeRobotApi) -> None:
    stub.send_reply = {"processQueryKey": "pqk", "invalidStaffIdList": [USER],
                       "flowControlledStaffIdList": []}


def _user_flow_controlled(stub: FakeRobotApi) -> None:
    stub.send_reply = {"processQueryKey": "pqk", "invalidStaffIdList": [],
                       "flowControlledStaffIdList": [USER]}


def _send_hangs(stub: FakeRobotApi) -> None:
    stub.hang = True


@pytest.mark.parametrize(
    ("break_it", "logged"),
    [
        (_token_refused, "HTTP 400 code=invalidClientIdOrSecret requestid=r-1"),
        (_token_malformed, "refused an access token request: HTTP 200"),
        (_permission_missing, "HTTP 403 code=Forbidden.AccessDenied.AccessTokenPermissionDenied"),
        (_user_invalid, "the user is in invalidStaffIdList"),
        (_user_flow_controlled, "the user is in flowControlledStaffIdList"),
        (_send_hangs, "TimeoutError"),
    ],
    ids=["token-refused", "token-malformed", "permission-missing", "invalid-user",
         "flow-controlled", "timeout"],
)
async def test_a_failing_api_is_logged_not_raised(
        make_api: MakeApi, robot_api_stub: FakeRobotApi, caplog: pytest.LogCaptureFixture,
        break_it: Callable[[FakeRobotApi], None], logged: str) -> None:
    break_it(robot_api_stub)

    # Short only where it must expire: a loaded machine answers slowly.
    assert not await send(make_api(timeout_s=0.3 if robot_api_stub.hang else 2.0))

    assert logged in caplog.text
    assert_no_secrets(caplog)


async def test_a_failed_token_request_is_retried_on_the_next_send(
        make_api: MakeApi, robot_api_stub: FakeRobotApi) -> None:
    _token_refused(robot_api_stub)
    api = make_api()
    assert not await send(api)

    robot_api_stub.token_status, robot_api_stub.token_reply = 200, None

    assert await send(api)
    assert len(robot_api_stub.token_requests) == 2


async def test_an_unreachable_api_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:  # a free port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    api = DingTalkRobotApi(APP_KEY, SECRET, api_base=f"http://127.0.0.1:{port}", timeout_s=2.0)

    assert not await send(api)

    assert "ClientConnectorError" in caplog.text
    assert_no_secrets(caplog)
