"""Web chat session ids that only the server issues and nobody can take over.

A session id is ``<uuid>.<signature>``: 32 hex digits the server drew at random,
and ``base64url(HMAC-SHA256(secret, "webchat-session:v1|<uuid>|<customer id>"))``.
The page keeps it in localStorage and presents it again after a reload; the
server continues a session only when the signature verifies for the customer of
the presenting socket (none for anonymous chats). So

- a client cannot choose or guess a session id: anything unsigned gets a new one;
- a session opened for a verified customer cannot be resumed by a socket with
  another customer's token, or with none (and an anonymous session cannot be
  turned into a customer's).

The secret is ``WEBCHAT_SESSION_SECRET`` (``bot/run.sh`` generates one into
``.secrets/`` on the first run). Without it the server draws one per process and
warns: sessions then do not survive a restart (the page starts a new one).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import uuid
from collections.abc import Mapping

from bot.trust import sender_id

logger = logging.getLogger(__name__)

SECRET_VARIABLE = "WEBCHAT_SESSION_SECRET"
MIN_SECRET_BYTES = 32
CHANNEL = "webchat"
_SESSION_ID = re.compile(r"([0-9a-f]{32})\.([A-Za-z0-9_-]{43})")


def session_secret(environ: Mapping[str, str]) -> bytes:
    """The key that signs session ids: ``WEBCHAT_SESSION_SECRET``, or a random one.

    Args:
        environ: The environment.

    Returns:
        The secret's bytes; 32 random bytes (and a logged warning) when unset.

    Raises:
        ValueError: The variable is set but shorter than 32 bytes.
    """
    value = environ.get(SECRET_VARIABLE, "")
    if not value:
        logger.warning("web chat: %s is not set; using a random secret for this process, so "
                       "web chat sessions will not survive a restart", SECRET_VARIABLE)
        return secrets.token_bytes(MIN_SECRET_BYTES)
    if len(value.encode()) < MIN_SECRET_BYTES:
        raise ValueError(
            f"{SECRET_VARIABLE} must be at least {MIN_SECRET_BYTES} bytes long; generate one "
            f"with: python -c 'import secrets; print(secrets.token_urlsafe(32))'")
    return value.encode()


class SessionSigner:
    """Issues and checks signed web chat session ids."""

    def __init__(self, secret: bytes | str) -> None:
        """Creates the signer.

        Args:
            secret: The signing key, at least 32 bytes.
        """
        key = secret.encode() if isinstance(secret, str) else secret
        if len(key) < MIN_SECRET_BYTES:
            raise ValueError(f"a session secret must be at least {MIN_SECRET_BYTES} bytes")
        self._key = key

    def _signature(self, session_uuid: str, customer_id: str | None) -> str:
        # The uuid has a fixed form, so "|" cannot be moved between the fields.
        message = f"webchat-session:v1|{session_uuid}|{customer_id or ''}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")

    def issue(self, customer_id: str | None = None) -> str:
        """A new session id, bound to ``customer_id`` (None: an anonymous session).

        Args:
            customer_id: The verified customer of the session, if any.

        Returns:
            ``<uuid>.<signature>``.
        """
        session_uuid = uuid.uuid4().hex
        return f"{session_uuid}.{self._signature(session_uuid, customer_id)}"

    def verify(self, session_id: str, customer_id: str | None = None) -> bool:
        """Whether ``session_id`` was issued by this server for ``customer_id``.

        Args:
            session_id: The id a client presented.
            customer_id: The verified customer of the presenting socket, if any.

        Returns:
            True only for a well-formed id whose signature matches (constant time).
        """
        match = _SESSION_ID.fullmatch(session_id) if isinstance(session_id, str) else None
        if match is None:
            return False
        expected = self._signature(match.group(1), customer_id)
        return hmac.compare_digest(expected.encode(), match.group(2).encode())


def session_sender_id(session_id: str) -> str:
    """The Rasa sender id of a session: ``webchat:<uuid>``.

    Args:
        session_id: A session id as :meth:`SessionSigner.issue` made it.

    Returns:
        The conversation id in Rasa's tracker store (the signature stays out of it,
        so the tracker store and its API do not hand out resumable session ids).

    Raises:
        ValueError: ``session_id`` is not of the issued form.
    """
    match = _SESSION_ID.fullmatch(session_id) if isinstance(session_id, str) else None
    if match is None:
        raise ValueError("not a web chat session id")
    return sender_id(CHANNEL, match.group(1))
