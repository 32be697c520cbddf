"""What the actions are built with, passed in rather than read from globals.

rasa-sdk creates actions without arguments; they then share the default
``Services`` (the embedded demo backend). Tests construct actions with their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from actions.backend import DemoBackend, OrderBackend

_ORDER_ID = re.compile(r"(?<!\d)\d{5}(?!\d)")


@dataclass
class Services:
    """The action server's dependencies."""

    backend: OrderBackend = field(default_factory=DemoBackend)


@lru_cache(maxsize=1)
def default_services() -> Services:
    """One shared instance per action-server process."""
    return Services()


def parse_order_id(text: object) -> str | None:
    """The single 5-digit order number in ``text``, or ``None``.

    >>> parse_order_id("it's 48213, I think")
    '48213'
    >>> parse_order_id("1234") is None
    True
    """
    if text is None:
        return None
    found = _ORDER_ID.findall(str(text))
    return found[0] if len(set(found)) == 1 else None
