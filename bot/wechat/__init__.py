"""WeChat official account (微信公众号) channel for Rasa, on the wechatpy SDK.

Use it from a credentials file (secrets from the environment)::

    bot.wechat.WeChatInput:
      app_id: ${WECHAT_APP_ID}
      app_secret: ${WECHAT_APP_SECRET}
      token: ${WECHAT_TOKEN}
      encoding_aes_key: ${WECHAT_ENCODING_AES_KEY}

Routes: ``GET /webhooks/wechat/`` (health), ``GET /webhooks/wechat/webhook`` (the
URL check when the server URL is saved on the platform) and ``POST
/webhooks/wechat/webhook`` (the messages).

How a message flows:

1. WeChat POSTs it with ``signature``, ``timestamp`` and ``nonce`` in the query (in
   safe mode also ``encrypt_type=aes`` and ``msg_signature``). The signature must
   verify with the Token and the timestamp be within ``timestamp_window_s`` of our
   clock; in safe mode the body must verify against ``msg_signature``, decrypt with
   the EncodingAESKey and name our AppID (all through wechatpy). Otherwise 401 (400
   for a malformed body), and nothing reaches Rasa.
2. A message already received (WeChat retries after 5 s without an answer) is
   answered ``success`` and not handled again.
3. The webhook answers ``success`` at once. Text messages go to Rasa in the
   background; its replies are sent through the customer-service API with a cached
   access token. Pictures, voice, locations, videos, links and menu events get
   :data:`ONLY_TEXT_REPLY`, new followers :data:`WELCOME_REPLY`, without Rasa.

The Rasa sender id is ``wechat:<openid>``; in safe mode each message's metadata names
the user as ``verified_identity`` ``{"channel": "wechat", "external_id": openid}``
(see :mod:`bot.trust`). There is no client metadata to drop: WeChat's XML is all
there is, and only the fields in :meth:`WeChatMessage.metadata` pass on.

Modules (each imports only those listed after it):

- :mod:`bot.wechat.channel`: :class:`WeChatInput`, the Rasa input channel;
- :mod:`bot.wechat.output`: :class:`WeChatOutput`, rendering and sending replies;
  numbered buttons;
- :mod:`bot.wechat.api`: :class:`WeChatApi`, access token and send API (aiohttp);
- :mod:`bot.wechat.auth`: signatures, timestamp window, safe-mode decryption;
- :mod:`bot.wechat.dedupe`: WeChat's retries;
- :mod:`bot.wechat.message`: parsing messages, the channel's own texts;
- :mod:`bot.wechat.config`: :class:`WeChatConfig`, the checked settings.
"""

from __future__ import annotations

from bot.wechat.api import WeChatApi
from bot.wechat.auth import WeChatRequestError, check_query, decrypt
from bot.wechat.channel import RECEIVED, WeChatInput
from bot.wechat.config import CREDENTIALS_KEY, WECHAT_API_BASE, WeChatConfig
from bot.wechat.dedupe import RecentMessages
from bot.wechat.message import (
    ONLY_TEXT_REPLY,
    WELCOME_REPLY,
    WeChatMessage,
    WeChatPayloadError,
    parse,
)
from bot.wechat.output import ButtonChoices, WeChatOutput

__all__ = [
    "CREDENTIALS_KEY",
    "ONLY_TEXT_REPLY",
    "RECEIVED",
    "WECHAT_API_BASE",
    "WELCOME_REPLY",
    "ButtonChoices",
    "RecentMessages",
    "WeChatApi",
    "WeChatConfig",
    "WeChatInput",
    "WeChatMessage",
    "WeChatOutput",
    "WeChatPayloadError",
    "WeChatRequestError",
    "check_query",
    "decrypt",
    "parse",
]
