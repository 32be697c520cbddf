"""The channel's settings: a bad credentials block stops Rasa at once, saying what to fix."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.utils.io import read_config_file

from bot.wechat.channel import WeChatInput
from bot.wechat.config import (
    DEFAULT_TIMESTAMP_WINDOW_S,
    WECHAT_API_BASE,
    WeChatConfig,
    is_allowed_api_base,
)
from tests.bot.wechat.conftest import AES_KEY, APP_ID, APP_SECRET, TOKEN
from tests.served import ROOT

IM_CREDENTIALS = ROOT / "credentials.im.yml"


def block(**changes: Any) -> dict[str, Any]:
    """A complete credentials block; ``None`` removes a key."""
    values = {"app_id": APP_ID, "app_secret": APP_SECRET, "token": TOKEN,
              "encoding_aes_key": AES_KEY} | changes
    return {key: value for key, value in values.items() if value is not None}


def test_a_complete_block_gives_safe_mode_on_wechats_api() -> None:
    settings = WeChatConfig.from_credentials(block())

    assert (settings.app_id, settings.app_secret, settings.token,
            settings.encoding_aes_key) == (APP_ID, APP_SECRET, TOKEN, AES_KEY)
    assert settings.safe and settings.mode == "safe"
    assert settings.api_base == WECHAT_API_BASE
    assert settings.timestamp_window_s == DEFAULT_TIMESTAMP_WINDOW_S
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.token = "other"  # type: ignore[misc]


def test_the_repr_shows_no_secret() -> None:
    shown = repr(WeChatConfig.from_credentials(block()))

    assert APP_ID in shown
    assert all(secret not in shown for secret in (APP_SECRET, TOKEN, AES_KEY))


def test_plain_mode_is_chosen_explicitly_and_needs_no_aes_key() -> None:
    settings = WeChatConfig.from_credentials(block(mode="plain", encoding_aes_key=None))

    assert not settings.safe and settings.encoding_aes_key is None


@pytest.mark.parametrize("key", ["app_id", "app_secret", "token", "encoding_aes_key"])
@pytest.mark.parametrize("value", [None, "", "   "], ids=["missing", "empty", "blank"])
def test_a_missing_value_names_the_key_and_the_variable(key: str, value: Any) -> None:
    with pytest.raises(InvalidConfigException) as refused:
        WeChatConfig.from_credentials(block(**{key: value}))

    message = str(refused.value)
    assert f"'{key}'" in message and "bot.wechat.WeChatInput" in message
    assert f"${{WECHAT_{key.upper()}}}" in message
    assert ("missing" if value is None else "empty") in message


@pytest.mark.parametrize(
    ("changes", "key", "shown"),
    [({"app_id": "gh_0123456789ab"}, "app_id", "'gh_0123456789ab'"),
     ({"mode": "compatible"}, "mode", "'compatible'"),
     ({"api_base": "https://api.weixin.qq.com.evil.example"}, "api_base",
      "'https://api.weixin.qq.com.evil.example'"),
     ({"send_timeout_s": 0}, "send_timeout_s", "0"),
     ({"timestamp_window_s": "soon"}, "timestamp_window_s", "'soon'"),
     ({"dedupe_cache_size": 2.5}, "dedupe_cache_size", "2.5")],
)
def test_a_malformed_value_names_the_key_and_the_value(changes: dict[str, Any], key: str,
                                                       shown: str) -> None:
    with pytest.raises(InvalidConfigException) as refused:
        WeChatConfig.from_credentials(block(**changes))

    assert f"'{key}' is {shown}:" in str(refused.value)
    assert "Fix it under `bot.wechat.WeChatInput:`" in str(refused.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [("token", "has spaces in it"), ("token", "ab"), ("encoding_aes_key", AES_KEY[:-1]),
     ("encoding_aes_key", AES_KEY[:-1] + "!"), ("app_secret", "two words")],
)
def test_a_malformed_secret_is_named_by_its_length_only(key: str, value: str) -> None:
    with pytest.raises(InvalidConfigException) as refused:
        WeChatConfig.from_credentials(block(**{key: value}))

    message = str(refused.value)
    assert f"'{key}' is a {len(value)}-character value (not shown)" in message
    assert value not in message


def test_an_empty_block_is_refused_not_an_attribute_error() -> None:
    with pytest.raises(InvalidConfigException, match="'app_id' is missing"):
        WeChatInput.from_credentials(None)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [("https://api.weixin.qq.com", True), ("https://api2.weixin.qq.com/", True),
     ("https://sh.api.weixin.qq.com", True), ("http://127.0.0.1:8080", True),
     ("http://[::1]:9000", True), ("http://api.weixin.qq.com", False),
     ("https://api.weixin.qq.com:8443", False), ("https://api.weixin.qq.com/cgi-bin", False),
     ("https://user@api.weixin.qq.com", False), ("http://localhost:8080", False),
     ("http://10.0.0.1", False), ("https://api.weixin.qq.com?x=1", False),
     ("http://127.0.0.1:port", False), ("ftp://127.0.0.1", False)],
)
def test_the_app_secret_goes_to_wechat_or_loopback_only(url: str, allowed: bool) -> None:
    assert is_allowed_api_base(url) is allowed


def test_the_credentials_im_block_reads_every_secret_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    values = {"WECHAT_APP_ID": APP_ID, "WECHAT_APP_SECRET": APP_SECRET,
              "WECHAT_TOKEN": TOKEN, "WECHAT_ENCODING_AES_KEY": AES_KEY}
    for variable in re.findall(r"\$\{([A-Z0-9_]+)\}", IM_CREDENTIALS.read_text()):
        monkeypatch.setenv(variable, "set-for-the-other-channels")
    for variable, value in values.items():
        monkeypatch.setenv(variable, value)

    credentials = read_config_file(IM_CREDENTIALS)
    channel = WeChatInput.from_credentials(credentials["bot.wechat.WeChatInput"])

    assert channel.config == WeChatConfig(app_id=APP_ID, app_secret=APP_SECRET, token=TOKEN,
                                          encoding_aes_key=AES_KEY)
