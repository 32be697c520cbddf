"""WeChat's retries of a message, recognised so that each message is handled once.

WeChat waits 5 seconds for the server's answer and, without one, POSTs the same
message again, up to three times in all. The channel answers at once, but a slow
network can still make WeChat retry; :class:`RecentMessages` remembers the
messages already received (bounded, oldest forgotten first), and a retry, or a
captured request replayed within the timestamp window, is answered without being
handled again.
"""

from __future__ import annotations

from collections import OrderedDict


class RecentMessages:
    """The message keys seen within ``ttl_s``, at most ``max_size`` of them.

    When full, the oldest key is forgotten first; a retry is then only caught while
    its key is still remembered (10,000 keys cover far more than WeChat's 15 seconds
    of retries at any realistic message rate).
    """

    def __init__(self, ttl_s: float, max_size: int) -> None:
        """Creates an empty cache.

        Args:
            ttl_s: How long a key is remembered (s).
            max_size: How many keys are remembered at most.
        """
        self.ttl_s = ttl_s
        self.max_size = max_size
        self._expiry: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._expiry)

    def seen(self, key: str, now: float) -> bool:
        """Whether ``key`` was seen within the window; remembers it if not.

        Args:
            key: The message's key (:attr:`bot.wechat.message.WeChatMessage.dedupe_key`).
            now: The current time (s).

        Returns:
            ``True`` for a retry (or replay) of a remembered message.
        """
        # Every key gets the same ttl, so insertion order is expiry order: the
        # expired ones are at the front.
        while self._expiry and next(iter(self._expiry.values())) <= now:
            self._expiry.popitem(last=False)
        if key in self._expiry:
            return True
        self._expiry[key] = now + self.ttl_s
        while len(self._expiry) > self.max_size:
            self._expiry.popitem(last=False)
        return False
