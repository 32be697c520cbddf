"""The shop's data as the actions see it: records and a small async interface.

``OrderBackend`` is what actions call; ``actions.db.SqlBackend`` implements it
on SQLite (the embedded default) or PostgreSQL. Tests pass their own instance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Order:
    """One customer order with its shipment.

    Attributes:
        order_id: Five digits.
        status: processing, shipped, delivered or cancelled.
        items: Product names.
        address: Delivery address.
        customer: The customer's name.
        carrier: Courier once shipped.
        tracking_number: Courier's tracking number once shipped.
        eta: Expected (or actual) delivery date, ISO, when known.
        refund_status: none, pending or paid.
    """

    order_id: str
    status: str
    items: tuple[str, ...]
    address: str
    customer: str = ""
    carrier: str = ""
    tracking_number: str = ""
    eta: str = ""
    refund_status: str = "none"

    @property
    def can_be_changed(self) -> bool:
        """Only orders that have not left the warehouse can be cancelled or re-addressed."""
        return self.status == "processing"


@dataclass(frozen=True)
class NewTicket:
    """What a hand-over to a human colleague records.

    Attributes:
        sender_id: The conversation.
        reason: requested, strongly_negative, persistently_negative, complaint, ...
        intent: The customer's detected intent.
        priority: low, normal, high or urgent.
        department: Who handles it (``unrouted`` when classification failed).
        routed: Whether the department came from the classifier.
        order_id: The order it is about, if known.
        description: The customer's own words, for complaints.
        transcript: The conversation: ``{"role", "text", "timestamp"}`` dicts.
        sentiment_history: One ``{"label", "negative", "text"}`` dict per user turn.
    """

    sender_id: str
    reason: str
    intent: str = ""
    priority: str = "normal"
    department: str = "customer_service"
    routed: bool = True
    order_id: str | None = None
    description: str = ""
    transcript: tuple[dict[str, Any], ...] = ()
    sentiment_history: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Ticket(NewTicket):
    """A recorded hand-over, with its reference."""

    reference: str = ""
    status: str = "open"
    created_at: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class OrderBackend(Protocol):
    """What the actions need from the shop's systems.

    Every method raises ``actions.exceptions.BackendError`` when the database fails.
    """

    async def get_order(self, order_id: str, customer_id: str) -> Order | None:
        """The order if ``customer_id`` owns it; ``None`` for someone else's order and
        for no such order alike."""

    async def cancel_order(self, order_id: str, customer_id: str) -> Order:
        """Cancels the customer's processing order and returns it as it is now."""

    async def change_address(self, order_id: str, customer_id: str, address: str) -> Order:
        """Sets the customer's processing order's delivery address and returns it."""

    async def start_return(self, order_id: str, customer_id: str) -> str:
        """Opens a return for the customer's delivered order; returns its reference."""

    async def prove_order(self, order_id: str, email: str = "", postcode: str = ""
                          ) -> str | None:
        """The owner of ``order_id`` if the e-mail or (normalised) postcode on it matches."""

    async def customer_for(self, channel: str, external_id: str) -> str | None:
        """The customer a channel's verified user id is linked to, if any."""

    async def proof_locked_until(self, scopes: Sequence[str]) -> str | None:
        """When the lock on any of ``scopes`` ends (ISO), or ``None``."""

    async def record_failed_proof(self, scopes: Sequence[str], limit: int,
                                  lock_s: float) -> str | None:
        """Counts a failed ownership proof; returns the lock's end when it locks."""

    async def clear_failed_proofs(self, scopes: Sequence[str]) -> None:
        """Forgets the scopes' failures after a successful proof."""

    async def stock(self, product: str) -> int | None:
        """Units in stock, or ``None`` for a product the shop does not sell."""

    async def create_ticket(self, ticket: NewTicket) -> Ticket:
        """Records a hand-over to a human and returns it with its reference."""

    async def add_ticket_message(self, reference: str, message: dict[str, Any]) -> None:
        """Appends a customer message to an open ticket's transcript."""

    async def get_ticket(self, reference: str) -> Ticket | None:
        """The ticket, or ``None``."""

    async def close_ticket(self, reference: str) -> Ticket | None:
        """Marks the ticket closed (status ``closed``); returns it, or ``None``."""

    async def take_undelivered_agent_lines(self, reference: str) -> list[str]:
        """The agent's lines the customer's channel could not be sent at once (REST),
        oldest first, marked delivered in the same transaction."""

    async def rate_ticket(self, reference: str, sender_id: str, rating: int) -> bool:
        """Stores the customer's 1-5 satisfaction on their closed ticket, once.

        Returns:
            Whether it was stored: False when the ticket is not ``sender_id``'s, is
            still open, or has a rating already.
        """
