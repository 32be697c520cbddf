"""The console's web app: sign-in, cookies, CSRF, the queue and a takeover, with a fake
Rasa (console/app.py). The real end-to-end run is tests/console/test_console_browser.py."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from bot.identity import make_customer_token
from console.app import SESSION_COOKIE
from tests.console.conftest import PASSWORD, sign_in

SECRET = "customer-identity-secret-0123456789abcdef"


async def test_pages_and_api_need_a_signed_in_agent(make_client, make_ticket) -> None:
    client = await make_client()
    reference = await make_ticket()

    page = await client.get("/", allow_redirects=False)
    api = await client.get("/api/queue")
    claim = await client.post(f"/api/tickets/{reference}/claim", json={})
    plot = await client.get("/analytics/conversations.png", allow_redirects=False)

    assert (page.status, page.headers["Location"]) == (303, "/login")
    assert api.status == claim.status == 401
    assert plot.status == 303


async def test_a_customer_with_a_customer_token_cannot_use_the_agent_api(
        make_client, make_ticket) -> None:
    client = await make_client()
    reference = await make_ticket()
    token = make_customer_token("C-001", SECRET, 600)

    for headers in ({"Authorization": f"Bearer {token}"},
                    {"Cookie": f"{SESSION_COOKIE}={token}"}):
        answer = await client.get("/api/queue", headers=headers)
        reply = await client.post(f"/api/tickets/{reference}/reply", json={"text": "x"},
                                  headers=headers)
        assert answer.status == reply.status == 401


async def test_sign_in_sets_a_secure_http_only_same_site_cookie(make_client,
                                                                make_agent) -> None:
    await make_agent()
    client = await make_client()
    page = await client.get("/login")
    token = page.cookies["console_login_csrf"].value

    answer = await client.post("/login", data={"username": "dana", "password": PASSWORD,
                                               "csrf_token": token}, allow_redirects=False)

    cookie = answer.cookies[SESSION_COOKIE]
    assert answer.status == 303
    assert cookie["httponly"] and cookie["secure"] and cookie["samesite"] == "Strict"
    assert cookie["path"] == "/"


async def test_a_wrong_password_is_refused_without_saying_which_part(make_client,
                                                                     make_agent) -> None:
    await make_agent()
    client = await make_client()
    token = (await client.get("/login")).cookies["console_login_csrf"].value

    wrong = await client.post("/login", data={"username": "dana", "password": "nope" * 3,
                                              "csrf_token": token}, allow_redirects=False)
    token = wrong.cookies["console_login_csrf"].value  # a new form each time
    unknown = await client.post("/login", data={"username": "eve", "password": PASSWORD,
                                                "csrf_token": token}, allow_redirects=False)

    assert wrong.status == unknown.status == 401
    assert "Wrong user name or password." in await wrong.text()
    assert SESSION_COOKIE not in wrong.cookies


async def test_a_sign_in_without_the_form_token_is_refused(make_client, make_agent) -> None:
    await make_agent()
    client = await make_client()

    answer = await client.post("/login", data={"username": "dana", "password": PASSWORD,
                                               "csrf_token": "guessed"}, allow_redirects=False)

    assert answer.status == 403


@pytest.mark.parametrize("headers", [{}, {"X-CSRF-Token": "wrong"}],
                         ids=["no token", "wrong token"])
async def test_posts_without_the_csrf_token_are_refused(make_client, make_agent, make_ticket,
                                                        store, headers) -> None:
    await make_agent()
    client = await make_client()
    await sign_in(client)
    reference = await make_ticket()

    answer = await client.post(f"/api/tickets/{reference}/claim", json={}, headers=headers)

    assert answer.status == 403
    assert (await store.ticket(reference)).assigned_agent is None


async def test_a_cross_origin_post_is_refused_even_with_the_token(make_client, make_agent,
                                                                  make_ticket) -> None:
    await make_agent()
    client = await make_client()
    csrf = await sign_in(client)
    reference = await make_ticket()

    answer = await client.post(f"/api/tickets/{reference}/claim", json={}, headers={
        "X-CSRF-Token": csrf, "Origin": "https://evil.example"})

    assert answer.status == 403


async def test_an_expired_session_is_signed_out(make_client, make_agent, store) -> None:
    await make_agent()
    client = await make_client()
    await sign_in(client)
    past = (datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat(timespec="seconds")
    async with store.engine.begin() as connection:
        await connection.execute(text("UPDATE agent_sessions SET expires_at = :p"), {"p": past})

    page = await client.get("/", allow_redirects=False)
    api = await client.get("/api/queue")

    assert (page.status, page.headers["Location"]) == (303, "/login")
    assert api.status == 401


async def test_sign_out_ends_the_session(make_client, make_agent) -> None:
    await make_agent()
    client = await make_client()
    csrf = await sign_in(client)
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))[SESSION_COOKIE]

    await client.post("/logout", data={"csrf_token": csrf}, allow_redirects=False)
    again = await client.get("/api/queue", headers={"Cookie": f"{SESSION_COOKIE}={cookie.value}"})

    assert again.status == 401


async def test_every_answer_forbids_framing_and_foreign_scripts(make_client) -> None:
    client = await make_client()

    answer = await client.get("/login")

    policy = answer.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
    assert answer.headers["Cache-Control"] == "no-store"


async def test_the_queue_lists_open_tickets_with_a_sparkline(make_client, make_agent,
                                                             make_ticket) -> None:
    await make_agent()
    client = await make_client()
    await sign_in(client)
    reference = await make_ticket(negative=(0.1, 0.5, 0.95))

    [ticket] = (await (await client.get("/api/queue")).json())["tickets"]

    assert ticket["reference"] == reference and ticket["channel"] == "webchat"
    assert ticket["negativity"] == [0.1, 0.5, 0.95]
    assert ticket["sparkline"].startswith("<svg") and "polyline" in ticket["sparkline"]
    assert (await client.get("/api/queue?reason=nonsense")).status == 400


async def test_two_agents_claim_through_the_api_and_one_wins(make_client, make_agent,
                                                             make_ticket) -> None:
    await make_agent("dana")
    await make_agent("sam")
    dana, sam = await make_client(), await make_client()
    tokens = [await sign_in(dana, "dana"), await sign_in(sam, "sam")]
    reference = await make_ticket()

    answers = await asyncio.gather(*(
        client.post(f"/api/tickets/{reference}/claim", json={}, headers={"X-CSRF-Token": t})
        for client, t in zip((dana, sam), tokens)))

    assert sorted(answer.status for answer in answers) == [200, 409]


async def claimed(client, make_ticket, sender_id: str = "webchat:abc") -> tuple[str, str]:
    csrf = await sign_in(client)
    reference = await make_ticket(sender_id=sender_id)
    answer = await client.post(f"/api/tickets/{reference}/claim", json={},
                               headers={"X-CSRF-Token": csrf})
    assert answer.status == 200
    return reference, csrf


async def test_a_web_chat_reply_is_pushed_through_rasa(make_client, make_agent, make_ticket,
                                                       rasa, store) -> None:
    await make_agent()
    client = await make_client()
    reference, csrf = await claimed(client, make_ticket)

    answer = await client.post(f"/api/tickets/{reference}/reply", json={"text": "Hi, Dana here"},
                               headers={"X-CSRF-Token": csrf})

    assert (await answer.json()) == {"delivered": "now"}
    assert rasa.pushed == [("webchat:abc", "Dana (customer service): Hi, Dana here", "Dana")]
    assert (await store.ticket(reference)).lines[-1].delivered


async def test_a_rest_reply_waits_for_the_customers_next_message(make_client, make_agent,
                                                                 make_ticket, rasa,
                                                                 store) -> None:
    await make_agent()
    client = await make_client()
    reference, csrf = await claimed(client, make_ticket, sender_id="rest:bob")

    answer = await client.post(f"/api/tickets/{reference}/reply", json={"text": "Hi"},
                               headers={"X-CSRF-Token": csrf})

    assert (await answer.json()) == {"delivered": "with the customer's next message"}
    assert rasa.pushed == [] and not (await store.ticket(reference)).lines[-1].delivered


async def test_a_failed_push_is_kept_for_the_next_message(make_client, make_agent,
                                                          make_ticket, rasa, store) -> None:
    await make_agent()
    client = await make_client()
    reference, csrf = await claimed(client, make_ticket)
    rasa.down = True

    answer = await client.post(f"/api/tickets/{reference}/reply", json={"text": "Hi"},
                               headers={"X-CSRF-Token": csrf})

    assert answer.status == 502
    assert not (await store.ticket(reference)).lines[-1].delivered


async def test_only_the_holder_replies_hands_back_or_closes(make_client, make_agent,
                                                            make_ticket, rasa) -> None:
    await make_agent("dana")
    await make_agent("sam")
    dana, sam = await make_client(), await make_client()
    reference, _ = await claimed(dana, make_ticket)
    csrf = await sign_in(sam, "sam")
    headers = {"X-CSRF-Token": csrf}

    replied = await sam.post(f"/api/tickets/{reference}/reply", json={"text": "x"},
                             headers=headers)
    handed = await sam.post(f"/api/tickets/{reference}/handback", json={}, headers=headers)
    closed = await sam.post(f"/api/tickets/{reference}/close", json={"resolution": "x"},
                            headers=headers)

    assert replied.status == handed.status == closed.status == 403
    assert rasa.pushed == rasa.triggered == []


async def test_hand_back_releases_the_conversation_and_closes_the_ticket(
        make_client, make_agent, make_ticket, rasa, store) -> None:
    await make_agent()
    client = await make_client()
    reference, csrf = await claimed(client, make_ticket)

    answer = await client.post(f"/api/tickets/{reference}/handback", json={},
                               headers={"X-CSRF-Token": csrf})

    assert answer.status == 200
    assert rasa.triggered == [("webchat:abc", "EXTERNAL_ticket_closed",
                               {"ticket_reference": reference, "ticket_outcome": "handback"})]
    ticket = await store.ticket(reference)
    assert (ticket.status, ticket.resolution) == ("closed", "handed back to the assistant")


async def test_closing_needs_a_resolution_note(make_client, make_agent, make_ticket, rasa,
                                               store) -> None:
    await make_agent()
    client = await make_client()
    reference, csrf = await claimed(client, make_ticket)
    headers = {"X-CSRF-Token": csrf}

    empty = await client.post(f"/api/tickets/{reference}/close", json={"resolution": " "},
                              headers=headers)
    done = await client.post(f"/api/tickets/{reference}/close",
                             json={"resolution": "Refund sent"}, headers=headers)

    assert (empty.status, done.status) == (400, 200)
    assert rasa.triggered[-1][2]["ticket_outcome"] == "resolved"
    assert (await store.ticket(reference)).resolution == "Refund sent"


async def test_when_rasa_is_down_the_ticket_stays_with_the_agent(make_client, make_agent,
                                                                 make_ticket, rasa,
                                                                 store) -> None:
    await make_agent()
    client = await make_client()
    reference, csrf = await claimed(client, make_ticket)
    rasa.down = True

    answer = await client.post(f"/api/tickets/{reference}/handback", json={},
                               headers={"X-CSRF-Token": csrf})

    assert answer.status == 502
    assert (await store.ticket(reference)).status == "open"


async def test_the_conversation_shows_intent_confidence_and_sentiment(
        make_client, make_agent, make_ticket, rasa) -> None:
    await make_agent()
    client = await make_client()
    reference, _ = await claimed(client, make_ticket)
    rasa.events["webchat:abc"] = [
        {"event": "user", "text": "it broke again", "timestamp": 10.0, "parse_data": {
            "intent": {"name": "complaint", "confidence": 0.93},
            "sentiment": {"label": "negative", "scores": {"negative": 0.91}}}},
        {"event": "action", "name": "action_handoff"},
        {"event": "bot", "text": "I've passed our conversation to a colleague", "timestamp": 11},
        {"event": "bot", "text": "Dana (customer service): hi", "timestamp": 12,
         "metadata": {"agent": "Dana"}},
        {"event": "user", "text": "EXTERNAL: /EXTERNAL_ticket_closed", "timestamp": 13,
         "parse_data": {"intent": {"name": "EXTERNAL_ticket_closed"}}}]

    data = await (await client.get(f"/api/tickets/{reference}")).json()

    assert [(line["kind"], line["text"]) for line in data["lines"]] == [
        ("customer", "it broke again"),
        ("assistant", "I've passed our conversation to a colleague"),
        ("agent", "Dana (customer service): hi"), ("event", "EXTERNAL_ticket_closed")]
    first = data["lines"][0]
    assert (first["intent"], first["confidence"], first["sentiment"], first["negative"]) == (
        "complaint", 0.93, "negative", 0.91)
    assert first["message_key"] and data["ticket"]["mine"]


async def test_a_bad_reference_is_not_found(make_client, make_agent) -> None:
    await make_agent()
    client = await make_client()
    await sign_in(client)

    assert (await client.get("/api/tickets/../../etc")).status == 404
    assert (await client.get("/api/tickets/T-00000000")).status == 404


async def test_an_intent_corrected_in_a_conversation_is_exported_as_nlu_yaml(
        make_client, make_agent, make_ticket, rasa) -> None:
    await make_agent()
    client = await make_client()
    reference, csrf = await claimed(client, make_ticket)
    rasa.events["webchat:abc"] = [
        {"event": "user", "text": "my parcel never came", "timestamp": 10.5, "parse_data": {
            "intent": {"name": "nlu_fallback", "confidence": 0.5},
            "intent_ranking": [{"name": "nlu_fallback", "confidence": 0.5},
                               {"name": "complaint", "confidence": 0.41}]}}]
    [line] = (await (await client.get(f"/api/tickets/{reference}")).json())["lines"]

    saved = await client.post("/api/review", headers={"X-CSRF-Token": csrf}, json={
        "message_key": line["message_key"], "sender_id": "webchat:abc", "text": line["text"],
        "predicted_intent": line["predicted_intent"], "confidence": line["predicted_confidence"],
        "intent": "track_delivery"})
    unknown = await client.post("/api/review", headers={"X-CSRF-Token": csrf}, json={
        "message_key": line["message_key"], "sender_id": "webchat:abc", "text": line["text"],
        "intent": "launch_rockets"})
    export = await client.get("/review/export.yml")

    assert line["predicted_intent"] == "complaint"  # the guess behind the fallback
    assert (await saved.json()) == {"verdict": "corrected"}
    assert unknown.status == 400
    body = await export.text()
    assert "- intent: track_delivery" in body and "my parcel never came" in body
    assert "attachment" in export.headers["Content-Disposition"]


async def test_a_tracker_store_created_after_the_console_is_found(tmp_path, settings, store,
                                                                  rasa) -> None:
    from dataclasses import replace

    from console.app import make_app, tracker_engine

    tracker = tmp_path / "tracker.db"
    app = make_app(replace(settings, tracker_database_url=f"sqlite+aiosqlite:///{tracker}"),
                   store, rasa)

    before = tracker_engine(app)
    tracker.write_bytes(b"")  # Rasa creates its file later than make run starts the console
    after = tracker_engine(app)

    assert before is None and after is not None
    await after.dispose()
