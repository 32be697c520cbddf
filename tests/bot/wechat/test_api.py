"""The access token (cached, renewed, refreshed once when refused) and the send API,
against a loopback stand-in of WeChat's endpoints."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.wechat.api import WeChatApi
from tests.bot.wechat.conftest import (
    ACCESS_TOKEN,
    APP_ID,
    APP_SECRET,
    NOW,
    OPENID,
    Clock,
    FakeWeChatApi,
    assert_no_secrets,
)


@pytest.fixture
def api(wechat_api: FakeWeChatApi, clock: Clock) -> WeChatApi:
    return WeChatApi(APP_ID, APP_SECRET, api_base=wechat_api.origin, timeout_s=2.0,
                     clock=clock)


async def test_a_text_goes_out_with_a_fetched_token(api: WeChatApi,
                                                    wechat_api: FakeWeChatApi) -> None:
    assert await api.send_text(OPENID, "订单48213正在备货。") is True

    assert wechat_api.token_requests == [{"grant_type": "client_credential", "appid": APP_ID,
                                          "secret": APP_SECRET}]
    assert wechat_api.sends == [(f"{ACCESS_TOKEN}-1", {
        "touser": OPENID, "msgtype": "text", "text": {"content": "订单48213正在备货。"}})]
    # UTF-8, not JSON escapes: WeChat shows \\u escapes literally in some clients.
    assert "订单48213".encode() in wechat_api.raw_sends[0]


async def test_the_token_is_cached_and_renewed_before_it_expires(
        api: WeChatApi, wechat_api: FakeWeChatApi, clock: Clock) -> None:
    await api.send_text(OPENID, "one")
    clock.now = NOW + 7200 - 301  # 5 minutes before expiry: still the cached one
    await api.send_text(OPENID, "two")
    clock.now = NOW + 7200 - 299  # within the margin: a new one
    await api.send_text(OPENID, "three")

    assert [token for token, _ in wechat_api.sends] == [
        f"{ACCESS_TOKEN}-1", f"{ACCESS_TOKEN}-1", f"{ACCESS_TOKEN}-2"]
    assert len(wechat_api.token_requests) == 2


@pytest.mark.parametrize("errcode", [40001, 40014, 42001])
async def test_a_refused_token_is_replaced_once(api: WeChatApi, wechat_api: FakeWeChatApi,
                                                errcode: int) -> None:
    await api.send_text(OPENID, "one")
    wechat_api.send_errcodes = [errcode]

    assert await api.send_text(OPENID, "two") is True
    assert [token for token, _ in wechat_api.sends] == [
        f"{ACCESS_TOKEN}-1", f"{ACCESS_TOKEN}-1", f"{ACCESS_TOKEN}-2"]
    assert await api.send_text(OPENID, "three") is True  # the new one is kept
    assert len(wechat_api.token_requests) == 2


async def test_a_token_refused_twice_drops_the_message_without_looping(
        api: WeChatApi, wechat_api: FakeWeChatApi, caplog: pytest.LogCaptureFixture) -> None:
    wechat_api.send_errcodes = [40001, 40001, 40001]

    with caplog.at_level(logging.WARNING, logger="bot.wechat"):
        assert await api.send_text(OPENID, "hi") is False

    assert len(wechat_api.sends) == 2 and len(wechat_api.token_requests) == 2
    assert "errcode=40001" in caplog.text
    assert_no_secrets(caplog, "hi")


@pytest.mark.parametrize(
    ("errcode", "hint"),
    [(45015, "48 hours"), (48001, "permission"), (45047, "too many")],
)
async def test_a_refused_message_is_logged_with_a_hint(
        api: WeChatApi, wechat_api: FakeWeChatApi, caplog: pytest.LogCaptureFixture,
        errcode: int, hint: str) -> None:
    wechat_api.send_errcodes = [errcode]

    with caplog.at_level(logging.WARNING, logger="bot.wechat"):
        assert await api.send_text(OPENID, "hi") is False

    assert f"errcode={errcode}" in caplog.text and hint in caplog.text
    assert len(wechat_api.token_requests) == 1  # not a token problem: no new token


@pytest.mark.parametrize(
    ("reply", "hint"),
    [({"errcode": 40164, "errmsg": "invalid ip 1.2.3.4, not in whitelist"}, "allow-list"),
     ({"errcode": 40125, "errmsg": "invalid appsecret"}, "wrong app_secret"),
     ({"access_token": "", "expires_in": 7200}, ""),
     ({"access_token": "t", "expires_in": "7200"}, "")],
)
async def test_no_token_means_no_send(api: WeChatApi, wechat_api: FakeWeChatApi,
                                      caplog: pytest.LogCaptureFixture, reply: dict,
                                      hint: str) -> None:
    wechat_api.token_reply = reply

    with caplog.at_level(logging.WARNING, logger="bot.wechat"):
        assert await api.send_text(OPENID, "hi") is False

    assert wechat_api.sends == []
    assert hint in caplog.text and "no access token" in caplog.text
    assert "1.2.3.4" not in caplog.text
    assert_no_secrets(caplog)


async def test_concurrent_sends_fetch_one_token(api: WeChatApi,
                                                wechat_api: FakeWeChatApi) -> None:
    results = await asyncio.gather(*(api.send_text(OPENID, str(n)) for n in range(5)))

    assert results == [True] * 5
    assert len(wechat_api.token_requests) == 1


async def test_a_hanging_api_times_out(wechat_api: FakeWeChatApi, clock: Clock,
                                       caplog: pytest.LogCaptureFixture) -> None:
    api = WeChatApi(APP_ID, APP_SECRET, api_base=wechat_api.origin, timeout_s=0.3, clock=clock)
    wechat_api.hang = True

    with caplog.at_level(logging.WARNING, logger="bot.wechat"):
        assert await api.send_text(OPENID, "hi") is False

    assert "failed: " in caplog.text and "Timeout" in caplog.text
    assert_no_secrets(caplog)


async def test_an_unreachable_api_is_a_logged_failure(caplog: pytest.LogCaptureFixture) -> None:
    api = WeChatApi(APP_ID, APP_SECRET, api_base="http://127.0.0.1:9", timeout_s=2.0)

    with caplog.at_level(logging.WARNING, logger="bot.wechat"):
        assert await api.send_text(OPENID, "hi") is False

    assert "an access token request to 127.0.0.1 failed" in caplog.text
    assert_no_secrets(caplog)


def test_the_app_secret_goes_to_wechat_or_loopback_only() -> None:
    with pytest.raises(ValueError, match="not WeChat's API"):
        WeChatApi(APP_ID, APP_SECRET, api_base="https://api.weixin.qq.com.evil.example")
    assert APP_SECRET not in repr(WeChatApi(APP_ID, APP_SECRET))
