"""Messages to DingTalk users that answer no incoming message.

A human agent's reply reaches Rasa through its HTTP API (``POST
/conversations/<sender_id>/tracker/events?output_channel=latest``), and Rasa asks the
conversation's input channel for an output channel
(:meth:`~bot.dingtalk.channel.DingTalkInput.get_output_channel`): that is
:class:`DingTalkPushOutput`. It sends each message, in this order of preference:

1. to the conversation's latest ``sessionWebhook`` while it has not expired
   (:class:`~bot.dingtalk.sessions.RecentWebhooks`);
2. else, for single chats with a staff id, through the robot API's one-to-one
   messages (:class:`~bot.dingtalk.robot_api.DingTalkRobotApi`), when the channel
   has an AppKey;
3. else nowhere: a warning is logged and the message is dropped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from bot.dingtalk.message import robot_template, single_chat_user
from bot.dingtalk.output import DEFAULT_SEND_TIMEOUT_S, DingTalkOutput, DingTalkRendering
from bot.dingtalk.robot_api import DingTalkRobotApi
from bot.dingtalk.sessions import RecentWebhooks

# The package's logger, not __name__: log configuration stays "bot.dingtalk".
logger = logging.getLogger("bot.dingtalk")


class DingTalkPushOutput(DingTalkRendering):
    """Sends messages to any DingTalk conversation, by its Rasa sender id.

    Failures are logged (conversation id and message type, never the text, the
    webhook URL or a secret) and dropped, as for the replies.
    """

    def __init__(self, webhooks: RecentWebhooks, robot_api: DingTalkRobotApi | None, *,
                 timeout_s: float = DEFAULT_SEND_TIMEOUT_S,
                 clock: Callable[[], float] = time.time) -> None:
        """Creates the output channel.

        Args:
            webhooks: The channel's recent ``sessionWebhook`` URLs, shared with it.
            robot_api: The robot API client; ``None`` without an AppKey.
            timeout_s: Total timeout of one ``sessionWebhook`` send.
            clock: Seconds since the epoch (for tests).
        """
        self.webhooks = webhooks
        self.robot_api = robot_api
        self.timeout_s = timeout_s
        self.clock = clock

    async def deliver(self, recipient_id: str, payload: dict[str, Any]) -> bool:
        """Sends ``payload`` to the conversation ``recipient_id``.

        Args:
            recipient_id: The conversation's Rasa sender id (``dingtalk:...``).
            payload: The message, as a ``sessionWebhook`` takes it.

        Returns:
            Whether DingTalk accepted it.
        """
        msgtype = payload.get("msgtype")
        webhook = self.webhooks.get(recipient_id, round(self.clock() * 1000))
        if webhook is not None:
            output = DingTalkOutput(webhook.url, timeout_s=self.timeout_s,
                                    expires_at_ms=webhook.expires_ms, clock=self.clock)
            return await output.send_payload(payload)
        if self.robot_api is None:
            logger.warning("DingTalk: no recent session webhook for %s and no app_key for "
                           "the robot API; %s message dropped", recipient_id, msgtype)
            return False
        user = single_chat_user(recipient_id)
        if user is None:
            logger.warning("DingTalk: no recent session webhook for %s, and the robot API "
                           "only reaches single chats of staff; %s message dropped",
                           recipient_id, msgtype)
            return False
        template = robot_template(payload)
        if template is None:
            logger.warning("DingTalk: a %s message cannot go through the robot API; "
                           "message to %s dropped", msgtype, recipient_id)
            return False
        return await self.robot_api.send_to_user(user, *template)
