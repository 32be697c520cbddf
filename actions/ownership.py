"""Who may see and change an order: verified customers, and proofs of ownership.

A conversation acts on an order only for the order's owner:

- **verified customers**: the channel verified who is writing (the web chat's
  signed customer token, DingTalk's signed sender) and put it into the user
  message's metadata as ``verified_identity``, which only channels set (they drop
  any client-sent value). A DingTalk user id maps to a customer through the
  ``channel_identities`` table;
- **anonymous customers** prove ownership of each order with the e-mail address
  on it, or its delivery postcode. A proof is kept in the ``verified_orders``
  slot (order number -> owner), which only actions set.

Failed proofs are counted per conversation and per order; the ``limit``-th
failure locks both for ``lock_s`` seconds. "No such order" and "not your order"
get the same answer, so the assistant is no oracle for which numbers exist.
Every order query then names the owner (``OrderBackend.get_order(order_id,
customer_id)``), so the database itself refuses another customer's order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rasa_sdk import Tracker

from actions.backend import OrderBackend

VERIFIED_IDENTITY = "verified_identity"  # user-message metadata, set by channels only
VERIFIED_ORDERS = "verified_orders"  # slot: {order number: owner}, set by actions only
PROOF_SLOT = "order_proof"

# ASCII only: \w would take the Chinese words before an address into its local part
# ("我的邮箱是alex@example.com").
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# Postcodes as customers type them: 3-10 letters and digits with at least one digit
# (M14 5RT, LS6 2AB, T12 X8P2, M4B 1B3, 10115, 75008), spaces and dashes ignored.
_POSTCODE = re.compile(r"^(?=.*\d)[A-Z0-9]{3,10}$")


def parse_proof(text: object) -> tuple[str, str]:
    """``(email, postcode)`` from a customer's answer; empty strings where none.

    The postcode comes back normalised (upper case, no spaces or dashes).

    >>> parse_proof("it's Alex@Example.com")
    ('alex@example.com', '')
    >>> parse_proof("m14 5rt")
    ('', 'M145RT')
    >>> parse_proof("I don't know")
    ('', '')
    """
    value = " ".join(str(text or "").split())
    email = _EMAIL.search(value)
    if email:
        return email.group(0).lower(), ""
    # Chinese words and punctuation around a postcode ("邮编是M14 5RT。") are not part of it.
    candidate = re.sub(r"[\s\-\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]", "",
                       value.upper()).rstrip(".")
    return ("", candidate) if _POSTCODE.match(candidate) else ("", "")


def proof_scopes(sender_id: str, order_id: str) -> list[str]:
    """The rate-limit counters a proof attempt belongs to."""
    return [f"conversation:{sender_id}", f"order:{order_id}"]


def channel_identity(tracker: Tracker) -> Mapping[str, Any] | None:
    """The channel-verified identity on the latest user message, if any."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            identity = (event.get("metadata") or {}).get(VERIFIED_IDENTITY)
            return identity if isinstance(identity, Mapping) else None
    return None


async def verified_customer(tracker: Tracker, backend: OrderBackend) -> str | None:
    """The customer the channel verified, resolved through ``channel_identities``
    when the channel knows its own user id only."""
    identity = channel_identity(tracker)
    if identity is None:
        return None
    if isinstance(identity.get("customer_id"), str) and identity["customer_id"]:
        return identity["customer_id"]
    channel, external = identity.get("channel"), identity.get("external_id")
    if isinstance(channel, str) and isinstance(external, str) and external:
        return await backend.customer_for(channel, external)
    return None


def proven_orders(tracker: Tracker) -> dict[str, str]:
    """The orders this conversation proved ownership of: order number -> owner."""
    value = tracker.get_slot(VERIFIED_ORDERS)
    if not isinstance(value, Mapping):
        return {}
    return {str(k): str(v) for k, v in value.items() if isinstance(v, str)}


async def order_owner(tracker: Tracker, backend: OrderBackend, order_id: str) -> str | None:
    """Whom this conversation may act for on ``order_id``: the owner it proved, or
    the verified customer when they own it; ``None`` otherwise."""
    proven = proven_orders(tracker).get(order_id)
    if proven:
        return proven
    customer = await verified_customer(tracker, backend)
    if customer and await backend.get_order(order_id, customer) is not None:
        return customer
    return None
