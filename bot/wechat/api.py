"""WeChat's server API: the access token and customer-service messages, with aiohttp.

1. ``GET {api_base}/cgi-bin/token?grant_type=client_credential&appid=..&secret=..``
   answers ``{"access_token", "expires_in"}`` (7200 s). :class:`WeChatApi` keeps the
   token until shortly before it expires. Each call makes WeChat issue a new token
   (the old one lives on for a few minutes), so one process fetches it for all
   sends, under a lock.
2. ``POST {api_base}/cgi-bin/message/custom/send?access_token=..`` with
   ``{"touser": openid, "msgtype": "text", "text": {"content": ...}}`` sends a
   customer-service message (客服消息) to a user who wrote to the account within the
   last 48 hours. An ``errcode`` of 40001, 40014 or 42001 (the token is invalid or
   expired, e.g. another process fetched a new one long ago) gets one new token and
   one retry.

The SDK's own client (``wechatpy.WeChatClient``) uses ``requests``, which would block
Rasa's event loop; these two calls are small enough to make with aiohttp directly.
The AppSecret and the token travel in the query, so nothing here logs a URL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from bot.wechat.config import DEFAULT_SEND_TIMEOUT_S, WECHAT_API_BASE, is_allowed_api_base

logger = logging.getLogger("bot.wechat")

TOKEN_PATH = "/cgi-bin/token"
SEND_PATH = "/cgi-bin/message/custom/send"
# A token is renewed this long before WeChat says it expires, so that no send goes
# out with a token that expires on the way.
TOKEN_REFRESH_MARGIN_S = 300.0
# invalid credential / invalid access_token / access_token expired
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})
# What an operator should do about the errcodes one meets while setting up.
HINTS = {
    40013: "wrong app_id",
    40125: "wrong app_secret",
    40164: "this server's IP address is not on the account's IP allow-list",
    45015: "the user has not written within the last 48 hours",
    45047: "too many messages since the user's last message",
    48001: "the account lacks the customer-service message permission",
}


class WeChatApi:
    """Calls WeChat's token and customer-service send endpoints.

    Failures (timeouts, HTTP errors, ``errcode`` answers) are logged and reported as
    ``False``, never raised: an undeliverable reply must not fail the conversation.
    Logs name the host, the HTTP status and WeChat's ``errcode``, never the
    AppSecret, the token or the message.
    """

    def __init__(self, app_id: str, app_secret: str, *, api_base: str = WECHAT_API_BASE,
                 timeout_s: float = DEFAULT_SEND_TIMEOUT_S,
                 clock: Callable[[], float] = time.time) -> None:
        """Creates the client; it fetches a token on the first send.

        Args:
            app_id: The account's AppID.
            app_secret: The account's AppSecret.
            api_base: The API's origin (see :func:`bot.wechat.config.is_allowed_api_base`).
            timeout_s: Total timeout of one request.
            clock: Seconds since the epoch (for tests).

        Raises:
            ValueError: ``api_base`` is not allowed.
        """
        if not is_allowed_api_base(api_base):
            raise ValueError(f"not WeChat's API nor a loopback address: {api_base!r}")
        self.app_id = app_id
        self._app_secret = app_secret
        self.api_base = api_base.rstrip("/")
        self.timeout_s = timeout_s
        self.clock = clock
        self._token: str | None = None
        self._token_valid_until = 0.0
        # Concurrent sends without a valid token must fetch one token, not one each:
        # every fetch invalidates the previous token after a few minutes.
        self._token_lock = asyncio.Lock()

    def __repr__(self) -> str:
        # Keeps the AppSecret and the token out of reprs in tracebacks and debug logs.
        return f"WeChatApi(app_id={self.app_id!r}, api_base={self.api_base!r})"

    @property
    def _host(self) -> str:
        return urlsplit(self.api_base).hostname or self.api_base

    async def access_token(self) -> str | None:
        """The cached access token, fetched anew when missing or about to expire.

        Returns:
            The token, or ``None`` when WeChat did not give one (logged).
        """
        async with self._token_lock:
            if self._token is not None and self.clock() < self._token_valid_until:
                return self._token
            self._token = None
            answer = await self._request("GET", TOKEN_PATH, {
                "grant_type": "client_credential", "appid": self.app_id,
                "secret": self._app_secret}, None, "an access token request")
            if answer is None:
                return None
            token, expires_in = answer.get("access_token"), answer.get("expires_in")
            if (not isinstance(token, str) or not token
                    or not isinstance(expires_in, (int, float)) or isinstance(expires_in, bool)
                    or expires_in <= 0):
                _log_refusal(self._host, "an access token request", answer)
                return None
            margin = min(TOKEN_REFRESH_MARGIN_S, expires_in / 2)
            self._token, self._token_valid_until = token, self.clock() + expires_in - margin
            return token

    def forget_token(self, token: str) -> None:
        """Drops the cached token if it is still ``token`` (WeChat refused it)."""
        # Another send may have fetched a new one meanwhile: keep that.
        if self._token == token:
            self._token = None

    async def send(self, message: dict[str, Any]) -> bool:
        """Sends one customer-service message.

        Args:
            message: The send API's body: ``{"touser": openid, "msgtype": ..., ...}``.

        Returns:
            Whether WeChat accepted it.
        """
        what = f"a {message.get('msgtype')} message"
        # WeChat shows JSON escapes (\\u4f60) literally in some clients: send UTF-8.
        data = json.dumps(message, ensure_ascii=False).encode("utf-8")
        for attempt in range(2):
            token = await self.access_token()
            if token is None:
                logger.warning("WeChat: no access token; %s dropped", what)
                return False
            answer = await self._request("POST", SEND_PATH, {"access_token": token}, data,
                                         what)
            if answer is None:
                return False
            errcode = answer.get("errcode", 0)
            if errcode in TOKEN_ERRCODES and attempt == 0:
                # Expired early or replaced (another process fetched a token): one new.
                logger.info("WeChat: the access token was refused (errcode %s); "
                            "fetching a new one", errcode)
                self.forget_token(token)
                continue
            if errcode != 0:
                _log_refusal(self._host, what, answer)
                return False
            return True
        return False  # pragma: no cover - the loop returns on its second pass

    async def send_text(self, openid: str, text: str) -> bool:
        """Sends a text message to one user.

        Args:
            openid: The user's OpenID.
            text: The text.

        Returns:
            Whether WeChat accepted it.
        """
        return await self.send({"touser": openid, "msgtype": "text",
                                "text": {"content": text}})

    async def _request(self, method: str, path: str, query: dict[str, str],
                       data: bytes | None, what: str) -> dict[str, Any] | None:
        # The decoded JSON object, or None after a logged failure.
        headers = {"Content-Type": "application/json; charset=utf-8"} if data else {}
        try:
            timeout = aiohttp.ClientTimeout(total=self.timeout_s)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.request(method, self.api_base + path, params=query,
                                           data=data, headers=headers) as reply:
                    body = await reply.read()
                    status = reply.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            logger.warning("WeChat: %s to %s failed: %s", what, self._host,
                           type(error).__name__)
            return None
        try:
            result = json.loads(body)
        except ValueError:
            result = None
        if status != 200 or not isinstance(result, dict):
            logger.warning("WeChat: %s answered HTTP %s to %s", self._host, status, what)
            return None
        return result


def _log_refusal(host: str, what: str, answer: dict[str, Any]) -> None:
    # WeChat's errmsg quotes a request id and sometimes the caller's IP: log the
    # errcode and our hint only.
    errcode = answer.get("errcode")
    hint = HINTS.get(errcode) if isinstance(errcode, int) else None
    logger.warning("WeChat: %s refused %s: errcode=%s%s", host, what, errcode,
                   f" ({hint})" if hint else "")
