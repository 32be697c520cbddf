"""The shared-secret signature between the Stream bridge and Rasa's channel.

Standard library only: both environments (the bridge's ``.venv-stream`` and Rasa's)
import it. The bridge signs each forwarded request with
``hex(HMAC-SHA256(secret, f"{timestamp_ms}\\n".encode() + body))`` in
:data:`SIGNATURE_HEADER`, the timestamp in :data:`TIMESTAMP_HEADER`; the channel
refuses a request whose signature is wrong or whose timestamp is outside its window.
Unlike DingTalk's webhook signature, this one covers the body.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

TIMESTAMP_HEADER = "X-DingTalk-Bridge-Timestamp"
SIGNATURE_HEADER = "X-DingTalk-Bridge-Signature"
# 32 bytes: as many as the HMAC-SHA256 output, so the secret is not the weak part.
MIN_SECRET_BYTES = 32
# Bridge and Rasa run side by side and share a clock; a few minutes allow for a slow
# request and a drifting container clock, while keeping a captured request short-lived.
DEFAULT_WINDOW_S = 300.0

_TIMESTAMP = re.compile(r"[0-9]{1,16}")  # ASCII digits only: str.isdigit() accepts "²"
_SIGNATURE = re.compile(r"[0-9a-f]{64}")


class BridgeSignatureError(ValueError):
    """A forwarded request's headers do not authenticate it."""


def secret_problem(secret: str | None) -> str | None:
    """Why ``secret`` cannot be the shared secret, or ``None`` when it can.

    Args:
        secret: The configured shared secret.

    Returns:
        A short reason (missing, or fewer than :data:`MIN_SECRET_BYTES` bytes).
    """
    if not secret or not secret.strip():
        return "it is missing or empty"
    if len(secret.encode()) < MIN_SECRET_BYTES:
        return (f"it has {len(secret.encode())} bytes, fewer than {MIN_SECRET_BYTES} "
                f"(generate one with `openssl rand -hex 32`)")
    return None


def sign(secret: str, timestamp_ms: int | str, body: bytes) -> str:
    """The signature of a forwarded request.

    Args:
        secret: The shared secret.
        timestamp_ms: The request's timestamp, milliseconds since the epoch.
        body: The exact request body.

    Returns:
        ``hex(HMAC-SHA256(secret, f"{timestamp_ms}\\n".encode() + body))``.
    """
    return hmac.new(secret.encode(), f"{timestamp_ms}\n".encode() + body,
                    hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, now_ms: int | None = None) -> dict[str, str]:
    """The headers that authenticate ``body``: timestamp and signature.

    Args:
        secret: The shared secret.
        body: The exact request body.
        now_ms: The timestamp (ms); the system clock when ``None``.

    Returns:
        ``{TIMESTAMP_HEADER: ..., SIGNATURE_HEADER: ...}``.
    """
    stamp = round(time.time() * 1000) if now_ms is None else now_ms
    return {TIMESTAMP_HEADER: str(stamp), SIGNATURE_HEADER: sign(secret, stamp, body)}


def verify(timestamp: str | None, signature: str | None, body: bytes, secret: str, *,
           now_ms: int | None = None, window_s: float = DEFAULT_WINDOW_S) -> None:
    """Checks a forwarded request's timestamp and signature.

    Args:
        timestamp: The :data:`TIMESTAMP_HEADER` value, ``None`` when absent.
        signature: The :data:`SIGNATURE_HEADER` value, ``None`` when absent.
        body: The exact request body.
        secret: The shared secret.
        now_ms: The current time (ms); the system clock when ``None``.
        window_s: How far the timestamp may be from now, either way.

    Raises:
        BridgeSignatureError: A header is missing or malformed, the timestamp is
            outside the window, or the signature is wrong.
    """
    if not timestamp or not signature:
        raise BridgeSignatureError("missing signature headers")
    if not _TIMESTAMP.fullmatch(timestamp) or not _SIGNATURE.fullmatch(signature):
        raise BridgeSignatureError("malformed signature headers")
    now_ms = round(time.time() * 1000) if now_ms is None else now_ms
    # Both directions: a far-future timestamp would stay valid for a long time.
    if abs(now_ms - int(timestamp)) > window_s * 1000:
        raise BridgeSignatureError("timestamp outside the accepted window")
    if not hmac.compare_digest(sign(secret, timestamp, body), signature):
        raise BridgeSignatureError("wrong signature")
