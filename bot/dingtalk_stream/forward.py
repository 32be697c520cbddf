"""The bridge's side of the loopback hop: one signed POST to Rasa, and what it answered.

Runs in the bridge's environment (``.venv-stream``) but needs only aiohttp and the
standard library, not DingTalk's SDK: :func:`forward_to_rasa` POSTs a robot message's
JSON to :class:`~bot.dingtalk_stream.channel.DingTalkStreamInput`, signed with the
shared secret (:mod:`bot.dingtalk_stream.signing`), and sorts the answer into a
:class:`RasaAnswer`: the replies to send, a message DingTalk delivered twice, or a
failure for which the user gets :data:`FAILURE_REPLY` rather than silence.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import aiohttp

from bot.dingtalk_stream.signing import signed_headers

# Bilingual: the bridge does not know the customer's language when Rasa cannot answer.
FAILURE_REPLY = ("Sorry, I cannot answer right now. Please try again in a few minutes.\n"
                 "抱歉，客服助手暂时无法回复，请稍后再试。")


class Outcome(Enum):
    """What Rasa's channel made of a forwarded message."""

    REPLIES = "replies"  # answered: send the messages (perhaps none)
    DUPLICATE = "duplicate"  # DingTalk delivered it again: the first copy is answered
    REFUSED = "refused"  # 401: the shared secrets differ, or the clocks
    FAILED = "failed"  # down, slow, or any other answer


@dataclass(frozen=True)
class RasaAnswer:
    """Rasa's answer to one forwarded message.

    Attributes:
        outcome: What happened.
        messages: The DingTalk messages to send (``{"msgtype": ..., ...}``), for
            :attr:`Outcome.REPLIES`.
        detail: Why, for the log (never the message text or a secret).
    """

    outcome: Outcome
    messages: list[dict[str, Any]] = field(default_factory=list)
    detail: str = ""


async def forward_to_rasa(url: str, secret: str, body: bytes, *,
                          timeout_s: float) -> RasaAnswer:
    """POSTs a robot message to Rasa's Stream channel and reads the replies.

    Args:
        url: The channel's message URL (``.../webhooks/dingtalk_stream/message``).
        secret: The shared secret.
        body: The robot message's JSON, exactly as signed.
        timeout_s: How long Rasa may take for the whole turn.

    Returns:
        The answer; network errors, timeouts and unexpected answers are
        :attr:`Outcome.FAILED`, never an exception.
    """
    headers = {"Content-Type": "application/json"} | signed_headers(secret, body)
    try:
        # One session per message: the SDK may rerun its event loop after an error,
        # and a session must not outlive its loop. Loopback makes this cheap.
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) \
                as session:
            async with session.post(url, data=body, headers=headers) as reply:
                status, text = reply.status, await reply.text()
    except asyncio.TimeoutError:
        return RasaAnswer(Outcome.FAILED, detail=f"no answer within {timeout_s:g} s")
    except aiohttp.ClientError as error:
        return RasaAnswer(Outcome.FAILED, detail=f"cannot reach Rasa: {type(error).__name__}")
    if status == 409:
        return RasaAnswer(Outcome.DUPLICATE, detail="message already received")
    if status == 401:
        return RasaAnswer(Outcome.REFUSED, detail=_error(text))
    if status != 200:
        return RasaAnswer(Outcome.FAILED, detail=f"HTTP {status}: {_error(text)}")
    messages = _messages(text)
    if messages is None:
        return RasaAnswer(Outcome.FAILED, detail="an answer without a 'messages' list")
    return RasaAnswer(Outcome.REPLIES, messages)


def _error(text: str) -> str:
    try:
        error = json.loads(text).get("error")
    except (ValueError, AttributeError):
        error = None
    return error if isinstance(error, str) else text[:200]


def _messages(text: str) -> list[dict[str, Any]] | None:
    try:
        messages = json.loads(text).get("messages")
    except (ValueError, AttributeError):
        return None
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        return None
    return messages
