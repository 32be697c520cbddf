"""A self-hosted web chat page, served by the Rasa server itself.

``bot.webchat.WebChatInput`` (registered in credentials.yml) serves the page under
``/webhooks/webchat/`` and its socket.io endpoint at ``/webhooks/webchat/socket.io``, so
the page and its socket are same-origin and need no CORS. The socket speaks Rasa's own
socket.io channel protocol (``session_request``/``session_confirm``,
``user_uttered``/``bot_uttered``): the channel *is* Rasa's ``SocketIOInput`` with
``session_persistence`` on and one fix. Rasa 3.6 calls ``AsyncServer.enter_room`` without
``await``, which python-socketio >= 5.10 made a coroutine, so a persistent session never
joins its room and every reply to it is lost (RasaHQ/rasa#13027); this channel awaits it.
"""

from __future__ import annotations

import html
import inspect
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.socketio import SocketBlueprint, SocketIOInput, SocketIOOutput
from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncServer

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().with_name("webchat")
DEFAULT_TITLE = "Shopwise assistant"
DEFAULT_SOCKETIO_PATH = "/webhooks/webchat/socket.io"
# Only these file types are served; anything else under STATIC_DIR is a 404.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
# The route of the assets: flat file names with a served suffix, so that it never
# shadows the socket.io endpoint below the same prefix (``socket.io/``).
ASSET_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*\.(?:{})".format(
    "|".join(suffix[1:] for suffix in CONTENT_TYPES))
# Revalidate on every load, so a new version of the page is never mixed with cached
# assets of the old one; nosniff keeps browsers to the declared content types.
# (Responses get a copy: sanic adds e.g. Location to the dict it is given.)
HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
MAX_SESSION_ID_LENGTH = 128


def static_file(name: str, root: Path = STATIC_DIR) -> Path | None:
    """The file that ``name`` names under ``root``, or None if it must not be served.

    Args:
        name: The requested path relative to ``root``, as it came in the URL.
        root: The directory of the static assets.

    Returns:
        The resolved path of a regular file inside ``root`` with an allowed suffix;
        None for anything else (missing, hidden, outside ``root``, other types).
    """
    if not name or "\\" in name or "\x00" in name:
        return None
    if any(part.startswith(".") for part in name.split("/")):
        return None  # hidden files, "." and ".." (before resolving symlinks)
    base = root.resolve()
    path = (base / name).resolve()
    if not path.is_relative_to(base) or not path.is_file():
        return None
    if path.suffix.lower() not in CONTENT_TYPES:
        return None
    return path


def render_index(title: str, socketio_path: str, root: Path = STATIC_DIR) -> str:
    """index.html with the page title and the socket.io path filled in (HTML-escaped).

    Args:
        title: The heading and document title of the page.
        socketio_path: The path the page's socket.io client connects to.
        root: The directory of the static assets.

    Returns:
        The HTML of the page.
    """
    text = (root / "index.html").read_text(encoding="utf-8")
    return (text.replace("{{title}}", html.escape(title, quote=True))
            .replace("{{socketio_path}}", html.escape(socketio_path, quote=True)))


def valid_session_id(data: Any) -> str | None:
    """The client's ``session_id`` from a ``session_request`` if it is usable.

    Args:
        data: The payload of the ``session_request`` event.

    Returns:
        The session id, or None when the client sent none (or a malformed one).
    """
    if not isinstance(data, dict):
        return None
    session_id = data.get("session_id")
    if isinstance(session_id, str) and 0 < len(session_id) <= MAX_SESSION_ID_LENGTH:
        return session_id
    return None


class WebChatInput(SocketIOInput):
    """The web chat page and its socket.io endpoint (Rasa's socket.io protocol)."""

    @classmethod
    def name(cls) -> str:
        """The channel's name; its routes live under ``/webhooks/webchat/``."""
        return "webchat"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        """Builds the channel from its credentials.yml entry.

        Args:
            credentials: The options: ``title`` (of the page) and those of Rasa's
                ``socketio`` channel; ``session_persistence`` defaults to true and
                ``socketio_path`` to ``/webhooks/webchat/socket.io``.

        Returns:
            The channel.
        """
        credentials = credentials or {}
        return cls(
            title=credentials.get("title", DEFAULT_TITLE),
            user_message_evt=credentials.get("user_message_evt", "user_uttered"),
            bot_message_evt=credentials.get("bot_message_evt", "bot_uttered"),
            namespace=credentials.get("namespace"),
            session_persistence=credentials.get("session_persistence", True),
            socketio_path=credentials.get("socketio_path", DEFAULT_SOCKETIO_PATH),
            jwt_key=credentials.get("jwt_key"),
            jwt_method=credentials.get("jwt_method", "HS256"),
            metadata_key=credentials.get("metadata_key", "metadata"),
        )

    def __init__(self, title: str = DEFAULT_TITLE, *,
                 socketio_path: str = DEFAULT_SOCKETIO_PATH,
                 session_persistence: bool = True, **socketio_options: Any) -> None:
        """Creates the channel.

        Args:
            title: The heading and document title of the page.
            socketio_path: The path of the socket.io endpoint.
            session_persistence: Whether a ``session_request`` with a known session id
                continues that conversation (the page relies on it across reloads).
            **socketio_options: Further options of Rasa's ``SocketIOInput``.
        """
        super().__init__(socketio_path=socketio_path, session_persistence=session_persistence,
                         **socketio_options)
        self.title = title

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
                  ) -> SocketBlueprint:
        """The page, its assets and the socket.io endpoint.

        Args:
            on_new_message: Rasa's handler of incoming user messages.

        Returns:
            A blueprint that attaches the socket.io server to the app when registered.
        """
        # Rasa's blueprint registers the socket.io event handlers on a new server;
        # only the server is kept (its health route would clash with the page).
        sio: AsyncServer = super().blueprint(on_new_message).ctx.sio
        sio.on("session_request", namespace=self.namespace)(self._session_request(sio))
        sio.on(self.user_message_evt, namespace=self.namespace)(
            self._user_uttered(sio, on_new_message))
        webchat = SocketBlueprint(sio, self.socketio_path, "webchat")

        @webchat.route("/", methods=["GET", "HEAD"])
        async def index(request: Request) -> HTTPResponse:
            if not request.path.endswith("/"):  # relative asset URLs need the slash
                query = f"?{request.query_string}" if request.query_string else ""
                return response.redirect(f"{request.path}/{query}", headers=dict(HEADERS))
            return response.html(render_index(self.title, self.socketio_path),
                                 headers=dict(HEADERS))

        @webchat.route(f"/<name:{ASSET_NAME}>", methods=["GET", "HEAD"])
        async def asset(_: Request, name: str) -> HTTPResponse:
            path = static_file(name)
            if path is None:
                return response.text("Not Found", status=404, headers=dict(HEADERS))
            if path.name == "index.html":
                return response.html(render_index(self.title, self.socketio_path),
                                     headers=dict(HEADERS))
            return response.raw(path.read_bytes(), headers=dict(HEADERS),
                                content_type=CONTENT_TYPES[path.suffix.lower()])

        return webchat

    def _session_request(self, sio: AsyncServer
                         ) -> Callable[[str, Any], Awaitable[None]]:
        """Rasa's ``session_request`` handler, with ``enter_room`` awaited."""

        async def session_request(sid: str, data: Any) -> None:
            session_id = valid_session_id(data) or uuid.uuid4().hex
            if self.session_persistence:
                entered = sio.enter_room(sid, session_id, namespace=self.namespace)
                if inspect.isawaitable(entered):  # python-socketio >= 5.10
                    await entered
                await sio.save_session(sid, {"session_id": session_id}, namespace=self.namespace)
            await sio.emit("session_confirm", session_id, room=sid, namespace=self.namespace)

        return session_request

    def _user_uttered(self, sio: AsyncServer,
                      on_new_message: Callable[[UserMessage], Awaitable[Any]]
                      ) -> Callable[..., Awaitable[None]]:
        """Rasa's ``user_uttered`` handler, for untrusted payloads.

        Rasa's own raises on a payload that is not an object or on metadata that
        is not JSON, passes non-text messages into the pipeline, and lets a
        socket write into any session whose id it names. This one ignores (and
        logs) malformed events and accepts messages only for the session this
        socket requested.
        """

        async def handle_message(sid: str, *args: Any) -> None:
            # Clients may emit no argument or several: only one object is a message.
            data = args[0] if len(args) == 1 else None
            text = data.get("message") if isinstance(data, dict) else None
            if not isinstance(text, str):
                logger.warning("web chat: ignored a %s event without a text message",
                               self.user_message_evt)
                return
            sender_id = sid
            if self.session_persistence:
                session = await sio.get_session(sid, namespace=self.namespace)
                sender_id = session.get("session_id")
                if sender_id is None or data.get("session_id") != sender_id:
                    logger.warning("web chat: ignored a message for a session this socket "
                                   "has not requested")
                    return
            metadata = data.get(self.metadata_key)
            if isinstance(metadata, str):
                try:
                    metadata = json.loads(metadata)
                except ValueError:
                    metadata = None
            await on_new_message(UserMessage(
                text, SocketIOOutput(sio, self.bot_message_evt), sender_id,
                input_channel=self.name(),
                metadata=metadata if isinstance(metadata, dict) else {}))

        return handle_message
