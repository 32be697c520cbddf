"""The shop's data as the actions see it: records and a small async interface.

``OrderBackend`` is what actions call; ``actions.db.SqlBackend`` implements it
on SQLite (the embedded default) or PostgreSQL. Tests pass their own instance.
"""

from __future__ import annotations

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

    async def get_order(self, order_id: str) -> Order | None:
        """The order, or ``None`` when there is no such order."""

    async def cancel_order(self, order_id: str) -> Order:
        """Cancels a processing order and returns it as it is now."""

    async def change_address(self, order_id: str, address: str) -> Order:
        """Sets a processing order's delivery address and returns it."""

    async def start_return(self, order_id: str) -> str:
        """Opens a return for a delivered order; returns its reference."""

    async def stock(self, product: str) -> int | None:
        """Units in stock, or ``None`` for a product the shop does not sell."""

    async def create_ticket(self, ticket: NewTicket) -> Ticket:
        """Records a hand-over to a human and returns it with its reference."""

    async def add_ticket_message(self, reference: str, message: dict[str, Any]) -> None:
        """Appends a customer message to an open ticket's transcript."""

    async def get_ticket(self, reference: str) -> Ticket | None:
        """The ticket, or ``None``."""
