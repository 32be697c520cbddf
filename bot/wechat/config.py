"""The WeChat channel's settings: one frozen dataclass, checked when Rasa starts.

:meth:`WeChatConfig.from_credentials` reads the ``bot.wechat.WeChatInput:`` block of
a credentials file and refuses a bad one at once with Rasa's
``InvalidConfigException``, naming the key, the value (secrets only by their length)
and the fix, so that a typo stops ``rasa run`` instead of failing the first message.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from rasa.shared.exceptions import InvalidConfigException

CREDENTIALS_KEY = "bot.wechat.WeChatInput"

SAFE = "safe"
PLAIN = "plain"
MODES = (SAFE, PLAIN)

WECHAT_API_BASE = "https://api.weixin.qq.com"
# The AppSecret is sent to api_base, so only WeChat's documented API hosts (the
# main one, its fallback and the regional ones) or a loopback test stub are allowed.
WECHAT_API_HOSTS = ("api.weixin.qq.com", "api2.weixin.qq.com", "sh.api.weixin.qq.com",
                    "sz.api.weixin.qq.com", "hk.api.weixin.qq.com")

# WeChat sends each request's timestamp; one further from our clock than this is
# refused (a captured request cannot be replayed later). WeChat retries within 15 s.
DEFAULT_TIMESTAMP_WINDOW_S = 300.0
DEFAULT_SEND_TIMEOUT_S = 10.0
DEFAULT_DEDUPE_CACHE_SIZE = 10_000

# The platform's own rules for these values (official account > Settings and
# development > Basic configuration): AppID wx + 16 characters, Token 3-32 letters and
# digits, EncodingAESKey 43 letters and digits (base64 of 32 bytes without the "=").
_APP_ID = re.compile(r"wx[0-9A-Za-z]{16}")
_TOKEN = re.compile(r"[0-9A-Za-z]{3,32}")
_AES_KEY = re.compile(r"[0-9A-Za-z+/]{43}")
_WHERE = ("WeChat Official Accounts Platform (mp.weixin.qq.com) > Settings and "
          "development > Basic configuration")


@dataclass(frozen=True)
class WeChatConfig:
    """The settings of one official account's channel.

    Attributes:
        app_id: The account's AppID (开发者ID), ``wx`` and 16 characters.
        app_secret: The AppSecret (开发者密码); fetches access tokens.
        token: The Token (令牌) of the server configuration; signs WeChat's requests.
        encoding_aes_key: The EncodingAESKey (消息加解密密钥), 43 characters; ``None``
            in plain mode.
        mode: ``"safe"`` (安全模式: AES-encrypted, signed bodies) or ``"plain"``
            (明文模式: only the query is signed; see :mod:`bot.wechat.channel`).
        api_base: Origin of WeChat's server API (token and customer-service send).
        timestamp_window_s: How far a request's timestamp may be from our clock.
        send_timeout_s: Total timeout of one request to WeChat's API.
        dedupe_cache_size: How many recent message ids are remembered to answer
            WeChat's retries once.
    """

    app_id: str
    app_secret: str
    token: str
    encoding_aes_key: str | None = None
    mode: str = SAFE
    api_base: str = WECHAT_API_BASE
    timestamp_window_s: float = DEFAULT_TIMESTAMP_WINDOW_S
    send_timeout_s: float = DEFAULT_SEND_TIMEOUT_S
    dedupe_cache_size: int = DEFAULT_DEDUPE_CACHE_SIZE

    def __repr__(self) -> str:
        # Keeps the secrets out of reprs in tracebacks and debug logs.
        return (f"WeChatConfig(app_id={self.app_id!r}, mode={self.mode!r}, "
                f"api_base={self.api_base!r})")

    @property
    def safe(self) -> bool:
        """Whether messages come AES-encrypted (safe mode)."""
        return self.mode == SAFE

    @classmethod
    def from_credentials(cls, credentials: Any) -> WeChatConfig:
        """Builds and checks the settings from a credentials block.

        Args:
            credentials: The block under ``bot.wechat.WeChatInput:`` (Rasa has
                already replaced each ``${VAR}`` with the variable's value).

        Returns:
            The settings.

        Raises:
            InvalidConfigException: A key is missing or its value is malformed; the
                message names the key, the value and the fix.
        """
        # Not a mapping (e.g. an empty block): Rasa would hide an AttributeError.
        block = credentials if isinstance(credentials, dict) else {}
        mode = block.get("mode", SAFE)
        if mode not in MODES:
            _refuse("mode", repr(mode), "use `mode: safe` (recommended: encrypted, signed "
                    "messages) or `mode: plain`, the same as the account's message "
                    "encryption mode (消息加解密方式)")
        app_id = _required(block, "app_id", "WECHAT_APP_ID", "the AppID (开发者ID)")
        if not _APP_ID.fullmatch(app_id):
            _refuse("app_id", repr(app_id), f"the AppID is 'wx' and 16 letters or digits; "
                    f"copy it from {_WHERE}")
        app_secret = _required(block, "app_secret", "WECHAT_APP_SECRET",
                               "the AppSecret (开发者密码)", secret=True)
        if any(character.isspace() for character in app_secret):
            _refuse("app_secret", _hidden(app_secret), f"the AppSecret has no spaces; "
                    f"reset or copy it from {_WHERE}")
        token = _required(block, "token", "WECHAT_TOKEN", "the Token (令牌)", secret=True)
        if not _TOKEN.fullmatch(token):
            _refuse("token", _hidden(token), "WeChat's Token is 3-32 letters or digits; "
                    f"set the same value here and under {_WHERE} > Server configuration")
        aes_key = None
        if mode == SAFE:
            aes_key = _required(block, "encoding_aes_key", "WECHAT_ENCODING_AES_KEY",
                                "the EncodingAESKey (消息加解密密钥)", secret=True)
            if not _AES_KEY.fullmatch(aes_key) or not _is_aes_key(aes_key):
                _refuse("encoding_aes_key", _hidden(aes_key), "the EncodingAESKey is 43 "
                        f"letters or digits; copy it from {_WHERE} > Server configuration")
        api_base = block.get("api_base") or WECHAT_API_BASE
        if not isinstance(api_base, str) or not is_allowed_api_base(api_base.strip()):
            _refuse("api_base", repr(api_base), f"the AppSecret is sent there: use "
                    f"{WECHAT_API_BASE} (or another of {', '.join(WECHAT_API_HOSTS)}, "
                    f"or a loopback address for a test stub)")
        return cls(app_id=app_id, app_secret=app_secret, token=token,
                   encoding_aes_key=aes_key, mode=mode, api_base=api_base.strip().rstrip("/"),
                   timestamp_window_s=_positive(block, "timestamp_window_s",
                                                DEFAULT_TIMESTAMP_WINDOW_S),
                   send_timeout_s=_positive(block, "send_timeout_s", DEFAULT_SEND_TIMEOUT_S),
                   dedupe_cache_size=int(_positive(block, "dedupe_cache_size",
                                                   DEFAULT_DEDUPE_CACHE_SIZE, whole=True)))


def is_allowed_api_base(url: str) -> bool:
    """Whether WeChat's API (and with it the AppSecret) may be called at ``url``.

    Args:
        url: The API's origin, e.g. ``"https://api.weixin.qq.com"``.

    Returns:
        ``True`` for an origin without path, query or user name that is ``https://``
        one of :data:`WECHAT_API_HOSTS` (default port), or ``http(s)://`` a loopback
        IP address (a stub of the API in tests).
    """
    try:
        parts = urlsplit(url)
        if (parts.path not in ("", "/") or parts.query or parts.fragment
                or parts.username is not None or parts.password is not None):
            return False
        port = parts.port  # raises ValueError for a port that is not a number
        if parts.scheme == "https" and parts.hostname in WECHAT_API_HOSTS:
            return port in (None, 443)
        if parts.scheme not in ("http", "https"):
            return False
        # IP literals only: a name could resolve anywhere.
        return ipaddress.ip_address(parts.hostname or "").is_loopback
    except ValueError:
        return False


def _is_aes_key(value: str) -> bool:
    try:
        return len(base64.b64decode(value + "=", validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


def _hidden(secret: str) -> str:
    # A secret is named by its length only: the message ends up in logs.
    return f"a {len(secret)}-character value (not shown)"


def _refuse(key: str, value: str, fix: str) -> None:
    raise InvalidConfigException(
        f"The WeChat channel's '{key}' is {value}: {fix}. Fix it under "
        f"`{CREDENTIALS_KEY}:` in the credentials file.")


def _required(block: dict[str, Any], key: str, variable: str, what: str, *,
              secret: bool = False) -> str:
    value = block.get(key)
    if isinstance(value, str) and value.strip():
        return value.strip()
    shown = ("missing" if key not in block
             else "empty" if isinstance(value, str) or value is None
             else (f"not a string ({type(value).__name__})" if secret else repr(value)))
    raise InvalidConfigException(
        f"The WeChat channel's '{key}' is {shown}: it needs {what}. Add `{key}: "
        f"${{{variable}}}` under `{CREDENTIALS_KEY}:` in the credentials file and export "
        f"{variable} with the value from {_WHERE}.")


def _positive(block: dict[str, Any], key: str, default: float, *,
              whole: bool = False) -> float:
    value = block.get(key)
    if value is None:
        return default
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not 0 < number < math.inf or (whole and not number.is_integer()):  # also NaN
        _refuse(key, repr(value), f"it must be a positive {'whole ' if whole else ''}number"
                f"{'' if whole else ' of seconds'}")
    return number
