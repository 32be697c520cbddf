"""The conversations' recent ``sessionWebhook`` URLs, for replies without a message.

Each DingTalk message names a ``sessionWebhook`` that can send into its conversation
until ``sessionWebhookExpiredTime``. :class:`RecentWebhooks` keeps the latest one of
each conversation so that a reply that answers no message (a human agent's, pushed
through Rasa's HTTP API) can still use it. Only the channel fills it, with webhooks
of signed messages that passed the allow-list.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

# Enough for the conversations of a busy hour; each entry is a few hundred bytes.
DEFAULT_WEBHOOK_CACHE_SIZE = 5_000
# A webhook this close to its expiry is not used: the send itself takes a while.
EXPIRY_MARGIN_MS = 30_000


class SessionWebhook(NamedTuple):
    """A conversation's ``sessionWebhook`` and when it expires.

    Attributes:
        url: The ``sessionWebhook``; it carries the session's token, never log it.
        expires_ms: ``sessionWebhookExpiredTime``, milliseconds since the epoch.
    """

    url: str
    expires_ms: int


class RecentWebhooks:
    """The latest ``sessionWebhook`` of each conversation, at most ``max_size`` of them.

    Least recently used conversations are forgotten first; expired webhooks are
    forgotten when looked up.
    """

    def __init__(self, max_size: int = DEFAULT_WEBHOOK_CACHE_SIZE) -> None:
        """Creates an empty map.

        Args:
            max_size: How many conversations are remembered at most.
        """
        if max_size < 1:
            raise ValueError(f"max_size must be positive, not {max_size!r}")
        self.max_size = max_size
        self._webhooks: OrderedDict[str, SessionWebhook] = OrderedDict()

    def __len__(self) -> int:
        return len(self._webhooks)

    def remember(self, sender_id: str, url: str, expires_ms: int | None) -> None:
        """Keeps ``url`` as the conversation's webhook, replacing an older one.

        Args:
            sender_id: The conversation's Rasa sender id.
            url: Its ``sessionWebhook``, already checked against the allow-list.
            expires_ms: Its ``sessionWebhookExpiredTime``. Without one the webhook is
                not kept: how long it works is unknown, and the robot API (or
                nothing) is the safer way then.
        """
        if expires_ms is None:
            self._webhooks.pop(sender_id, None)  # an older one is not this session's
            return
        self._webhooks[sender_id] = SessionWebhook(url, expires_ms)
        self._webhooks.move_to_end(sender_id)
        while len(self._webhooks) > self.max_size:
            self._webhooks.popitem(last=False)

    def get(self, sender_id: str, now_ms: int) -> SessionWebhook | None:
        """The conversation's webhook while it has more than :data:`EXPIRY_MARGIN_MS` left.

        Args:
            sender_id: The conversation's Rasa sender id.
            now_ms: The current time (ms).

        Returns:
            The webhook, or ``None`` when none is known or it (nearly) expired.
        """
        webhook = self._webhooks.get(sender_id)
        if webhook is None:
            return None
        if webhook.expires_ms - EXPIRY_MARGIN_MS <= now_ms:
            del self._webhooks[sender_id]
            return None
        self._webhooks.move_to_end(sender_id)
        return webhook
