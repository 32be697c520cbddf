"""Rasa's REST channel, for callers that are not browsers on other sites.

Same name (``rest``), path (``/webhooks/rest/webhook``) and answers as Rasa 3.6's
``RestInput``; use it in credentials.yml as ``bot.rest.RestInput:`` instead of
``rest:``. The differences, each answered before Rasa sees the message:

- **415** unless ``Content-Type`` is ``application/json``. Sanic parses a JSON body
  whatever its declared type, so without this check another website could post
  to the webhook from a visitor's browser with a plain HTML form or a "simple"
  ``fetch`` (``text/plain``, ``application/x-www-form-urlencoded``,
  ``multipart/form-data``), which browsers send without asking (no CORS preflight).
- **401** without ``Authorization: Bearer <token>`` when a token is configured:
  the ``token`` option under ``bot.rest.RestInput:``, else ``REST_WEBHOOK_TOKEN``
  from the environment (compared in constant time). Without either, the webhook
  is open, as Rasa's is.
- **400** for a body that is not a JSON object (Rasa's answered 500) or whose
  ``sender`` is not a non-empty string of at most :data:`MAX_SENDER_LENGTH`
  characters (Rasa's put every sender-less caller in one conversation, ``default``).
- The Rasa sender id is ``rest:<sender>``: REST callers name conversations in their
  own namespace and cannot continue a web chat or DingTalk conversation.
- **503** (``Retry-After: 1``) when Rasa failed to handle the message (Rasa's
  answered 200 with the replies collected before the failure, which no tracker
  then holds): the caller sends it again.
- The input channel is always ``rest`` (Rasa's took the caller's ``input_channel``),
  and ``verified_identity`` is dropped from the caller's ``metadata``
  (:mod:`bot.trust`): a REST caller is never a verified customer.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import rasa.utils.endpoints
from rasa.core.channels import rest
from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.shared.exceptions import InvalidConfigException
from sanic import Blueprint, response
from sanic.exceptions import SanicException
from sanic.request import Request
from sanic.response import HTTPResponse, ResponseStream

from bot.trust import client_metadata, sender_id

logger = logging.getLogger(__name__)

TOKEN_VARIABLE = "REST_WEBHOOK_TOKEN"
CREDENTIALS_KEY = "bot.rest.RestInput"
MAX_SENDER_LENGTH = 200


def json_object(request: Request) -> dict[str, Any]:
    """The request's JSON body; ``SanicException`` (400) unless it is an object."""
    body = request.json
    if not isinstance(body, dict):
        raise SanicException('the body must be a JSON object: {"sender": ..., "message": ...}',
                             status_code=400)
    return body


def is_json(content_type: str | None) -> bool:
    """Whether a ``Content-Type`` header declares JSON (``application/json``, any
    parameters such as ``charset``)."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type == "application/json"


def bearer_token_matches(authorization: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <token>``.

    Args:
        authorization: The header, None when absent.
        token: The configured token.

    Returns:
        True on a match; the comparison takes the same time wherever the
        presented token first differs.
    """
    scheme, _, presented = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), token.encode())


def webhook_token(credentials: Mapping[str, Any], environ: Mapping[str, str]) -> str | None:
    """The token the webhook requires: the ``token`` option, else ``REST_WEBHOOK_TOKEN``.

    Args:
        credentials: The channel's credentials block.
        environ: The environment.

    Returns:
        The token, or None for an open webhook.

    Raises:
        InvalidConfigException: The option is set but not a non-empty string.
    """
    option = credentials.get("token")
    if option is not None:
        if not isinstance(option, str) or not option.strip():
            raise InvalidConfigException(
                f"'token' under `{CREDENTIALS_KEY}:` must be a non-empty string; use "
                f"`token: ${{{TOKEN_VARIABLE}}}`, or leave it out and set {TOKEN_VARIABLE}")
        return option.strip()
    return environ.get(TOKEN_VARIABLE, "").strip() or None


class RestInput(rest.RestInput):
    """``rest.RestInput`` behind the checks in this module's docstring."""

    def __init__(self, token: str | None = None) -> None:
        """Creates the channel.

        Args:
            token: The bearer token callers must send; None: an open webhook.
        """
        self.token = token

    @classmethod
    def name(cls) -> str:
        """The channel's name; its routes live under ``/webhooks/rest/``."""
        return "rest"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        """Builds the channel from its credentials block and the environment.

        Args:
            credentials: The block under ``bot.rest.RestInput:`` (usually empty);
                ``token`` is the only option.

        Returns:
            The channel.
        """
        credentials = credentials if isinstance(credentials, dict) else {}
        return cls(token=webhook_token(credentials, os.environ))

    async def _extract_sender(self, req: Request) -> str | None:
        sender = json_object(req).get("sender", None)
        if not isinstance(sender, str) or not 0 < len(sender) <= MAX_SENDER_LENGTH:
            raise SanicException(f"'sender' must be a string of 1-{MAX_SENDER_LENGTH} "
                                 f"characters", status_code=400)
        return sender_id(self.name(), sender)

    def _extract_message(self, req: Request) -> str | None:
        text = json_object(req).get("message", None)
        # A number or an object would fail the turn inside Rasa, and a failed turn
        # is answered 503 ("send it again"), which cannot help here.
        if text is not None and not isinstance(text, str):
            raise SanicException("'message' must be a string", status_code=400)
        return text

    def _extract_input_channel(self, req: Request) -> str:
        return self.name()

    def get_metadata(self, request: Request) -> dict[str, Any]:
        return client_metadata(json_object(request).get("metadata", None))

    def _refusal(self, request: Request) -> HTTPResponse | None:
        """The answer to a request that must not reach Rasa, None for one that may."""
        if self.token is not None and not bearer_token_matches(
                request.headers.get("authorization"), self.token):
            logger.warning("REST: refused a request without the webhook's bearer token")
            return response.json({"error": "a valid 'Authorization: Bearer' token is required"},
                                 status=401, headers={"WWW-Authenticate": "Bearer"})
        if not is_json(request.headers.get("content-type")):
            return response.json({"error": "the body must be JSON sent as "
                                           "'Content-Type: application/json'"}, status=415)
        return None

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[None]]
                  ) -> Blueprint:
        """``GET /`` (health) and ``POST /webhook``, as Rasa's, behind the checks.

        Args:
            on_new_message: Rasa's handler of incoming user messages.

        Returns:
            The blueprint, mounted under ``/webhooks/rest``.
        """
        # Rasa's routes are closures; this one does what Rasa 3.6's ``receive`` does
        # after the refusals above (the streaming answer included).
        custom_webhook = Blueprint(f"custom_webhook_{type(self).__name__}", __name__)

        @custom_webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @custom_webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> ResponseStream | HTTPResponse:
            refusal = self._refusal(request)
            if refusal is not None:
                return refusal
            sender = await self._extract_sender(request)
            text = self._extract_message(request)
            input_channel = self._extract_input_channel(request)
            metadata = self.get_metadata(request)
            if rasa.utils.endpoints.bool_arg(request, "stream", default=False):
                return response.stream(
                    self.stream_response(on_new_message, text, sender, input_channel,
                                         metadata),
                    content_type="text/event-stream")
            collector = CollectingOutputChannel()
            try:
                await on_new_message(UserMessage(text, collector, sender,
                                                 input_channel=input_channel,
                                                 metadata=metadata))
            except asyncio.CancelledError:  # as Rasa's: a timeout answers what was collected
                logger.error("REST: handling a message timed out")
            except Exception:  # noqa: BLE001 - logged; the caller is told to send it again
                # Rasa's answered 200 with the replies collected so far; but the turn
                # failed (e.g. the tracker store was down when Rasa saved it), so the
                # customer would see answers that no tracker holds, and the next turn
                # would go on from a conversation without them. A 503 says "send it
                # again", which is safe: a failed turn saved nothing (make scale-check).
                logger.exception("REST: handling a message failed")
                return response.json(
                    {"error": "the message could not be handled; send it again"},
                    status=503, headers={"Retry-After": "1"})
            return response.json(collector.messages)

        return custom_webhook
