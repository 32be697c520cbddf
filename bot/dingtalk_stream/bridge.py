"""The DingTalk Stream bridge: DingTalk's SDK on one side, Rasa's channel on the other.

Run it next to Rasa with the bridge's own environment (``make dingtalk-stream``)::

    DINGTALK_APP_KEY=... DINGTALK_APP_SECRET=... DINGTALK_STREAM_BRIDGE_SECRET=... \\
        .venv-stream/bin/python -m bot.dingtalk_stream.bridge

It opens DingTalk's Stream connection with the app's credentials
(``DingTalkStreamClient``, which also reconnects), subscribes to robot messages, and for
each one: forwards the message's JSON to Rasa's ``DingTalkStreamInput`` over loopback
HTTP, signed with the shared secret (:mod:`bot.dingtalk_stream.forward`); sends Rasa's
replies into the conversation through the SDK (the message's ``sessionWebhook``); then
ACKs the message. When Rasa is down, slow or refuses the signature, the user gets
:data:`~bot.dingtalk_stream.forward.FAILURE_REPLY` and the log says why.

Settings come from the environment only (secrets never on a command line, where ``ps``
shows them); see :class:`BridgeConfig`. This module imports DingTalk's SDK and must not
import Rasa, the actions or :mod:`bot.dingtalk` (their pins differ).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from dingtalk_stream import (
    AckMessage,
    CallbackMessage,
    ChatbotHandler,
    ChatbotMessage,
    Credential,
    DingTalkStreamClient,
)

from bot.dingtalk_stream.forward import FAILURE_REPLY, Outcome, RasaAnswer, forward_to_rasa
from bot.dingtalk_stream.signing import secret_problem

logger = logging.getLogger("bot.dingtalk_stream.bridge")

DINGTALK_API_BASE = "https://api.dingtalk.com"
OPEN_CONNECTION_PATH = "/v1.0/gateway/connections/open"
DEFAULT_RASA_URL = "http://127.0.0.1:5005/webhooks/dingtalk_stream/message"
# One turn of the assistant, actions included, on a busy CPU; DingTalk waits for the ACK.
DEFAULT_TIMEOUT_S = 30.0
_LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}


class BridgeConfigError(ValueError):
    """A setting in the environment is missing or wrong; the message says which and how
    to fix it."""


@dataclass(frozen=True)
class BridgeConfig:
    """The bridge's settings, read from the environment by :meth:`from_environ`.

    Attributes:
        app_key: ``DINGTALK_APP_KEY``, the app's AppKey (the SDK's client id).
        app_secret: ``DINGTALK_APP_SECRET``, the app's AppSecret.
        bridge_secret: ``DINGTALK_STREAM_BRIDGE_SECRET``, shared with Rasa's channel.
        rasa_url: ``DINGTALK_STREAM_RASA_URL``, the channel's message URL: ``http`` to
            a loopback address, or ``https``.
        timeout_s: ``DINGTALK_STREAM_TIMEOUT_S``, how long Rasa may take to answer.
        api_base: ``DINGTALK_STREAM_API_BASE``, where the connection is opened:
            DingTalk's API, or a loopback stand-in in tests.
    """

    app_key: str
    app_secret: str = field(repr=False)
    bridge_secret: str = field(repr=False)
    rasa_url: str = DEFAULT_RASA_URL
    timeout_s: float = DEFAULT_TIMEOUT_S
    api_base: str = DINGTALK_API_BASE

    @property
    def open_connection_api(self) -> str:
        """The URL that opens a Stream connection (the SDK's ``OPEN_CONNECTION_API``)."""
        return self.api_base + OPEN_CONNECTION_PATH

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> BridgeConfig:
        """Reads and checks the settings.

        Args:
            environ: The environment (``os.environ``).

        Returns:
            The settings.

        Raises:
            BridgeConfigError: A setting is missing or wrong; the message names the
                variable, its value (never a secret's) and the fix.
        """
        app_key = _required(environ, "DINGTALK_APP_KEY", "the app's AppKey (Client ID)")
        app_secret = _required(environ, "DINGTALK_APP_SECRET",
                               "the app's AppSecret (Client Secret)")
        bridge_secret = environ.get("DINGTALK_STREAM_BRIDGE_SECRET", "")
        problem = secret_problem(bridge_secret)
        if problem:
            raise BridgeConfigError(
                f"DINGTALK_STREAM_BRIDGE_SECRET cannot be used: {problem}. Export the same "
                f"secret as Rasa's `bridge_secret` (credentials file), at least 32 bytes.")
        rasa_url = environ.get("DINGTALK_STREAM_RASA_URL") or DEFAULT_RASA_URL
        parts = urlsplit(rasa_url)
        if not parts.hostname or not (
                parts.scheme == "https"
                or (parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS)):
            # The messages travel unencrypted over http: only across loopback.
            raise BridgeConfigError(
                f"DINGTALK_STREAM_RASA_URL must be http:// on a loopback address or "
                f"https://, not {rasa_url!r}; the default is {DEFAULT_RASA_URL}.")
        api_base = (environ.get("DINGTALK_STREAM_API_BASE") or DINGTALK_API_BASE).rstrip("/")
        if api_base != DINGTALK_API_BASE and urlsplit(api_base).hostname not in _LOOPBACK_HOSTS:
            # The AppSecret is sent there: refuse a typo rather than leak it.
            raise BridgeConfigError(
                f"DINGTALK_STREAM_API_BASE must be {DINGTALK_API_BASE} (or a loopback "
                f"address for a test stand-in), not {api_base!r}; unset it for the default.")
        timeout = environ.get("DINGTALK_STREAM_TIMEOUT_S")
        try:
            timeout_s = DEFAULT_TIMEOUT_S if not timeout else float(timeout)
        except ValueError:
            timeout_s = math.nan
        if not 0 < timeout_s < math.inf:
            raise BridgeConfigError(
                f"DINGTALK_STREAM_TIMEOUT_S must be a positive number of seconds, not "
                f"{timeout!r}; unset it for the default ({DEFAULT_TIMEOUT_S:g}).")
        return cls(app_key=app_key, app_secret=app_secret, bridge_secret=bridge_secret,
                   rasa_url=rasa_url, timeout_s=timeout_s, api_base=api_base)


def _required(environ: Mapping[str, str], name: str, what: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise BridgeConfigError(
            f"{name} is not set: export {what}, from the DingTalk developer console "
            f"(your app > Credentials & basic info).")
    return value


class RasaForwardingHandler(ChatbotHandler):
    """Answers each robot message with the replies of Rasa's Stream channel."""

    def __init__(self, config: BridgeConfig) -> None:
        """Creates the handler.

        Args:
            config: The bridge's settings.
        """
        super().__init__()
        self.config = config
        self.logger = logger  # the SDK's handlers log through self.logger

    async def process(self, callback: CallbackMessage) -> tuple[int, str]:
        """Forwards one robot message to Rasa and sends the replies.

        The SDK sends the ACK when this returns; DingTalk may deliver a message again
        when the ACK is late, and Rasa's channel answers each message id once.

        Args:
            callback: The SDK's frame; ``callback.data`` is the robot message.

        Returns:
            The ACK's status and message: OK whenever the message was handled, even if
            only with the failure reply (a retry would not fix a refused secret).
        """
        data = callback.data if isinstance(callback.data, dict) else {}
        try:
            incoming = ChatbotMessage.from_dict(data)
        except (KeyError, TypeError, ValueError, AttributeError):
            logger.warning("DingTalk Stream: a robot message the SDK cannot read; ignored")
            return AckMessage.STATUS_BAD_REQUEST, "malformed message"
        body = json.dumps(data, ensure_ascii=False).encode()
        answer = await forward_to_rasa(self.config.rasa_url, self.config.bridge_secret,
                                       body, timeout_s=self.config.timeout_s)
        await self._answer(answer, incoming)
        return AckMessage.STATUS_OK, "OK"

    async def _answer(self, answer: RasaAnswer, incoming: ChatbotMessage) -> None:
        msg_id = incoming.message_id
        if answer.outcome is Outcome.DUPLICATE:
            logger.info("DingTalk Stream: message %s delivered again; answered once", msg_id)
            return
        if answer.outcome is Outcome.REFUSED:
            logger.error("DingTalk Stream: Rasa refused message %s (%s): check that "
                         "DINGTALK_STREAM_BRIDGE_SECRET equals Rasa's bridge_secret and "
                         "that both clocks are right", msg_id, answer.detail)
            await self._send({"msgtype": "text", "text": {"content": FAILURE_REPLY}}, incoming)
            return
        if answer.outcome is Outcome.FAILED:
            logger.error("DingTalk Stream: no answer from Rasa for message %s: %s", msg_id,
                         answer.detail)
            await self._send({"msgtype": "text", "text": {"content": FAILURE_REPLY}}, incoming)
            return
        for message in answer.messages:
            await self._send(message, incoming)

    async def _send(self, message: dict[str, Any], incoming: ChatbotMessage) -> None:
        # The SDK's reply methods use requests, which blocks: keep the connection's
        # event loop (ACKs, pings, other messages) running meanwhile.
        msgtype = message.get("msgtype")
        text = message.get("text") if isinstance(message.get("text"), dict) else {}
        markdown = message.get("markdown") if isinstance(message.get("markdown"), dict) else {}
        if msgtype == "text" and isinstance(text.get("content"), str):
            result = await asyncio.to_thread(self.reply_text, text["content"], incoming)
        elif msgtype == "markdown" and isinstance(markdown.get("text"), str):
            result = await asyncio.to_thread(self.reply_markdown,
                                             str(markdown.get("title") or ""),
                                             markdown["text"], incoming)
        else:
            logger.warning("DingTalk Stream: a %s reply cannot be sent in Stream mode; "
                           "dropped", msgtype)
            return
        if result is None:  # the SDK logged the error already
            logger.warning("DingTalk Stream: DingTalk did not take a %s reply to message %s",
                           msgtype, incoming.message_id)


class HideTicket(logging.Filter):
    """Masks the connection ticket in the SDK's log line ``endpoint is {...}``.

    The ticket admits one WebSocket connection to the app's messages; logs are kept
    longer and read by more people than that should allow.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrites the record's dict arguments that hold a ``ticket``; keeps the record."""
        # LogRecord unpacks a lone mapping argument: ``args`` is then the dict itself.
        if isinstance(record.args, dict) and "ticket" in record.args:
            record.args = {**record.args, "ticket": "***"}
        elif isinstance(record.args, tuple):
            record.args = tuple({**arg, "ticket": "***"}
                                if isinstance(arg, dict) and "ticket" in arg else arg
                                for arg in record.args)
        return True


def build_client(config: BridgeConfig) -> DingTalkStreamClient:
    """The SDK's client, subscribed to robot messages with :class:`RasaForwardingHandler`.

    Args:
        config: The bridge's settings.

    Returns:
        The client; ``start_forever()`` connects, and reconnects after errors.
    """
    # The SDK reads the URL from this class attribute; the stand-in of the tests
    # replaces DingTalk's through DINGTALK_STREAM_API_BASE.
    DingTalkStreamClient.OPEN_CONNECTION_API = config.open_connection_api
    sdk_logger = logging.getLogger("bot.dingtalk_stream.sdk")
    if not any(isinstance(f, HideTicket) for f in sdk_logger.filters):
        sdk_logger.addFilter(HideTicket())
    client = DingTalkStreamClient(Credential(config.app_key, config.app_secret),
                                  logger=sdk_logger)
    client.register_callback_handler(ChatbotMessage.TOPIC, RasaForwardingHandler(config))
    return client


def main(environ: Mapping[str, str] = os.environ) -> int:
    """Runs the bridge until interrupted.

    Args:
        environ: The environment with the settings (see :class:`BridgeConfig`).

    Returns:
        The exit status: 2 for a configuration error (the message is on stderr).
    """
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config = BridgeConfig.from_environ(environ)
    except BridgeConfigError as error:
        print(f"dingtalk-stream bridge: {error}", file=sys.stderr)
        return 2
    logger.info("DingTalk Stream bridge: robot messages of app %s go to %s "
                "(Stream connection via %s)", config.app_key, config.rasa_url,
                config.api_base)
    build_client(config).start_forever()  # the SDK's loop: reconnects, logs errors
    return 0


if __name__ == "__main__":
    sys.exit(main())
