"""Validation of the forms' slots: order numbers, confirmations, addresses."""

from __future__ import annotations

import logging
import re
from abc import ABCMeta, abstractmethod
from typing import Any

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.base import BACKEND_DOWN_TEXT
from actions.exceptions import BackendError
from actions.services import Services, default_services, parse_order_id

logger = logging.getLogger(__name__)

_ADDRESS_LENGTH = (10, 200)
_HAS_LETTER = re.compile(r"[^\W\d_]")
_HAS_DIGIT = re.compile(r"\d")


def address_problem(address: object) -> str | None:
    """Why ``address`` is not a usable delivery address, or ``None`` when it is."""
    text = " ".join(str(address or "").split())
    low, high = _ADDRESS_LENGTH
    if not low <= len(text) <= high:
        return f"an address has between {low} and {high} characters"
    if not (_HAS_LETTER.search(text) and _HAS_DIGIT.search(text)):
        return "an address needs a street, a house number and a postcode"
    return None


class OrderIdValidation(FormValidationAction, metaclass=ABCMeta):
    """Checks the order number's format and that the order exists (abstract)."""

    def __init__(self, services: Services | None = None) -> None:
        self.services = services or default_services()

    @abstractmethod
    def name(self) -> str:
        """``validate_<form name>``."""

    async def validate_order_id(self, slot_value: Any, dispatcher: CollectingDispatcher,
                                tracker: Tracker, domain: dict[str, Any]) -> dict[str, Any]:
        order_id = parse_order_id(slot_value)
        if order_id is None:
            dispatcher.utter_message(
                text="That doesn't look like an order number: it has exactly 5 digits, "
                     "like 12345. You'll find it in your confirmation email.")
            return {"order_id": None}
        try:
            order = await self.services.backend.get_order(order_id)
        except BackendError as error:
            logger.error("%s failed for conversation %s: %s", self.name(), tracker.sender_id,
                         error)
            dispatcher.utter_message(text=BACKEND_DOWN_TEXT)
            return {"order_id": None}
        if order is None:
            dispatcher.utter_message(
                text=f"I can't find an order {order_id}. Could you check the number?")
            return {"order_id": None}
        return {"order_id": order_id, **await self.after_order_found(order, dispatcher)}

    async def after_order_found(self, order: Any, dispatcher: CollectingDispatcher) -> dict:
        """Extra slots once the order is known (none by default)."""
        return {}


class ValidateOrderForm(OrderIdValidation):
    """The order form: status, tracking, returns, refunds."""

    def name(self) -> str:
        return "validate_order_form"


class ValidateCancelForm(OrderIdValidation):
    """The cancel form; orders that shipped skip the confirmation question."""

    def name(self) -> str:
        return "validate_cancel_form"

    async def after_order_found(self, order: Any, dispatcher: CollectingDispatcher) -> dict:
        # action_cancel_order explains why a shipped order can't be cancelled.
        return {} if order.can_be_changed else {"cancel_confirmed": False}


class ValidateAddressForm(OrderIdValidation):
    """The address form: a changeable order and a plausible address."""

    def name(self) -> str:
        return "validate_address_form"

    async def after_order_found(self, order: Any, dispatcher: CollectingDispatcher) -> dict:
        if order.can_be_changed:
            return {}
        dispatcher.utter_message(
            text=f"Order {order.order_id} has already left our warehouse, so its address can't "
                 "be changed any more. If you have another order, tell me its number.")
        return {"order_id": None}

    async def validate_new_address(self, slot_value: Any, dispatcher: CollectingDispatcher,
                                   tracker: Tracker, domain: dict[str, Any]) -> dict[str, Any]:
        problem = address_problem(slot_value)
        if problem:
            dispatcher.utter_message(
                text=f"That doesn't look like a full address ({problem}). Could you send it "
                     "again, for example: 42 Oak Avenue, Leeds LS6 2AB?")
            return {"new_address": None}
        return {"new_address": " ".join(str(slot_value).split())}
