"""Rasa's REST channel, answering 400 to a body that is not a JSON object.

Rasa 3.6's ``RestInput`` calls ``request.json.get(...)``, so a JSON list or
string body ends in a 500. This subclass keeps the same name (``rest``), path
(``/webhooks/rest/webhook``) and behaviour, and refuses such bodies with 400.
Use it in credentials.yml as ``bot.rest.RestInput:`` instead of ``rest:``.
"""

from __future__ import annotations

from typing import Any

from rasa.core.channels import rest
from sanic.exceptions import SanicException
from sanic.request import Request


def json_object(request: Request) -> dict[str, Any]:
    """The request's JSON body; ``SanicException`` (400) unless it is an object."""
    body = request.json
    if not isinstance(body, dict):
        raise SanicException('the body must be a JSON object: {"sender": ..., "message": ...}',
                             status_code=400)
    return body


class RestInput(rest.RestInput):
    """``rest.RestInput`` with a 400 for bodies of the wrong shape."""

    @classmethod
    def name(cls) -> str:
        return "rest"

    async def _extract_sender(self, req: Request) -> str | None:
        return json_object(req).get("sender", None)

    def _extract_message(self, req: Request) -> str | None:
        return json_object(req).get("message", None)

    def _extract_input_channel(self, req: Request) -> str:
        return json_object(req).get("input_channel") or self.name()

    def get_metadata(self, request: Request) -> Any:
        return json_object(request).get("metadata", None)
