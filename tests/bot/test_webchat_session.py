"""bot.webchat_session and bot.trust: signed session ids, sender namespaces, metadata."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from bot.trust import VERIFIED_IDENTITY, client_metadata, sender_id
from bot.webchat_session import SessionSigner, session_secret, session_sender_id

SECRET = "test-only webchat session secret, 32+ bytes long"


def test_issued_ids_verify_for_their_customer_only() -> None:
    signer = SessionSigner(SECRET)
    anonymous, customer = signer.issue(), signer.issue("C-001")

    assert signer.verify(anonymous) and signer.verify(anonymous, None)
    assert signer.verify(customer, "C-001")
    assert not signer.verify(customer) and not signer.verify(customer, "C-002")
    assert not signer.verify(anonymous, "C-001")
    assert anonymous.partition(".")[0] != customer.partition(".")[0]


@pytest.mark.parametrize("presented", [
    "", "session-1", "0" * 32, "0" * 32 + ".", "0" * 32 + "." + "A" * 43,
    "0" * 31 + "g." + "A" * 43, None, 42, {"$ne": ""},
])
def test_unsigned_or_malformed_ids_do_not_verify(presented: Any) -> None:
    assert not SessionSigner(SECRET).verify(presented)


def test_a_signature_does_not_move_to_another_uuid_or_secret() -> None:
    signer = SessionSigner(SECRET)
    first, second = signer.issue(), signer.issue()
    swapped = f"{first.partition('.')[0]}.{second.partition('.')[2]}"

    assert not signer.verify(swapped)
    assert not SessionSigner("another secret that is also 32+ bytes").verify(first)
    assert SessionSigner(SECRET.encode()).verify(first)  # str and bytes keys agree


def test_the_customer_cannot_be_shifted_into_the_uuid() -> None:
    # "<uuid>|C-001" must not equal "<uuid>|C" + "-001" in any other split.
    signer = SessionSigner(SECRET)
    issued = signer.issue("a|b")
    assert signer.verify(issued, "a|b") and not signer.verify(issued, "a")


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        SessionSigner("too short")


def test_session_secret_from_the_environment(caplog: pytest.LogCaptureFixture) -> None:
    assert session_secret({"WEBCHAT_SESSION_SECRET": SECRET}) == SECRET.encode()
    with pytest.raises(ValueError, match="WEBCHAT_SESSION_SECRET") as refused:
        session_secret({"WEBCHAT_SESSION_SECRET": "tiny-secret-value"})
    assert "tiny-secret-value" not in str(refused.value)

    caplog.set_level(logging.WARNING)
    first, second = session_secret({}), session_secret({})
    assert len(first) == 32 and first != second
    assert "will not survive a restart" in caplog.text


def test_the_sender_id_is_the_namespaced_uuid() -> None:
    issued = SessionSigner(SECRET).issue("C-001")
    assert session_sender_id(issued) == f"webchat:{issued.partition('.')[0]}"
    with pytest.raises(ValueError):
        session_sender_id("session-1")


# -- bot.trust ----------------------------------------------------------------------------


@pytest.mark.parametrize(("metadata", "expected"), [
    ({"page": "/", VERIFIED_IDENTITY: {"customer_id": "C-1"}}, {"page": "/"}),
    ({VERIFIED_IDENTITY: None}, {}),
    ({"Verified_Identity": 1}, {"Verified_Identity": 1}),  # only the exact key is read
    ({"page": "/"}, {"page": "/"}),
    (None, {}), ([1, 2], {}), ("text", {}), (3, {}),
])
def test_client_metadata_never_holds_a_verified_identity(metadata: Any,
                                                         expected: dict) -> None:
    cleaned = client_metadata(metadata)
    assert cleaned == expected
    assert cleaned is not metadata


def test_client_metadata_leaves_the_clients_dict_alone() -> None:
    sent = {"page": "/", VERIFIED_IDENTITY: {"customer_id": "C-1"}}
    client_metadata(sent)
    assert VERIFIED_IDENTITY in sent


@pytest.mark.parametrize(("channel", "conversation", "expected"), [
    ("rest", "alice", "rest:alice"),
    ("rest", "webchat:0123", "rest:webchat:0123"),
    ("dingtalk", "cid:user", "dingtalk:cid:user"),
])
def test_sender_ids_are_namespaced(channel: str, conversation: str, expected: str) -> None:
    assert sender_id(channel, conversation) == expected


@pytest.mark.parametrize("channel", ["", "a:b"])
def test_a_channel_name_cannot_break_the_namespace(channel: str) -> None:
    with pytest.raises(ValueError):
        sender_id(channel, "x")
