"""Order actions: status, tracking, returns, refunds, cancelling, re-addressing."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.backend import Order
from actions.base import ServiceAction
from actions.ownership import order_owner
from actions.services import parse_order_id
from actions.texts import (
    EN,
    language,
    order_items,
    order_status,
    product_name,
    say,
    shop_product,
    text,
)


async def slot_order(action: ServiceAction, tracker: Tracker) -> tuple[Order | None, str]:
    """The order named by the ``order_id`` slot and its owner, if this conversation may
    act on it (``actions.ownership``); ``(None, "")`` otherwise."""
    order_id = parse_order_id(tracker.get_slot("order_id"))
    owner = await order_owner(tracker, action.services.backend, order_id) if order_id else None
    if not order_id or not owner:
        return None, ""
    return await action.services.backend.get_order(order_id, owner), owner


def status_text(order: Order, lang: str = EN) -> str:
    """What the customer hears about an order's state."""
    values = {"order_id": order.order_id, "items": order_items(order.items, lang),
              "carrier": order.carrier, "eta": order.eta}
    if order.status in {"processing", "shipped", "delivered", "cancelled"}:
        return text(f"status_{order.status}", lang, **values)
    return text("status_other", lang, order_id=order.order_id, status=order.status)


def tracking_text(order: Order, lang: str = EN) -> str:
    """Where the parcel is."""
    if order.status == "shipped":
        return text("tracking_shipped", lang, order_id=order.order_id, carrier=order.carrier,
                    tracking_number=order.tracking_number, eta=order.eta)
    if order.status == "processing":
        return text("tracking_processing", lang, order_id=order.order_id)
    return status_text(order, lang)


def refund_text(order: Order, lang: str = EN) -> str:
    """The state of an order's refund."""
    key = {"pending": "refund_pending", "paid": "refund_paid"}.get(order.refund_status,
                                                                    "refund_none")
    return text(key, lang, order_id=order.order_id)


class ActionHandleOrderRequest(ServiceAction):
    """Answers the request that started the order form, for the order it collected."""

    def name(self) -> str:
        return "action_handle_order_request"

    async def serve(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                    domain: dict[str, Any]) -> list[EventType]:
        order, owner = await slot_order(self, tracker)
        if order is None:
            say(dispatcher, tracker, "order_not_found")
            return [SlotSet("order_id", None)]
        request = tracker.get_slot("order_request") or "order_status"
        lang = language(tracker)
        if request == "track_delivery":
            dispatcher.utter_message(text=tracking_text(order, lang))
        elif request == "refund_status":
            dispatcher.utter_message(text=refund_text(order, lang))
        elif request == "return_item":
            dispatcher.utter_message(text=await self._return_text(order, owner, lang))
        else:
            dispatcher.utter_message(text=status_text(order, lang))
        return []

    async def _return_text(self, order: Order, owner: str, lang: str) -> str:
        if order.status == "delivered":
            reference = await self.services.backend.start_return(order.order_id, owner)
            return text("return_started", lang, order_id=order.order_id, reference=reference)
        key = {"processing": "return_processing", "shipped": "return_shipped"}.get(
            order.status, "return_cancelled")
        return text(key, lang, order_id=order.order_id)


class ActionCancelOrder(ServiceAction):
    """Cancels the order once the customer confirmed; refuses shipped orders."""

    def name(self) -> str:
        return "action_cancel_order"

    async def serve(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                    domain: dict[str, Any]) -> list[EventType]:
        order, owner = await slot_order(self, tracker)
        reset = [SlotSet("cancel_confirmed", None)]
        if order is None:
            say(dispatcher, tracker, "order_not_found")
        elif not order.can_be_changed:
            say(dispatcher, tracker, "cancel_refused", order_id=order.order_id,
                status=order_status(order.status, language(tracker)))
        elif not tracker.get_slot("cancel_confirmed"):
            dispatcher.utter_message(response="utter_keep_order")
        else:
            order = await self.services.backend.cancel_order(order.order_id, owner)
            if order.status != "cancelled":  # it shipped in the meantime
                say(dispatcher, tracker, "cancel_too_late", order_id=order.order_id)
                return reset
            say(dispatcher, tracker, "cancel_done", order_id=order.order_id)
        return reset


class ActionChangeAddress(ServiceAction):
    """Sets the new delivery address collected by the address form."""

    def name(self) -> str:
        return "action_change_address"

    async def serve(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                    domain: dict[str, Any]) -> list[EventType]:
        address = tracker.get_slot("new_address")
        order, owner = await slot_order(self, tracker)
        if order is None or not address:
            say(dispatcher, tracker, "address_failed")
        elif not order.can_be_changed:
            say(dispatcher, tracker, "address_left", order_id=order.order_id)
        else:
            order = await self.services.backend.change_address(order.order_id, owner, address)
            if order.address != address:  # it shipped in the meantime
                say(dispatcher, tracker, "address_too_late", order_id=order.order_id)
                return [SlotSet("new_address", None)]
            say(dispatcher, tracker, "address_done", order_id=order.order_id, address=address)
        return [SlotSet("new_address", None)]


class ActionProductAvailability(ServiceAction):
    """Says whether a product is in stock.

    A product named in Chinese is looked up by the shop's English name
    (``actions.texts.PRODUCTS_ZH``); a Chinese answer names it in Chinese.
    """

    def name(self) -> str:
        return "action_product_availability"

    async def serve(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                    domain: dict[str, Any]) -> list[EventType]:
        product = next(tracker.get_latest_entity_values("product"), None)
        product = product or tracker.get_slot("product")
        if not product:
            say(dispatcher, tracker, "product_which")
            return []
        stock = await self.services.backend.stock(shop_product(product))
        if stock is None:
            key = "product_unknown"
        else:
            key = "product_out" if stock == 0 else "product_in"
        say(dispatcher, tracker, key, product=product_name(product, language(tracker)),
            stock=stock)
        return [SlotSet("product", product)]
