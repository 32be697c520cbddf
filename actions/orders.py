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


async def slot_order(action: ServiceAction, tracker: Tracker) -> tuple[Order | None, str]:
    """The order named by the ``order_id`` slot and its owner, if this conversation may
    act on it (``actions.ownership``); ``(None, "")`` otherwise."""
    order_id = parse_order_id(tracker.get_slot("order_id"))
    owner = await order_owner(tracker, action.services.backend, order_id) if order_id else None
    if not order_id or not owner:
        return None, ""
    return await action.services.backend.get_order(order_id, owner), owner


def _items(order: Order) -> str:
    return " and ".join(order.items)


def status_text(order: Order) -> str:
    """What the customer hears about an order's state."""
    texts = {
        "processing": f"Order {order.order_id} ({_items(order)}) is being prepared and will "
                      "ship soon.",
        "shipped": f"Order {order.order_id} ({_items(order)}) has shipped with {order.carrier} "
                   f"and should arrive on {order.eta}.",
        "delivered": f"Order {order.order_id} ({_items(order)}) was delivered on {order.eta}.",
        "cancelled": f"Order {order.order_id} was cancelled.",
    }
    return texts.get(order.status, f"Order {order.order_id} is {order.status}.")


def tracking_text(order: Order) -> str:
    """Where the parcel is."""
    if order.status == "shipped":
        return (f"Order {order.order_id} is on its way with {order.carrier}, tracking number "
                f"{order.tracking_number}. Expected delivery: {order.eta}.")
    if order.status == "processing":
        return (f"Order {order.order_id} hasn't shipped yet. You'll get a tracking number by "
                "email as soon as it leaves our warehouse.")
    return status_text(order)


def refund_text(order: Order) -> str:
    """The state of an order's refund."""
    return {
        "pending": f"The refund for order {order.order_id} is being processed; it reaches your "
                   "account within 5-7 working days.",
        "paid": f"The refund for order {order.order_id} has been paid to your original payment "
                "method.",
    }.get(order.refund_status, f"There is no refund on order {order.order_id}.")


class ActionHandleOrderRequest(ServiceAction):
    """Answers the request that started the order form, for the order it collected."""

    def name(self) -> str:
        return "action_handle_order_request"

    async def serve(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                    domain: dict[str, Any]) -> list[EventType]:
        order, owner = await slot_order(self, tracker)
        if order is None:
            dispatcher.utter_message(text="Sorry, I couldn't find that order.")
            return [SlotSet("order_id", None)]
        request = tracker.get_slot("order_request") or "order_status"
        if request == "track_delivery":
            dispatcher.utter_message(text=tracking_text(order))
        elif request == "refund_status":
            dispatcher.utter_message(text=refund_text(order))
        elif request == "return_item":
            dispatcher.utter_message(text=await self._return_text(order, owner))
        else:
            dispatcher.utter_message(text=status_text(order))
        return []

    async def _return_text(self, order: Order, owner: str) -> str:
        if order.status == "delivered":
            reference = await self.services.backend.start_return(order.order_id, owner)
            return (f"I've started a return for order {order.order_id}. Your return reference "
                    f"is {reference}; the free return label is on its way to your email.")
        if order.status == "processing":
            return (f"Order {order.order_id} hasn't shipped yet, so there is nothing to return: "
                    "you can cancel it instead.")
        if order.status == "shipped":
            return (f"Order {order.order_id} is still on its way. Once it arrives you can return "
                    "it for free within 30 days.")
        return f"Order {order.order_id} was cancelled, so there is nothing to return."


class ActionCancelOrder(ServiceAction):
    """Cancels the order once the customer confirmed; refuses shipped orders."""

    def name(self) -> str:
        return "action_cancel_order"

    async def serve(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                    domain: dict[str, Any]) -> list[EventType]:
        order, owner = await slot_order(self, tracker)
        reset = [SlotSet("cancel_confirmed", None)]
        if order is None:
            dispatcher.utter_message(text="Sorry, I couldn't find that order.")
        elif not order.can_be_changed:
            dispatcher.utter_message(text=(
                f"Sorry, order {order.order_id} is already {order.status} and can't be cancelled "
                "any more. Once it has arrived you can return it for free within 30 days."))
        elif not tracker.get_slot("cancel_confirmed"):
            dispatcher.utter_message(response="utter_keep_order")
        else:
            order = await self.services.backend.cancel_order(order.order_id, owner)
            if order.status != "cancelled":  # it shipped in the meantime
                dispatcher.utter_message(text=(
                    f"Sorry, order {order.order_id} has just left our warehouse and can't be "
                    "cancelled any more."))
                return reset
            dispatcher.utter_message(text=(
                f"Done: order {order.order_id} is cancelled. Your refund is on its way and "
                "reaches your account within 5-7 working days."))
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
            dispatcher.utter_message(text="Sorry, I couldn't change the address.")
        elif not order.can_be_changed:
            dispatcher.utter_message(text=(
                f"Sorry, order {order.order_id} has already left our warehouse, so its address "
                "can't be changed any more."))
        else:
            order = await self.services.backend.change_address(order.order_id, owner, address)
            if order.address != address:  # it shipped in the meantime
                dispatcher.utter_message(text=(
                    f"Sorry, order {order.order_id} has just left our warehouse, so its "
                    "address can't be changed any more."))
                return [SlotSet("new_address", None)]
            dispatcher.utter_message(text=(
                f"Done: order {order.order_id} will be delivered to {address}."))
        return [SlotSet("new_address", None)]


class ActionProductAvailability(ServiceAction):
    """Says whether a product is in stock."""

    def name(self) -> str:
        return "action_product_availability"

    async def serve(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                    domain: dict[str, Any]) -> list[EventType]:
        product = next(tracker.get_latest_entity_values("product"), None)
        product = product or tracker.get_slot("product")
        if not product:
            dispatcher.utter_message(text="Which product are you looking for?")
            return []
        stock = await self.services.backend.stock(product)
        if stock is None:
            text = f"Sorry, we don't sell {product}."
        elif stock == 0:
            text = f"Sorry, we're out of {product} right now; new stock arrives in 1-2 weeks."
        else:
            text = f"Good news: we have {product} in stock ({stock} available)."
        dispatcher.utter_message(text=text)
        return [SlotSet("product", product)]
