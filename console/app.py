"""The agent console's web app (aiohttp): pages, a small JSON API, cookies and CSRF.

Security, in the order a request meets it:

1. every answer carries a strict Content-Security-Policy (own scripts and styles
   only, no framing) and ``Cache-Control: no-store``;
2. everything but ``/login``, ``/static/`` and ``/health`` needs a signed-in
   agent: the session cookie (random, stored hashed, ``HttpOnly``, ``Secure``,
   ``SameSite=Strict``) must name a live session; pages redirect to ``/login``,
   the API answers 401;
3. every POST needs the session's CSRF token (``X-CSRF-Token`` header or the
   form's ``csrf_token`` field; sign-in uses a double-submit cookie) and, when
   the browser sends one, an ``Origin`` equal to the console's own.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from console import analytics, review
from console.rasa_api import RasaApi, RasaApiError
from console.settings import ConsoleSettings
from console.store import (
    CHANNELS,
    REASONS,
    AgentSession,
    ConsoleStore,
    NotYours,
    StoreError,
)
from console.transcript import lines, sparkline

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "console_session"
LOGIN_CSRF_COOKIE = "console_login_csrf"
CSRF_HEADER = "X-CSRF-Token"
PUBLIC = ("/login", "/static/", "/health", "/favicon.ico")
CLOSED_INTENT = "EXTERNAL_ticket_closed"  # actions.handoff.TICKET_CLOSED_INTENT
REFERENCE = re.compile(r"T-[0-9A-F]{8}")
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; "
                                "img-src 'self' data:; connect-src 'self'; form-action 'self'; "
                                "frame-ancestors 'none'; base-uri 'none'"),
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: with it, browsers send "Origin: null" on form posts, and the
    # same-origin check would refuse our own forms. same-origin leaks nothing outside.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}

SETTINGS = web.AppKey("settings", ConsoleSettings)
STORE = web.AppKey("store", ConsoleStore)
RASA = web.AppKey("rasa", RasaApi)
TRACKER = web.AppKey("tracker", dict)  # {"engine": AsyncEngine | None}, see tracker_engine
TEMPLATES = web.AppKey("templates", jinja2.Environment)
INTENTS = web.AppKey("intents", tuple)
ANALYTICS_CACHE = web.AppKey("analytics_cache", dict)
REVIEW_THRESHOLD = web.AppKey("review_threshold", float)
# Intents only buttons send: nothing an agent would label a typed message with.
BUTTON_ONLY_INTENTS = frozenset({"rate_support"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _session(request: web.Request) -> AgentSession:
    return request["session"]


def _cookie(response: web.StreamResponse, name: str, value: str, max_age: int) -> None:
    # Secure: browsers keep it off plain HTTP except on localhost (tests, make run);
    # a deployment puts the console behind TLS (docs/deployment in README).
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, secure=True,
                        samesite="Strict")


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:  # not a browser, or an old one: the CSRF token still guards
        return True
    return origin == f"{request.scheme}://{request.host}"


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as error:
        response = error
    response.headers.update(SECURITY_HEADERS)
    if not request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"
    if isinstance(response, web.HTTPException):
        raise response
    return response


def _refuse(request: web.Request, status: int, message: str) -> web.StreamResponse:
    if request.path.startswith("/api/") or request.method != "GET":
        return web.json_response({"error": message}, status=status)
    if status == 401:
        raise web.HTTPSeeOther("/login")
    return web.Response(status=status, text=message)


@web.middleware
async def authentication(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(PUBLIC):
        return await handler(request)
    session = await request.app[STORE].session(request.cookies.get(SESSION_COOKIE, ""))
    if session is None:
        return _refuse(request, 401, "sign in first")
    if request.method not in {"GET", "HEAD"}:
        if not _same_origin(request):
            return _refuse(request, 403, "cross-origin request refused")
        presented = request.headers.get(CSRF_HEADER, "")
        if not presented and request.content_type == "application/x-www-form-urlencoded":
            presented = str((await request.post()).get("csrf_token", ""))
        if not hmac.compare_digest(presented.encode(), session.csrf_token.encode()):
            return _refuse(request, 403, "missing or wrong CSRF token")
    request["session"] = session
    return await handler(request)


def render(request: web.Request, template: str, **context: Any) -> web.Response:
    page = request.app[TEMPLATES].get_template(template)
    session = request.get("session")
    body = page.render(agent=session.agent if session else None,
                       csrf=session.csrf_token if session else "", **context)
    return web.Response(text=body, content_type="text/html")


async def _json(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text="send application/json")
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="not JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="send a JSON object")
    return body


def _reference(request: web.Request) -> str:
    reference = request.match_info["reference"]
    if not REFERENCE.fullmatch(reference):
        raise web.HTTPNotFound(text="no such ticket")
    return reference


# -- sign-in --------------------------------------------------------------------------


async def login_page(request: web.Request) -> web.Response:
    # The same form token while the cookie lives: a second tab, or a redirect of the
    # browser's favicon request, must not invalidate the form already shown.
    token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not re.fullmatch(r"[A-Za-z0-9_-]{32}", token):
        token = secrets.token_urlsafe(24)
    response = render(request, "login.html", login_csrf=token, error=None)
    _cookie(response, LOGIN_CSRF_COOKIE, token, 600)
    return response


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    field = str(form.get("csrf_token", ""))
    if not cookie or not hmac.compare_digest(cookie.encode(), field.encode()) \
            or not _same_origin(request):
        return web.Response(status=403, text="the sign-in form expired; reload the page")
    store, settings = request.app[STORE], request.app[SETTINGS]
    agent = await store.authenticate(str(form.get("username", "")),
                                     str(form.get("password", "")))
    if agent is None:
        token = secrets.token_urlsafe(24)
        response = render(request, "login.html", login_csrf=token,
                          error="Wrong user name or password.")
        response.set_status(401)
        _cookie(response, LOGIN_CSRF_COOKIE, token, 600)
        return response
    token, _ = await store.open_session(agent, settings.session_ttl_s)
    logger.info("agent %s signed in", agent.username)
    response = web.HTTPSeeOther("/")
    _cookie(response, SESSION_COOKIE, token, int(settings.session_ttl_s))
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    await request.app[STORE].close_session(request.cookies.get(SESSION_COOKIE, ""))
    response = web.HTTPSeeOther("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def favicon(request: web.Request) -> web.Response:
    return web.Response(status=204)  # browsers ask for it; there is none


# -- the queue ----------------------------------------------------------------------


async def queue_page(request: web.Request) -> web.Response:
    return render(request, "queue.html", reasons=REASONS, channels=CHANNELS)


async def queue_api(request: web.Request) -> web.Response:
    reason = request.query.get("reason") or None
    channel = request.query.get("channel") or None
    if (reason and reason not in REASONS) or (channel and channel not in CHANNELS):
        return web.json_response({"error": "unknown reason or channel"}, status=400)
    me = _session(request).agent.agent_id
    items = await request.app[STORE].queue(reason=reason, channel=channel)
    return web.json_response({"tickets": [
        {**asdict(item), "negativity": list(item.negativity), "mine": item.assigned_agent == me,
         "sparkline": sparkline(item.negativity)} for item in items]})


async def claim(request: web.Request) -> web.Response:
    reference = _reference(request)
    agent = _session(request).agent
    if await request.app[STORE].claim(reference, agent):
        logger.info("agent %s claimed ticket %s", agent.username, reference)
        return web.json_response({"claimed": True, "reference": reference})
    return web.json_response({"error": "someone else has this ticket, or it is closed"},
                             status=409)


# -- a conversation -------------------------------------------------------------------


async def ticket_page(request: web.Request) -> web.Response:
    reference = _reference(request)
    ticket = await request.app[STORE].ticket(reference)
    if ticket is None:
        raise web.HTTPNotFound(text="no such ticket")
    return render(request, "ticket.html", ticket=ticket, intents=request.app[INTENTS])


async def ticket_api(request: web.Request) -> web.Response:
    reference = _reference(request)
    store = request.app[STORE]
    ticket = await store.ticket(reference)
    if ticket is None:
        return web.json_response({"error": "no such ticket"}, status=404)
    try:
        events = (await request.app[RASA].tracker(ticket.sender_id)).get("events") or []
        conversation, error = [line.to_json() for line in lines(events)], None
        # The review inbox's view of each customer message: its key, and the classifier's
        # own guess where the assistant fell back (so that "confirm" means something).
        items = {item.timestamp: item for item in (
            review.review_item(ticket.sender_id, event) for event in events
            if event.get("event") == "user") if item is not None}
    except RasaApiError as failure:
        conversation, error, items = [], str(failure), {}
    names = await store.agent_names([ticket.assigned_agent] if ticket.assigned_agent else [])
    waiting = [line.text for line in ticket.lines if line.role == "agent" and not line.delivered]
    for line in conversation:
        item = items.get(line["timestamp"]) if line["kind"] == "customer" else None
        if item is not None:
            line.update(message_key=item.message_key, predicted_intent=item.predicted_intent,
                        predicted_confidence=item.confidence)
    return web.json_response({
        "ticket": {**{k: v for k, v in asdict(ticket).items() if k not in {"lines"}},
                   "negativity": list(ticket.negativity),
                   "assigned_name": names.get(ticket.assigned_agent or ""),
                   "mine": ticket.assigned_agent == _session(request).agent.agent_id,
                   "sparkline": sparkline(ticket.negativity)},
        "lines": conversation, "waiting": waiting, "rasa_error": error})


async def reply(request: web.Request) -> web.Response:
    reference = _reference(request)
    text = str((await _json(request)).get("text", ""))
    agent = _session(request).agent
    store = request.app[STORE]
    ticket = await store.ticket(reference)
    if ticket is None:
        return web.json_response({"error": "no such ticket"}, status=404)
    # Web chat and DingTalk get the line pushed at once through Rasa; REST has no
    # push, so the action server gives it with its answer to the next message.
    pushable = ticket.channel in {"webchat", "dingtalk"}
    try:
        await store.add_reply(reference, agent, text, delivered=pushable)
    except NotYours as error:
        return web.json_response({"error": str(error)}, status=403)
    except StoreError as error:
        return web.json_response({"error": str(error)}, status=400)
    line = f"{agent.display_name} (customer service): {text}"
    if not pushable:
        return web.json_response({"delivered": "with the customer's next message"})
    try:
        await request.app[RASA].push(ticket.sender_id, line, agent.display_name)
    except RasaApiError as error:
        await store.mark_undelivered(reference, text)
        logger.error("could not push agent %s's reply on %s: %s", agent.username, reference,
                     error)
        return web.json_response({"error": f"not delivered yet ({error}); it goes with the "
                                           "customer's next message"}, status=502)
    return web.json_response({"delivered": "now"})


async def _end(request: web.Request, outcome: str, resolution: str | None) -> web.Response:
    reference = _reference(request)
    agent = _session(request).agent
    store = request.app[STORE]
    ticket = await store.ticket(reference)
    if ticket is None:
        return web.json_response({"error": "no such ticket"}, status=404)
    try:
        await store.require_held(reference, agent)
    except NotYours as error:
        return web.json_response({"error": str(error)}, status=403)
    try:
        # actions.handoff.ActionReleaseHandoff closes the ticket and tells the customer.
        await request.app[RASA].trigger(ticket.sender_id, CLOSED_INTENT, {
            "ticket_reference": reference, "ticket_outcome": outcome})
    except RasaApiError as error:
        return web.json_response({"error": f"the conversation was not released: {error}"},
                                 status=502)
    await store.finish(reference, agent, resolution)
    logger.info("agent %s ended ticket %s (%s)", agent.username, reference, outcome)
    return web.json_response({"closed": True, "outcome": outcome})


async def hand_back(request: web.Request) -> web.Response:
    return await _end(request, "handback", "handed back to the assistant")


async def close(request: web.Request) -> web.Response:
    note = str((await _json(request)).get("resolution", "")).strip()
    if not note:
        return web.json_response({"error": "write a resolution note"}, status=400)
    return await _end(request, "resolved", note)


# -- analytics ----------------------------------------------------------------------


# The analytics page asks for seven plots at once; each reading would scan the
# tracker store, so one computation serves requests for this many seconds.
ANALYTICS_CACHE_S = 15.0


async def _series(request: web.Request) -> dict[str, analytics.Series]:
    cache = request.app[ANALYTICS_CACHE]
    async with cache["lock"]:
        if cache.get("series") is None or time.monotonic() - cache["at"] > ANALYTICS_CACHE_S:
            snapshot = await analytics.load(tracker_engine(request.app),
                                            request.app[STORE].engine)
            cache["series"], cache["at"] = analytics.compute(snapshot), time.monotonic()
        return cache["series"]


async def analytics_page(request: web.Request) -> web.Response:
    return render(request, "analytics.html", plots=[(name, analytics.TITLES[name])
                                                    for name in analytics.PLOTS])


async def analytics_file(request: web.Request) -> web.Response:
    name, kind = request.match_info["name"], request.match_info["kind"]
    if name not in analytics.PLOTS:
        raise web.HTTPNotFound(text="no such plot")
    series = (await _series(request))[name]
    if kind == "png":
        # matplotlib works for a while: off the event loop, so the console stays live.
        png = await asyncio.get_running_loop().run_in_executor(None, analytics.render_png,
                                                               series)
        return web.Response(body=png, content_type="image/png")
    return web.Response(text=analytics.to_csv(series), content_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{name}.csv"'})


# -- the review inbox -----------------------------------------------------------------


async def review_page(request: web.Request) -> web.Response:
    tracker = tracker_engine(request.app)
    shop = request.app[STORE].engine
    try:
        pending = (await review.unsure_messages(tracker, shop,
                                                threshold=request.app[REVIEW_THRESHOLD])
                   if tracker is not None else [])
        done = await review.reviewed(shop)
    except review.StoreError as error:
        return web.Response(status=503, text=f"the review inbox cannot be read: {error}")
    return render(request, "review.html", pending=pending, done=done,
                  intents=request.app[INTENTS], threshold=request.app[REVIEW_THRESHOLD])


async def review_api(request: web.Request) -> web.Response:
    body = await _json(request)
    try:
        confidence = body.get("confidence")
        verdict = await review.record_review(
            request.app[STORE].engine, message_key=str(body.get("message_key", "")),
            sender_id=str(body.get("sender_id", "")), text=str(body.get("text", "")),
            predicted_intent=str(body.get("predicted_intent") or "") or None,
            confidence=float(confidence) if isinstance(confidence, (int, float)) else None,
            intent=str(body.get("intent", "")), agent_id=_session(request).agent.agent_id,
            intents=request.app[INTENTS])
    except review.StoreError as error:
        return web.json_response({"error": str(error)}, status=503)
    except review.ReviewError as error:
        return web.json_response({"error": str(error)}, status=400)
    return web.json_response({"verdict": verdict})


async def review_export(request: web.Request) -> web.Response:
    try:
        body = review.export_nlu_yaml(await review.reviewed(request.app[STORE].engine))
    except review.StoreError as error:
        return web.Response(status=503, text=f"the reviews cannot be read: {error}")
    return web.Response(text=body, content_type="application/x-yaml", headers={
        "Content-Disposition": 'attachment; filename="reviewed_nlu.yml"'})


# -- the app --------------------------------------------------------------------------


def _tracker_engine(url: str) -> AsyncEngine | None:
    """Rasa's tracker store, read only; None when there is none (yet)."""
    if not url:
        return None
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[-1])
        if not path.is_file():
            return None
        return create_async_engine(f"sqlite+aiosqlite:///file:{path.resolve()}?mode=ro&uri=true")
    return create_async_engine(url, pool_pre_ping=True)


def tracker_engine(app: web.Application) -> AsyncEngine | None:
    """The tracker store's engine, made at the first use that finds it: ``make run``
    starts the console before Rasa has created its SQLite file."""
    holder = app[TRACKER]
    if holder["engine"] is None:
        holder["engine"] = _tracker_engine(app[SETTINGS].tracker_database_url)
        if holder["engine"] is None and not holder.get("warned"):
            holder["warned"] = True
            logger.warning("no tracker store at %s yet: analytics and the review inbox show "
                           "no conversations until Rasa has written one",
                           app[SETTINGS].tracker_database_url)
    return holder["engine"]


def make_app(settings: ConsoleSettings, store: ConsoleStore,
             rasa: RasaApi | None = None) -> web.Application:
    """The console app over a started shop database.

    Args:
        settings: The console's settings.
        store: Agents, sessions and tickets (``console.store``).
        rasa: Rasa's HTTP API; by default ``settings.rasa_url`` with its secret.
    """
    app = web.Application(middlewares=[security_headers, authentication],
                          client_max_size=64 * 1024)
    app[SETTINGS] = settings
    app[STORE] = store
    app[RASA] = rasa or RasaApi(settings.rasa_url, settings.rasa_jwt_secret)
    app[TRACKER] = {"engine": None}
    app[INTENTS] = tuple(intent for intent in review.known_intents(settings.domain)
                         if intent not in BUTTON_ONLY_INTENTS)
    # Once: the measured threshold lives in the served model's classifier.json.
    model = settings.rasa_model if settings.rasa_model.is_file() else None
    app[REVIEW_THRESHOLD] = review.fallback_threshold(settings.rasa_config, model=model)
    app[ANALYTICS_CACHE] = {"lock": asyncio.Lock(), "series": None, "at": 0.0}
    app[TEMPLATES] = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                                        autoescape=True, undefined=jinja2.StrictUndefined)
    app.router.add_get("/health", health)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/", queue_page)
    app.router.add_get("/api/queue", queue_api)
    app.router.add_post("/api/tickets/{reference}/claim", claim)
    app.router.add_get("/tickets/{reference}", ticket_page)
    app.router.add_get("/api/tickets/{reference}", ticket_api)
    app.router.add_post("/api/tickets/{reference}/reply", reply)
    app.router.add_post("/api/tickets/{reference}/handback", hand_back)
    app.router.add_post("/api/tickets/{reference}/close", close)
    app.router.add_get("/analytics", analytics_page)
    app.router.add_get(r"/analytics/{name}.{kind:(png|csv)}", analytics_file)
    app.router.add_get("/review", review_page)
    app.router.add_post("/api/review", review_api)
    app.router.add_get("/review/export.yml", review_export)
    app.router.add_static("/static/", HERE / "static")

    async def dispose(app: web.Application) -> None:
        tracker = app[TRACKER]["engine"]
        if tracker is not None:
            await tracker.dispose()
    app.on_cleanup.append(dispose)
    return app
