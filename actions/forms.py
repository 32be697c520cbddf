"""Validation of the forms' slots: order numbers, confirmations, addresses."""

from __future__ import annotations

import logging
import re
from abc import ABCMeta, abstractmethod
from typing import Any

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.executor import CollectingDispatcher

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
from actions.texts import EN, TEXTS, language, say, text

logger = logging.getLogger(__name__)

_ADDRESS_LENGTH = (10, 200)
_HAS_LETTER = re.compile(r"[^\W\d_]")
_HAS_DIGIT = re.compile(r"\d")


def address_problem(address: object, lang: str = EN) -> str | None:
    """Why ``address`` is not a usable delivery address (in ``lang``), or ``None`` when it
    is. Han characters count as letters, so a Chinese address passes too."""
    value = " ".join(str(address or "").split())
    low, high = _ADDRESS_LENGTH
    if not low <= len(value) <= high:
        return text("address_length", lang, low=low, high=high)
    if not (_HAS_LETTER.search(value) and _HAS_DIGIT.search(value)):
        return text("address_parts", lang)
    return None


# The English texts with their placeholders, for callers that quote them.
NO_MATCH_TEXT = TEXTS["proof_no_match"][EN]
LOCKED_TEXT = TEXTS["proof_locked"][EN]


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
            say(dispatcher, tracker, "order_id_format")
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
            say(dispatcher, tracker, "order_id_unknown", order_id=order_id)
            return {"order_id": None}
        return {"order_id": order_id,
                **await self.after_order_found(order, dispatcher, tracker)}

    async def validate_order_proof(self, slot_value: Any, dispatcher: CollectingDispatcher,
                                   tracker: Tracker, domain: dict[str, Any]) -> dict[str, Any]:
        """Checks the e-mail address or postcode against the order, counting failures."""
        order_id = parse_order_id(tracker.get_slot("order_id"))
        email, postcode = parse_proof(slot_value)
        if order_id is None:
            return {PROOF_SLOT: None}
        if not email and not postcode:
            say(dispatcher, tracker, "proof_needed")
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
                say(dispatcher, tracker, "proof_no_match", order_id=order_id)
                if locked:
                    self._say_locked(tracker, dispatcher)
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
                **await self.after_order_found(order, dispatcher, tracker)}

    async def _locked(self, tracker: Tracker, order_id: str,
                      dispatcher: CollectingDispatcher) -> bool:
        until = await self.services.backend.proof_locked_until(
            proof_scopes(tracker.sender_id, order_id))
        if until:
            self._say_locked(tracker, dispatcher)
        return bool(until)

    def _say_locked(self, tracker: Tracker, dispatcher: CollectingDispatcher) -> None:
        say(dispatcher, tracker, "proof_locked",
            minutes=round(self.services.settings.proof_lock_s / 60))

    def _backend_down(self, error: BackendError, tracker: Tracker,
                      dispatcher: CollectingDispatcher) -> dict[str, Any]:
        logger.error("%s failed for conversation %s: %s", self.name(), tracker.sender_id,
                     error)
        say(dispatcher, tracker, "backend_down")
        return {"order_id": None}

    async def after_order_found(self, order: Any, dispatcher: CollectingDispatcher,
                                tracker: Tracker) -> dict:
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

    async def after_order_found(self, order: Any, dispatcher: CollectingDispatcher,
                                tracker: Tracker) -> dict:
        # action_cancel_order explains why a shipped order can't be cancelled.
        return {} if order.can_be_changed else {"cancel_confirmed": False}


class ValidateAddressForm(OrderIdValidation):
    """The address form: a changeable order and a plausible address."""

    def name(self) -> str:
        return "validate_address_form"

    async def after_order_found(self, order: Any, dispatcher: CollectingDispatcher,
                                tracker: Tracker) -> dict:
        if order.can_be_changed:
            return {}
        say(dispatcher, tracker, "address_order_left", order_id=order.order_id)
        return {"order_id": None}

    async def validate_new_address(self, slot_value: Any, dispatcher: CollectingDispatcher,
                                   tracker: Tracker, domain: dict[str, Any]) -> dict[str, Any]:
        problem = address_problem(slot_value, language(tracker))
        if problem:
            say(dispatcher, tracker, "address_invalid", problem=problem)
            return {"new_address": None}
        return {"new_address": " ".join(str(slot_value).split())}
