"""A self-hosted web chat page, served by the Rasa server itself.

``bot.webchat.WebChatInput`` (registered in credentials.yml) serves the page under
``/webhooks/webchat/`` and its socket.io endpoint at ``/webhooks/webchat/socket.io``, so
the page and its socket are same-origin. The socket speaks Rasa's own socket.io channel
protocol (``session_request``/``session_confirm``, ``user_uttered``/``bot_uttered``):
the channel *is* Rasa's ``SocketIOInput``, with these differences:

- **Rooms are awaited.** Rasa 3.6 calls ``AsyncServer.enter_room`` without ``await``,
  which python-socketio >= 5.10 made a coroutine, so a persistent session never joins
  its room and every reply to it is lost (RasaHQ/rasa#13027).
- **The server issues the session ids** (:mod:`bot.webchat_session`): signed, bound to
  the verified customer if any; a ``session_request`` with an id that does not verify
  gets a new one, and a socket leaves its previous session's room. The Rasa sender id
  is ``webchat:<session uuid>``.
- **Customer identity** (:mod:`bot.identity`): a ``session_request`` may carry
  ``customer_token``, a JWT the shop signed with ``SHOP_IDENTITY_SECRET``. A session
  with a valid one gets ``metadata["verified_identity"] = {"channel": "webchat",
  "customer_id": <sub>}`` on every message; a session with an invalid, expired or
  (with ``require_customer_token``) missing one is refused: ``session_refused``
  ``{"reason": ...}``, then the server disconnects the socket. Without
  ``SHOP_IDENTITY_SECRET`` the chat is anonymous only and every token is refused.
  Clients never set ``verified_identity`` themselves: it is dropped from their metadata.
- **Origins**: python-engineio refuses a handshake whose ``Origin`` is neither the
  server's own nor one of ``allowed_origins`` (Rasa's channel turns the check off).
"""

from __future__ import annotations

import html
import inspect
import json
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.socketio import SocketBlueprint, SocketIOInput, SocketIOOutput
from rasa.shared.exceptions import InvalidConfigException
from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncServer

from bot import identity
from bot.trust import VERIFIED_IDENTITY, client_metadata
from bot.webchat_session import SessionSigner, session_secret, session_sender_id

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().with_name("webchat")
DEFAULT_TITLE = "Shopwise assistant"
DEFAULT_SOCKETIO_PATH = "/webhooks/webchat/socket.io"
CREDENTIALS_KEY = "bot.webchat.WebChatInput"
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
SESSION_REFUSED_EVT = "session_refused"


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


def render_index(title: str, socketio_path: str, root: Path = STATIC_DIR,
                 embed_origins: Iterable[str] = ()) -> str:
    """index.html with the page title, the socket.io path and the origins that may
    embed the page filled in (HTML-escaped).

    Args:
        title: The heading and document title of the page.
        socketio_path: The path the page's socket.io client connects to.
        root: The directory of the static assets.
        embed_origins: The origins whose pages may frame the chat and hand it a
            customer token with ``postMessage``.

    Returns:
        The HTML of the page.
    """
    text = (root / "index.html").read_text(encoding="utf-8")
    return (text.replace("{{title}}", html.escape(title, quote=True))
            .replace("{{socketio_path}}", html.escape(socketio_path, quote=True))
            .replace("{{embed_origins}}", html.escape(" ".join(embed_origins), quote=True)))


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


# -- origins ------------------------------------------------------------------------------


def normalise_origin(value: Any) -> str | None:
    """``value`` as an origin ``scheme://host[:port]`` the way browsers send it.

    Args:
        value: An origin, e.g. ``"https://Shop.example:443/"``.

    Returns:
        The lower-cased origin without a default port or trailing slash
        (``"https://shop.example"``); None unless ``value`` is an http(s) origin
        without user name, path, query or fragment.
    """
    if not isinstance(value, str):
        return None
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:  # a port that is not a number, a bad IPv6 literal
        return None
    if (parts.scheme not in ("http", "https") or not parts.hostname
            or parts.username is not None or parts.password is not None
            or parts.path not in ("", "/") or parts.query or parts.fragment):
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is not None and port != {"http": 80, "https": 443}[parts.scheme]:
        host = f"{host}:{port}"
    return f"{parts.scheme}://{host}"


def allowed_origins_option(value: Any) -> tuple[str, ...]:
    """The ``allowed_origins`` credentials option, normalised.

    Args:
        value: The option: a list of origins, one origin, or None.

    Returns:
        The normalised origins.

    Raises:
        InvalidConfigException: An entry is not an http(s) origin (``*`` included:
            list the shop's origins instead).
    """
    if value is None:
        return ()
    entries = [value] if isinstance(value, str) else value
    if not isinstance(entries, list):
        raise InvalidConfigException(
            f"'allowed_origins' under `{CREDENTIALS_KEY}:` must be a list of origins "
            f"such as https://shop.example")
    origins = []
    for entry in entries:
        origin = normalise_origin(entry)
        if origin is None:
            raise InvalidConfigException(
                f"'allowed_origins' under `{CREDENTIALS_KEY}:` holds {entry!r}, which is "
                f"not an origin (scheme://host[:port], no path; '*' is not accepted)")
        origins.append(origin)
    return tuple(dict.fromkeys(origins))


def request_origins(environ: Mapping[str, Any]) -> set[str]:
    """The server's own origins as the request names them (the same-origin page).

    Like python-engineio's default: the ``Host`` header with the request's scheme,
    and what a reverse proxy passes in ``X-Forwarded-Proto``/``X-Forwarded-Host``
    (a browser cannot set those on a cross-site request). Sanic's own scheme is
    added, so that a server with TLS accepts its ``https`` page.

    Args:
        environ: The WSGI-style environ python-engineio builds from the request.

    Returns:
        The normalised origins.
    """
    hosts = {environ.get("HTTP_HOST", "")}
    if environ.get("HTTP_X_FORWARDED_HOST"):
        hosts.add(environ["HTTP_X_FORWARDED_HOST"].split(",")[0].strip())
    schemes = {environ.get("wsgi.url_scheme", "http")}
    if environ.get("HTTP_X_FORWARDED_PROTO"):
        schemes.add(environ["HTTP_X_FORWARDED_PROTO"].split(",")[0].strip())
    request = environ.get("sanic.request")
    if request is not None:
        try:
            schemes.add({"ws": "http", "wss": "https"}.get(request.scheme, request.scheme))
        except Exception:  # noqa: BLE001 - a request without a transport (tests)
            pass
    origins = {normalise_origin(f"{scheme}://{host}") for scheme in schemes for host in hosts
               if host}
    return {origin for origin in origins if origin}


def origin_allowed(origin: str | None, environ: Mapping[str, Any],
                   allowed: Iterable[str] = ()) -> bool:
    """Whether a socket.io handshake from a page of ``origin`` is accepted.

    Args:
        origin: The request's ``Origin`` header.
        environ: The request's environ (for the server's own origins).
        allowed: The configured ``allowed_origins``, normalised.

    Returns:
        True for the server's own origin and the configured ones; False for any
        other, ``null`` (sandboxed frames, files) included.
    """
    normalised = normalise_origin(origin)
    return normalised is not None and (normalised in allowed
                                       or normalised in request_origins(environ))


# -- customer identity --------------------------------------------------------------------


class SessionRefused(Exception):
    """A ``session_request`` the channel refuses; ``reason`` goes to the client."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class IdentityPolicy:
    """How the channel treats customer tokens.

    Attributes:
        secret: ``SHOP_IDENTITY_SECRET``; None: anonymous chat only, tokens refused.
        require_token: Whether sessions without a token are refused.
    """

    secret: str | None = field(default=None, repr=False)  # never in logs or tracebacks
    require_token: bool = False

    def customer(self, token: Any, now: float | None = None) -> str | None:
        """The verified customer of a ``session_request``, None for an anonymous one.

        Args:
            token: The request's ``customer_token`` (None when absent).
            now: The current time (seconds since the epoch); the clock when None.

        Returns:
            The customer id, or None for an accepted anonymous session.

        Raises:
            SessionRefused: ``token_required``, ``identity_unavailable`` (a token
                while no secret is configured), ``token_expired`` or ``token_invalid``.
        """
        if token is None or token == "":
            if self.require_token:
                raise SessionRefused("token_required", "no customer token")
            return None
        if self.secret is None:
            raise SessionRefused("identity_unavailable",
                                 f"a customer token, but {identity.SECRET_VARIABLE} is not set")
        try:
            return identity.verify_customer_token(token, self.secret, now)
        except identity.TokenExpired:
            raise SessionRefused("token_expired", "an expired customer token") from None
        except identity.IdentityError as error:
            raise SessionRefused("token_invalid", f"an invalid customer token: {error}") from None


def identity_policy(environ: Mapping[str, str], require_token: Any) -> IdentityPolicy:
    """The identity policy from the environment and the ``require_customer_token`` option.

    Args:
        environ: The environment (``SHOP_IDENTITY_SECRET``).
        require_token: The option's value (None when absent).

    Returns:
        The policy.

    Raises:
        InvalidConfigException: The option is not a boolean, the secret is too
            short, or tokens are required while no secret is set.
    """
    if require_token is None:
        require_token = False
    if not isinstance(require_token, bool):
        raise InvalidConfigException(
            f"'require_customer_token' under `{CREDENTIALS_KEY}:` must be true or false")
    secret = environ.get(identity.SECRET_VARIABLE) or None
    if secret is not None:
        try:
            identity.check_secret(secret)
        except ValueError as error:
            raise InvalidConfigException(str(error)) from None
    elif require_token:
        raise InvalidConfigException(
            f"'require_customer_token: true' under `{CREDENTIALS_KEY}:` needs "
            f"{identity.SECRET_VARIABLE} in the environment: no session could be opened")
    return IdentityPolicy(secret=secret, require_token=require_token)


# -- the channel --------------------------------------------------------------------------


async def _awaited(result: Any) -> None:
    # python-socketio >= 5.10 made enter_room/leave_room coroutines; older ones return None.
    if inspect.isawaitable(result):
        await result


class WebChatInput(SocketIOInput):
    """The web chat page and its socket.io endpoint (Rasa's socket.io protocol)."""

    @classmethod
    def name(cls) -> str:
        """The channel's name; its routes live under ``/webhooks/webchat/``."""
        return "webchat"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        """Builds the channel from its credentials.yml entry and the environment.

        Args:
            credentials: The options: ``title`` (of the page), ``allowed_origins``
                (origins besides the server's own whose pages may connect and
                embed the chat), ``require_customer_token`` (default false) and
                those of Rasa's ``socketio`` channel; ``session_persistence``
                defaults to true and ``socketio_path`` to
                ``/webhooks/webchat/socket.io``. The secrets come from the
                environment: ``WEBCHAT_SESSION_SECRET``, ``SHOP_IDENTITY_SECRET``.

        Returns:
            The channel.

        Raises:
            InvalidConfigException: An option or a secret is unusable.
        """
        credentials = credentials if isinstance(credentials, dict) else {}
        try:
            secret = session_secret(os.environ)
        except ValueError as error:
            raise InvalidConfigException(str(error)) from None
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
            session_secret=secret,
            identity=identity_policy(os.environ, credentials.get("require_customer_token")),
            allowed_origins=allowed_origins_option(credentials.get("allowed_origins")),
        )

    def __init__(self, title: str = DEFAULT_TITLE, *,
                 socketio_path: str = DEFAULT_SOCKETIO_PATH,
                 session_persistence: bool = True,
                 session_secret: bytes | str | None = None,
                 identity: IdentityPolicy | None = None,
                 allowed_origins: Iterable[str] = (),
                 **socketio_options: Any) -> None:
        """Creates the channel.

        Args:
            title: The heading and document title of the page.
            socketio_path: The path of the socket.io endpoint.
            session_persistence: Whether a ``session_request`` with a valid session
                id continues that conversation (the page relies on it across reloads).
            session_secret: The key that signs session ids; None draws a random
                one (sessions then end with the process).
            identity: The customer-token policy; None: anonymous only.
            allowed_origins: Origins besides the server's own whose pages may
                connect (normalised with :func:`normalise_origin`).
            **socketio_options: Further options of Rasa's ``SocketIOInput``.

        Raises:
            ValueError: An entry of ``allowed_origins`` is not an origin.
        """
        super().__init__(socketio_path=socketio_path, session_persistence=session_persistence,
                         **socketio_options)
        self.title = title
        self.sessions = SessionSigner(session_secret if session_secret is not None
                                      else _random_secret())
        self.identity = identity or IdentityPolicy()
        origins = [(origin, normalise_origin(origin)) for origin in allowed_origins]
        wrong = [origin for origin, normalised in origins if normalised is None]
        if wrong:
            raise ValueError(f"not origins (scheme://host[:port]): {wrong}")
        self.allowed_origins = tuple(dict.fromkeys(normalised for _, normalised in origins))

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
        # Rasa passes cors_allowed_origins=[], which turns python-engineio's Origin
        # check off; a callable makes engineio check every handshake (and set the
        # CORS headers) for the server's own origin and the configured ones.
        sio.eio.cors_allowed_origins = self.origin_allowed
        # The chat uses no cookies: other origins' pages get no credentialed access.
        sio.eio.cors_credentials = False
        sio.on("session_request", namespace=self.namespace)(self._session_request(sio))
        sio.on(self.user_message_evt, namespace=self.namespace)(
            self._user_uttered(sio, on_new_message))
        webchat = SocketBlueprint(sio, self.socketio_path, "webchat")

        def page_headers() -> dict[str, str]:
            # Only the shop's own pages may frame the chat (clickjacking).
            ancestors = " ".join(("'self'", *self.allowed_origins))
            return {**HEADERS, "Content-Security-Policy": f"frame-ancestors {ancestors}"}

        def page() -> HTTPResponse:
            return response.html(render_index(self.title, self.socketio_path,
                                              embed_origins=self.allowed_origins),
                                 headers=page_headers())

        @webchat.route("/", methods=["GET", "HEAD"])
        async def index(request: Request) -> HTTPResponse:
            if not request.path.endswith("/"):  # relative asset URLs need the slash
                query = f"?{request.query_string}" if request.query_string else ""
                return response.redirect(f"{request.path}/{query}", headers=dict(HEADERS))
            return page()

        @webchat.route(f"/<name:{ASSET_NAME}>", methods=["GET", "HEAD"])
        async def asset(_: Request, name: str) -> HTTPResponse:
            path = static_file(name)
            if path is None:
                return response.text("Not Found", status=404, headers=dict(HEADERS))
            if path.name == "index.html":
                return page()
            return response.raw(path.read_bytes(), headers=dict(HEADERS),
                                content_type=CONTENT_TYPES[path.suffix.lower()])

        return webchat

    def origin_allowed(self, origin: str | None, environ: Mapping[str, Any]) -> bool:
        """python-engineio's ``cors_allowed_origins`` callable (see :func:`origin_allowed`)."""
        allowed = origin_allowed(origin, environ, self.allowed_origins)
        if not allowed:
            logger.warning("web chat: refused a connection from the origin %r",
                           str(origin)[:100])
        return allowed

    async def _leave(self, sio: AsyncServer, sid: str, session: dict[str, Any]) -> None:
        room = session.get("room")
        if room:
            await _awaited(sio.leave_room(sid, room, namespace=self.namespace))

    def _session_request(self, sio: AsyncServer
                         ) -> Callable[[str, Any], Awaitable[None]]:
        """The ``session_request`` handler: identity, a signed session id, its room."""

        async def session_request(sid: str, data: Any) -> None:
            previous = await sio.get_session(sid, namespace=self.namespace)
            token = data.get("customer_token") if isinstance(data, dict) else None
            try:
                customer_id = self.identity.customer(token)
            except SessionRefused as refusal:
                # The reason only: the token itself never goes to the log.
                logger.warning("web chat: refused a session: %s", refusal)
                await self._leave(sio, sid, previous)
                await sio.save_session(sid, {}, namespace=self.namespace)
                await sio.emit(SESSION_REFUSED_EVT, {"reason": refusal.reason}, room=sid,
                               namespace=self.namespace)
                await sio.disconnect(sid, namespace=self.namespace)
                return
            requested = valid_session_id(data)
            if (requested and self.session_persistence
                    and self.sessions.verify(requested, customer_id)):
                session_id = requested
            else:
                if requested:
                    logger.info("web chat: a requested session id did not verify for this "
                                "socket; issued a new session")
                session_id = self.sessions.issue(customer_id)
            room = session_sender_id(session_id)
            if previous.get("room") != room:
                await self._leave(sio, sid, previous)
            await _awaited(sio.enter_room(sid, room, namespace=self.namespace))
            await sio.save_session(sid, {"session_id": session_id, "room": room,
                                         "customer_id": customer_id},
                                   namespace=self.namespace)
            await sio.emit("session_confirm", session_id, room=sid, namespace=self.namespace)

        return session_request

    def _user_uttered(self, sio: AsyncServer,
                      on_new_message: Callable[[UserMessage], Awaitable[Any]]
                      ) -> Callable[..., Awaitable[None]]:
        """Rasa's ``user_uttered`` handler, for untrusted payloads.

        Rasa's own raises on a payload that is not an object or on metadata that
        is not JSON, passes non-text messages into the pipeline, and lets a
        socket write into any session whose id it names. This one ignores (and
        logs) malformed events, accepts messages only for the session this
        socket was confirmed, drops a client's ``verified_identity`` and adds
        the session's verified customer.
        """

        async def handle_message(sid: str, *args: Any) -> None:
            # Clients may emit no argument or several: only one object is a message.
            data = args[0] if len(args) == 1 else None
            text = data.get("message") if isinstance(data, dict) else None
            if not isinstance(text, str):
                logger.warning("web chat: ignored a %s event without a text message",
                               self.user_message_evt)
                return
            session = await sio.get_session(sid, namespace=self.namespace)
            session_id = session.get("session_id")
            if session_id is None or data.get("session_id") != session_id:
                logger.warning("web chat: ignored a message for a session this socket "
                               "has not been confirmed")
                return
            raw = data.get(self.metadata_key)
            if isinstance(raw, str):
                try:
                    raw = json.loads(raw)
                except ValueError:
                    raw = None
            metadata = client_metadata(raw)
            if session.get("customer_id"):
                metadata[VERIFIED_IDENTITY] = {"channel": self.name(),
                                               "customer_id": session["customer_id"]}
            await on_new_message(UserMessage(
                text, SocketIOOutput(sio, self.bot_message_evt), session["room"],
                input_channel=self.name(), metadata=metadata))

        return handle_message


def _random_secret() -> bytes:
    # The same warning as without WEBCHAT_SESSION_SECRET: sessions end with the process.
    return session_secret({})
