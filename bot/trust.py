"""What every channel of this project guarantees to the actions about who is writing.

The metadata contract
---------------------

A user message's metadata may hold ``verified_identity``, and only a channel that
has verified the sender puts it there:

- the web chat, for a session opened with a valid customer token
  (:mod:`bot.identity`): ``{"channel": "webchat", "customer_id": "<the token's sub>"}``;
- DingTalk, for a signed request: ``{"channel": "dingtalk", "external_id":
  "<senderStaffId, or senderId for users outside the organisation>"}``; the same in
  Stream mode (:mod:`bot.dingtalk_stream`), for a message its bridge signed;
- WeChat, for a signed, encrypted (safe mode) message: ``{"channel": "wechat",
  "external_id": "<openid>"}`` (:mod:`bot.wechat`).

Whatever a client sends as ``verified_identity`` is dropped by every channel
(:func:`client_metadata`); the REST channel never sets it.

Conversation ids
----------------

Each channel has its own namespace of Rasa sender ids (:func:`sender_id`):
``rest:<sender>``, ``webchat:<session uuid>``, ``dingtalk:<user or group:user>``,
``wechat:<openid>``, so that a REST caller who names a sender cannot continue a web chat or DingTalk
conversation.
"""

from __future__ import annotations

from typing import Any

VERIFIED_IDENTITY = "verified_identity"


def client_metadata(metadata: Any) -> dict[str, Any]:
    """The metadata a client sent, as a new dict without ``verified_identity``.

    Args:
        metadata: The client's value: anything JSON can hold.

    Returns:
        A copy of ``metadata`` without the key only channels may set; an empty
        dict when ``metadata`` is not an object.
    """
    if not isinstance(metadata, dict):
        return {}
    return {key: value for key, value in metadata.items() if key != VERIFIED_IDENTITY}


def sender_id(channel: str, conversation: str) -> str:
    """The Rasa sender id of a conversation: ``"<channel>:<conversation>"``.

    Args:
        channel: The channel's name (``rest``, ``webchat``, ``dingtalk``); no colon.
        conversation: The channel's own id of the conversation.

    Returns:
        The namespaced id: two channels never share one.
    """
    if not channel or ":" in channel:
        raise ValueError(f"not a channel name: {channel!r}")
    return f"{channel}:{conversation}"
