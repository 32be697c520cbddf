"""DingTalk's robot API: one-to-one messages that answer no incoming message.

A ``sessionWebhook`` only exists for a while after a user wrote. To reach a user
later, the robot sends through DingTalk's server API:

1. ``POST {api_base}/v1.0/oauth2/accessToken`` with ``{"appKey", "appSecret"}``
   answers ``{"accessToken", "expireIn"}`` (seconds); :class:`DingTalkRobotApi`
   keeps the token until shortly before it expires.
2. ``POST {api_base}/v1.0/robot/oToMessages/batchSend`` with the token in the
   ``x-acs-dingtalk-access-token`` header and ``{"robotCode", "userIds", "msgKey",
   "msgParam"}`` sends a message to users of the organisation (staff ids). The app
   needs the permission to send robot messages (企业内机器人发送消息权限).

The AppSecret goes to ``api_base``, so :func:`is_allowed_api_base` keeps it to
DingTalk's API host, or to a loopback address (a stub of the API in tests).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from bot.dingtalk.output import DEFAULT_SEND_TIMEOUT_S, is_allowed_webhook

# The package's logger, not __name__: log configuration stays "bot.dingtalk".
logger = logging.getLogger("bot.dingtalk")

DINGTALK_API_BASE = "https://api.dingtalk.com"
# A token is renewed this long before DingTalk says it expires (7200 s by default),
# so that no send goes out with a token that expires on the way.
TOKEN_REFRESH_MARGIN_S = 300.0
TOKEN_PATH = "/v1.0/oauth2/accessToken"
BATCH_SEND_PATH = "/v1.0/robot/oToMessages/batchSend"
TOKEN_HEADER = "x-acs-dingtalk-access-token"


def is_allowed_api_base(url: str) -> bool:
    """Whether the robot API (and with it the AppSecret) may be called at ``url``.

    Args:
        url: The API's base URL, e.g. ``"https://api.dingtalk.com"``.

    Returns:
        ``True`` for an origin without path, query or user name that is
        ``https://api.dingtalk.com`` or an ``http(s)`` loopback IP address.
    """
    try:
        parts = urlsplit(url)
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            return False
        if is_allowed_webhook(url, (DINGTALK_API_BASE,)):
            return True
        if parts.scheme not in ("http", "https") or parts.username or parts.password:
            return False
        _ = parts.port  # raises ValueError for a port that is not a number
        # IP literals only: a name could resolve anywhere.
        return ipaddress.ip_address(parts.hostname or "").is_loopback
    except ValueError:
        return False


class DingTalkRobotApi:
    """Sends one-to-one robot messages through DingTalk's server API.

    Failures (timeouts, HTTP errors, users DingTalk refuses) are logged and reported
    as ``False``, never raised. Logs name the host, the HTTP status and DingTalk's
    error code, never the AppSecret, the token or the message.
    """

    def __init__(self, app_key: str, app_secret: str, *, robot_code: str | None = None,
                 api_base: str = DINGTALK_API_BASE,
                 timeout_s: float = DEFAULT_SEND_TIMEOUT_S,
                 clock: Callable[[], float] = time.time) -> None:
        """Creates the client; it fetches a token on the first send.

        Args:
            app_key: The app's AppKey.
            app_secret: The app's AppSecret.
            robot_code: The robot's ``robotCode``; the AppKey for internal-app robots.
            api_base: The API's origin (see :func:`is_allowed_api_base`).
            timeout_s: Total timeout of one request.
            clock: Seconds since the epoch (for tests).

        Raises:
            ValueError: ``api_base`` is not allowed.
        """
        if not is_allowed_api_base(api_base):
            raise ValueError(f"not DingTalk's API nor a loopback address: {api_base!r}")
        self.app_key = app_key
        self._app_secret = app_secret
        self.robot_code = robot_code or app_key
        self.api_base = api_base.rstrip("/")
        self.timeout_s = timeout_s
        self.clock = clock
        self._token: str | None = None
        self._token_valid_until = 0.0
        # Concurrent sends with no valid token must fetch one token, not one each.
        self._token_lock = asyncio.Lock()

    def __repr__(self) -> str:
        # Keeps the AppSecret and the token out of reprs in tracebacks and debug logs.
        return f"DingTalkRobotApi(app_key={self.app_key!r}, api_base={self.api_base!r})"

    async def access_token(self) -> str | None:
        """The cached access token, fetched anew when missing or about to expire.

        Returns:
            The token, or ``None`` when DingTalk did not give one (logged).
        """
        async with self._token_lock:
            if self._token is not None and self.clock() < self._token_valid_until:
                return self._token
            self._token = None
            answer = await self._post(TOKEN_PATH, {"appKey": self.app_key,
                                                   "appSecret": self._app_secret}, {},
                                      "an access token request")
            if answer is None:
                return None
            status, result = answer
            token = result.get("accessToken") if isinstance(result, dict) else None
            expires_in = result.get("expireIn") if isinstance(result, dict) else None
            if (status != 200 or not isinstance(token, str) or not token
                    or not isinstance(expires_in, (int, float)) or isinstance(expires_in, bool)
                    or expires_in <= 0):
                _log_refusal(self._host, "an access token request", status, result)
                return None
            margin = min(TOKEN_REFRESH_MARGIN_S, expires_in / 2)
            self._token, self._token_valid_until = token, self.clock() + expires_in - margin
            return token

    def forget_token(self) -> None:
        """Drops the cached token, e.g. after DingTalk refused it."""
        self._token = None

    async def send_to_user(self, user_id: str, msg_key: str, msg_param: dict[str, Any]) -> bool:
        """Sends one robot message to one user in a single chat with the robot.

        Args:
            user_id: The user's staff id (``senderStaffId``).
            msg_key: The message template, e.g. ``"sampleText"``.
            msg_param: The template's parameters, e.g. ``{"content": "..."}``.

        Returns:
            Whether DingTalk accepted the message for the user.
        """
        body = {"robotCode": self.robot_code, "userIds": [user_id], "msgKey": msg_key,
                "msgParam": json.dumps(msg_param, ensure_ascii=False)}
        what = f"a {msg_key} robot message"
        for attempt in range(2):
            token = await self.access_token()
            if token is None:
                logger.warning("DingTalk: no access token; %s dropped", what)
                return False
            answer = await self._post(BATCH_SEND_PATH, body, {TOKEN_HEADER: token}, what)
            if answer is None:
                return False
            status, result = answer
            if status == 401 and attempt == 0:
                # Revoked or expired early (e.g. the AppSecret was reset): one new token.
                self.forget_token()
                continue
            break
        if status != 200 or not isinstance(result, dict):
            _log_refusal(self._host, what, status, result)
            return False
        for refused in ("invalidStaffIdList", "flowControlledStaffIdList"):
            if user_id in (result.get(refused) or ()):
                logger.warning("DingTalk: %s refused %s: the user is in %s", self._host,
                               what, refused)
                return False
        return True

    @property
    def _host(self) -> str:
        return urlsplit(self.api_base).hostname or self.api_base

    async def _post(self, path: str, body: dict[str, Any], headers: dict[str, str],
                    what: str) -> tuple[int, Any] | None:
        # Returns the status and the decoded JSON (None when not JSON); None on
        # network errors and timeouts, which are logged here.
        try:
            timeout = aiohttp.ClientTimeout(total=self.timeout_s)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.post(self.api_base + path, json=body,
                                        headers=headers) as reply:
                    text = await reply.text()
                    status = reply.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            logger.warning("DingTalk: %s to %s failed: %s", what, self._host,
                           type(error).__name__)
            return None
        try:
            return status, json.loads(text)
        except ValueError:
            return status, None


def _log_refusal(host: str, what: str, status: int, result: Any) -> None:
    # DingTalk's "code" and "requestid" identify the problem; its "message" may quote
    # the request, so it stays out of the logs.
    code = result.get("code") if isinstance(result, dict) else None
    request_id = result.get("requestid") if isinstance(result, dict) else None
    logger.warning("DingTalk: %s refused %s: HTTP %s code=%s requestid=%s", host, what,
                   status, code, request_id)
