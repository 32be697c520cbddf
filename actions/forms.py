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
from actions.ownership import (
    PROOF_SLOT,
    VERIFIED_ORDERS,
    order_owner,
    parse_proof,
    proof_scopes,
    proven_orders,
)
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


NO_MATCH_TEXT = ("That doesn't match order {order_id}: either there is no such order, or the "
                 "e-mail address or postcode is not the one on it. Please check the order "
                 "number, then tell me it again.")
LOCKED_TEXT = ("For your security I can't check order details in this conversation for the "
               "next {minutes} minutes, after too many attempts. A colleague can help you "
               "sooner: just ask for a human.")


class OrderIdValidation(FormValidationAction, metaclass=ABCMeta):
    """The order number's format, and that this conversation may act on the order
    (``actions.ownership``): its verified customer owns it, or the customer proves
    ownership with the e-mail address or postcode on it (abstract)."""

    def __init__(self, services: Services | None = None) -> None:
        self.services = services or default_services()

    @abstractmethod
    def name(self) -> str:
        """``validate_<form name>``."""

    async def required_slots(self, domain_slots: list[str], dispatcher: CollectingDispatcher,
                             tracker: Tracker, domain: dict[str, Any]) -> list[str]:
        """The form's slots; the proof is asked only for an order not yet shown to be
        this conversation's."""
        order_id = parse_order_id(tracker.get_slot("order_id"))
        if PROOF_SLOT in domain_slots and order_id and await self._owner(tracker, order_id):
            return [slot for slot in domain_slots if slot != PROOF_SLOT]
        return domain_slots

    async def _owner(self, tracker: Tracker, order_id: str) -> str | None:
        try:
            return await order_owner(tracker, self.services.backend, order_id)
        except BackendError:
            return None  # validate_order_id reports the failure

    async def validate_order_id(self, slot_value: Any, dispatcher: CollectingDispatcher,
                                tracker: Tracker, domain: dict[str, Any]) -> dict[str, Any]:
        order_id = parse_order_id(slot_value)
        if order_id is None:
            dispatcher.utter_message(
                text="That doesn't look like an order number: it has exactly 5 digits, "
                     "like 12345. You'll find it in your confirmation email.")
            return {"order_id": None}
        try:
            owner = await order_owner(tracker, self.services.backend, order_id)
            if owner is None:
                # Unknown, someone else's or not yet proven: the same next question
                # for all, so nothing tells which order numbers exist.
                if await self._locked(tracker, order_id, dispatcher):
                    return {"order_id": None}
                return {"order_id": order_id, PROOF_SLOT: None}
            order = await self.services.backend.get_order(order_id, owner)
        except BackendError as error:
            return self._backend_down(error, tracker, dispatcher)
        if order is None:
            dispatcher.utter_message(
                text=f"I can't find an order {order_id}. Could you check the number?")
            return {"order_id": None}
        return {"order_id": order_id, **await self.after_order_found(order, dispatcher)}

    async def validate_order_proof(self, slot_value: Any, dispatcher: CollectingDispatcher,
                                   tracker: Tracker, domain: dict[str, Any]) -> dict[str, Any]:
        """Checks the e-mail address or postcode against the order, counting failures."""
        order_id = parse_order_id(tracker.get_slot("order_id"))
        email, postcode = parse_proof(slot_value)
        if order_id is None:
            return {PROOF_SLOT: None}
        if not email and not postcode:
            dispatcher.utter_message(
                text="I need the e-mail address on the order (like name@example.com) or "
                     "its delivery postcode (like LS6 2AB).")
            return {PROOF_SLOT: None}
        backend, settings = self.services.backend, self.services.settings
        scopes = proof_scopes(tracker.sender_id, order_id)
        try:
            if await self._locked(tracker, order_id, dispatcher):
                return {PROOF_SLOT: None, "order_id": None}
            owner = await backend.prove_order(order_id, email=email, postcode=postcode)
            if owner is None:
                locked = await backend.record_failed_proof(scopes, settings.proof_attempts,
                                                           settings.proof_lock_s)
                dispatcher.utter_message(text=NO_MATCH_TEXT.format(order_id=order_id))
                if locked:
                    dispatcher.utter_message(text=self._locked_text())
                return {PROOF_SLOT: None, "order_id": None}
            await backend.clear_failed_proofs(scopes)
            order = await backend.get_order(order_id, owner)
        except BackendError as error:
            return self._backend_down(error, tracker, dispatcher)
        if order is None:  # deleted in between
            return {PROOF_SLOT: None, "order_id": None}
        proven = {**proven_orders(tracker), order_id: owner}
        # The slot keeps that it was proven, not the e-mail address or postcode.
        return {PROOF_SLOT: "verified", VERIFIED_ORDERS: proven,
                **await self.after_order_found(order, dispatcher)}

    async def _locked(self, tracker: Tracker, order_id: str,
                      dispatcher: CollectingDispatcher) -> bool:
        until = await self.services.backend.proof_locked_until(
            proof_scopes(tracker.sender_id, order_id))
        if until:
            dispatcher.utter_message(text=self._locked_text())
        return bool(until)

    def _locked_text(self) -> str:
        return LOCKED_TEXT.format(minutes=round(self.services.settings.proof_lock_s / 60))

    def _backend_down(self, error: BackendError, tracker: Tracker,
                      dispatcher: CollectingDispatcher) -> dict[str, Any]:
        logger.error("%s failed for conversation %s: %s", self.name(), tracker.sender_id,
                     error)
        dispatcher.utter_message(text=BACKEND_DOWN_TEXT)
        return {"order_id": None}

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
