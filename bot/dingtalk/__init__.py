"""DingTalk outgoing-robot channel (钉钉 企业内部机器人) for Rasa.

Use it from a credentials file::

    bot.dingtalk.DingTalkInput:
      app_secret: ${DINGTALK_APP_SECRET}
      app_key: ${DINGTALK_APP_KEY}  # optional: robot check, robot API for pushed messages

Routes: ``GET /webhooks/dingtalk/`` (health) and ``POST /webhooks/dingtalk/webhook``
(the robot's outgoing message URL).

How a message flows:

1. DingTalk POSTs the message with the headers ``timestamp`` (ms) and ``sign``.
   ``sign`` must equal ``base64(HMAC-SHA256(app_secret, f"{timestamp}\\n{app_secret}"))``
   and ``timestamp`` must be within ``timestamp_window_s`` of our clock; otherwise 401.
2. The body is parsed by :func:`parse_payload`; anything else than an outgoing-robot
   message is answered with 400.
3. The webhook answers ``{"msgtype": "empty"}`` at once and Rasa handles the message in
   the background; its replies are POSTed to the message's ``sessionWebhook``
   (DingTalk's send API for this conversation) by :class:`DingTalkOutput`.

The Rasa sender id is ``"dingtalk:{user}"``, where the user is ``senderStaffId``
(``senderId`` when DingTalk sends no staff id, e.g. for users of another
organisation); in group chats it is ``"dingtalk:{conversationId}:{user}"`` so that each
user has a conversation per group. Each message's metadata names the user as
``verified_identity`` ``{"channel": "dingtalk", "external_id": user}`` (see
:mod:`bot.trust`).
Non-text messages (pictures, files, rich text) get :data:`ONLY_TEXT_REPLY` and do not
reach Rasa.

Messages that answer no user message (a human agent's reply pushed through Rasa's HTTP
API) go through :meth:`DingTalkInput.get_output_channel`, a :class:`DingTalkPushOutput`:
to the conversation's latest unexpired ``sessionWebhook``, else through the robot API's
one-to-one messages (with ``app_key``), else nowhere (a warning).

Modules (each imports only those listed after it, none imports this package's
``__init__``):

- :mod:`bot.dingtalk.channel`: :class:`DingTalkInput`, the Rasa input channel and
  its blueprint;
- :mod:`bot.dingtalk.push`: :class:`DingTalkPushOutput`, messages without an
  incoming message;
- :mod:`bot.dingtalk.robot_api`: the robot API's access token and one-to-one
  messages, and the allowed API hosts;
- :mod:`bot.dingtalk.sessions`: the conversations' recent ``sessionWebhook`` URLs;
- :mod:`bot.dingtalk.auth`: signature, timestamp window, replayed ``msgId`` values,
  the ``robotCode`` check;
- :mod:`bot.dingtalk.output`: how Rasa's responses become DingTalk messages,
  :class:`DingTalkOutput`, which sends the replies, and the allow-list of reply hosts;
- :mod:`bot.dingtalk.message`: the message format, incoming (:func:`parse_payload`)
  and outgoing (also the robot API's templates).

This package re-exports the names that ``bot/dingtalk.py`` had before it was split,
so that ``bot.dingtalk.DingTalkInput`` (the credentials key) and every other
``from bot.dingtalk import ...`` keep working.
"""

from __future__ import annotations

from bot.dingtalk.auth import (
    DEFAULT_REPLAY_CACHE_SIZE,
    DEFAULT_TIMESTAMP_WINDOW_S,
    DingTalkSignatureError,
    RecentMessageIds,
    sign,
    verify,
)
from bot.dingtalk.channel import CREDENTIALS_KEY, ONLY_TEXT_REPLY, DingTalkInput
from bot.dingtalk.message import EMPTY_REPLY, DingTalkMessage, DingTalkPayloadError, parse_payload
from bot.dingtalk.output import (
    DEFAULT_SEND_TIMEOUT_S,
    DINGTALK_WEBHOOK_ORIGINS,
    DingTalkOutput,
    is_allowed_webhook,
)
from bot.dingtalk.push import DingTalkPushOutput
from bot.dingtalk.robot_api import DINGTALK_API_BASE, DingTalkRobotApi, is_allowed_api_base
from bot.dingtalk.sessions import DEFAULT_WEBHOOK_CACHE_SIZE, RecentWebhooks

__all__ = [
    "CREDENTIALS_KEY",
    "DEFAULT_WEBHOOK_CACHE_SIZE",
    "DINGTALK_API_BASE",
    "DEFAULT_REPLAY_CACHE_SIZE",
    "DEFAULT_SEND_TIMEOUT_S",
    "DEFAULT_TIMESTAMP_WINDOW_S",
    "DINGTALK_WEBHOOK_ORIGINS",
    "EMPTY_REPLY",
    "ONLY_TEXT_REPLY",
    "DingTalkInput",
    "DingTalkMessage",
    "DingTalkOutput",
    "DingTalkPayloadError",
    "DingTalkPushOutput",
    "DingTalkRobotApi",
    "DingTalkSignatureError",
    "RecentMessageIds",
    "RecentWebhooks",
    "is_allowed_api_base",
    "is_allowed_webhook",
    "parse_payload",
    "sign",
    "verify",
]
