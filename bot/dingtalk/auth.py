"""Whether a request really comes from our DingTalk robot.

DingTalk signs the ``timestamp`` header of each request with the robot's AppSecret
(:func:`sign`, checked by :func:`verify` together with the timestamp window). The body
is not signed, so a captured request could be sent again while its timestamp is in
the window: :class:`RecentMessageIds` remembers the ``msgId`` values already seen.
(A captured ``timestamp``/``sign`` pair would even sign another body for as long:
that is the platform's limit, see docs/channels.md.) With an AppKey configured,
:func:`is_for_robot` refuses messages meant for another robot, and those that name
no robot.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections import OrderedDict

# DingTalk documents that a timestamp more than one hour away from now is invalid.
DEFAULT_TIMESTAMP_WINDOW_S = 3600.0
DEFAULT_REPLAY_CACHE_SIZE = 10_000

_TIMESTAMP = re.compile(r"[0-9]{1,16}")  # ASCII digits only: str.isdigit() accepts "²"


class DingTalkSignatureError(ValueError):
    """The request's ``timestamp``/``sign`` headers do not authenticate it."""


def sign(timestamp_ms: int | str, secret: str) -> str:
    """DingTalk's signature of a timestamp.

    Args:
        timestamp_ms: The ``timestamp`` header, milliseconds since the epoch.
        secret: The robot's AppSecret.

    Returns:
        ``base64(HMAC-SHA256(key=secret, msg=f"{timestamp_ms}\\n{secret}"))``.
    """
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(),
                      hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify(timestamp: str | None, signature: str | None, secret: str, *,
           now_ms: int | None = None,
           window_s: float = DEFAULT_TIMESTAMP_WINDOW_S) -> None:
    """Checks the ``timestamp`` and ``sign`` headers of an outgoing-robot request.

    Args:
        timestamp: The ``timestamp`` header (ms), or ``None`` when absent.
        signature: The ``sign`` header, or ``None`` when absent.
        secret: The robot's AppSecret.
        now_ms: The current time (ms); the system clock when ``None``.
        window_s: How far the timestamp may be from now, into the past or the future.

    Raises:
        DingTalkSignatureError: A header is missing or malformed, the timestamp is
            outside the window, or the signature is wrong.
    """
    if not timestamp or not signature:
        raise DingTalkSignatureError("missing 'timestamp' or 'sign' header")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise DingTalkSignatureError("malformed 'timestamp' header")
    now_ms = round(time.time() * 1000) if now_ms is None else now_ms
    # Both directions: a far-future timestamp would stay valid for a long time.
    if abs(now_ms - int(timestamp)) > window_s * 1000:
        raise DingTalkSignatureError("'timestamp' is outside the accepted window")
    if not hmac.compare_digest(sign(timestamp, secret).encode(), signature.encode()):
        raise DingTalkSignatureError("wrong 'sign'")


def is_for_robot(robot_code: str, app_key: str | None) -> bool:
    """Whether a message is meant for the robot whose AppKey is ``app_key``.

    Args:
        robot_code: The message's ``robotCode`` (the AppKey for internal app
            robots); empty when DingTalk sent none.
        app_key: The robot's AppKey, or ``None`` when not configured.

    Returns:
        ``True`` without an AppKey; with one, only when ``robot_code`` equals it.
        A message without ``robotCode`` is refused then: the body is not signed,
        so a missing field must not skip the check.
    """
    return not app_key or robot_code == app_key


class RecentMessageIds:
    """The msgIds seen within a time window, at most ``max_size`` of them.

    When full, the oldest id is forgotten first; an exact replay is then only
    caught while its id is still remembered.
    """

    def __init__(self, ttl_s: float, max_size: int = DEFAULT_REPLAY_CACHE_SIZE) -> None:
        """Creates an empty cache.

        Args:
            ttl_s: How long an id is remembered (s).
            max_size: How many ids are remembered at most.
        """
        self.ttl_s = ttl_s
        self.max_size = max_size
        self._expiry: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._expiry)

    def seen(self, msg_id: str, now: float) -> bool:
        """Whether ``msg_id`` was seen within the window; remembers it if not.

        Args:
            msg_id: The message id.
            now: The current time (s).

        Returns:
            ``True`` for a replay of a remembered id.
        """
        # Every id gets the same ttl, so insertion order is expiry order: the
        # expired ones are at the front.
        while self._expiry and next(iter(self._expiry.values())) <= now:
            self._expiry.popitem(last=False)
        if msg_id in self._expiry:
            return True
        self._expiry[msg_id] = now + self.ttl_s
        while len(self._expiry) > self.max_size:
            self._expiry.popitem(last=False)
        return False
