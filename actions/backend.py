"""The shop's data as the actions see it: a small async interface.

``OrderBackend`` is what actions call; ``DemoBackend`` is the embedded
in-memory implementation with demo orders, so ``make run`` works with no
database server. Tests swap in their own instance.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field, replace
from typing import Protocol


@dataclass(frozen=True)
class Order:
    """One customer order.

    Attributes:
        order_id: Five digits.
        status: processing, shipped, delivered or cancelled.
        items: Product names.
        address: Delivery address.
        carrier: Courier once shipped.
        tracking_number: Courier's tracking number once shipped.
        eta: Expected delivery date (ISO) when known.
        refund_status: none, pending or paid.
    """

    order_id: str
    status: str
    items: tuple[str, ...]
    address: str
    carrier: str = ""
    tracking_number: str = ""
    eta: str = ""
    refund_status: str = "none"

    @property
    def can_be_changed(self) -> bool:
        """Only orders that have not left the warehouse can be cancelled or re-addressed."""
        return self.status == "processing"


@dataclass(frozen=True)
class Ticket:
    """A hand-over to a human colleague."""

    reference: str
    sender_id: str
    reason: str
    order_id: str | None = None


class OrderBackend(Protocol):
    """What the actions need from the shop's systems."""

    async def get_order(self, order_id: str) -> Order | None:
        """The order, or ``None`` when there is no such order."""

    async def cancel_order(self, order_id: str) -> Order:
        """Cancels a processing order and returns it."""

    async def change_address(self, order_id: str, address: str) -> Order:
        """Sets a processing order's delivery address and returns it."""

    async def start_return(self, order_id: str) -> str:
        """Opens a return for a delivered order; returns its reference."""

    async def stock(self, product: str) -> int | None:
        """Units in stock, or ``None`` for a product the shop does not sell."""

    async def create_ticket(self, sender_id: str, reason: str,
                            order_id: str | None = None) -> Ticket:
        """Records a hand-over to a human and returns it."""


def demo_orders() -> dict[str, Order]:
    """The demo shop's orders (the test stories rely on these)."""
    orders = [
        Order("12345", "shipped", ("wireless headphones",), "14 Elm Road, Manchester M14 5RT",
              carrier="DHL", tracking_number="JD014600006281", eta="2026-12-03"),
        Order("48213", "processing", ("running shoes", "yoga mat"),
              "42 Oak Avenue, Leeds LS6 2AB"),
        Order("55120", "delivered", ("coffee maker",), "7 Harbour View, Cork T12 X8P2",
              carrier="UPS", tracking_number="1Z999AA10123456784", eta="2026-11-20",
              refund_status="pending"),
        Order("90871", "cancelled", ("winter jacket",), "221B Baker Street, London NW1 6XE",
              refund_status="paid"),
        Order("36402", "processing", ("office chair",), "1550 Maple Drive, Toronto ON M4B 1B3"),
    ]
    return {order.order_id: order for order in orders}


DEMO_STOCK = {"running shoes": 14, "wireless headphones": 0, "winter jacket": 6,
              "coffee maker": 3, "yoga mat": 25, "smart watch": 0, "office chair": 2}


@dataclass
class DemoBackend:
    """In-memory shop with demo data; safe for concurrent coroutines."""

    orders: dict[str, Order] = field(default_factory=demo_orders)
    inventory: dict[str, int] = field(default_factory=lambda: dict(DEMO_STOCK))
    tickets: list[Ticket] = field(default_factory=list)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    _numbers: itertools.count = field(default_factory=lambda: itertools.count(1), repr=False)

    async def get_order(self, order_id: str) -> Order | None:
        return self.orders.get(order_id)

    async def _update(self, order_id: str, **changes: str) -> Order:
        async with self._lock:
            order = replace(self.orders[order_id], **changes)
            self.orders[order_id] = order
            return order

    async def cancel_order(self, order_id: str) -> Order:
        return await self._update(order_id, status="cancelled", refund_status="pending")

    async def change_address(self, order_id: str, address: str) -> Order:
        return await self._update(order_id, address=address)

    async def start_return(self, order_id: str) -> str:
        return f"R-{order_id}-{next(self._numbers):03d}"

    async def stock(self, product: str) -> int | None:
        return self.inventory.get(product.strip().lower())

    async def create_ticket(self, sender_id: str, reason: str,
                            order_id: str | None = None) -> Ticket:
        async with self._lock:
            ticket = Ticket(f"T-{len(self.tickets) + 1:05d}", sender_id, reason, order_id)
            self.tickets.append(ticket)
            return ticket
