"""Everything the actions say, in English and Simplified Chinese: one catalogue.

The ``language`` slot (domain.yml, set by the ``LanguageIdentifier``'s entity)
picks the language: Chinese when it is ``zh``, English otherwise, as Rasa does
for the domain's responses with their ``condition: language zh`` variations.

Why a Python catalogue rather than domain responses (``utter_...`` with
``{placeholders}``) for the texts that actions build:

- an action that sends ``response="utter_x"`` hands the action server's answer a
  response *name*; Rasa renders the text only later, in the Rasa server. The
  action tests (``tests/actions``) and the action server's HTTP tests read the
  text itself, so they could not stay unchanged;
- many texts are assembled from parts whose wording depends on the language:
  the items of an order ("running shoes and yoga mat", "跑步鞋、瑜伽垫"), the team
  a ticket went to, its priority, a duration ("an hour", "1小时"), an optional
  sentence about the ticket. Rasa's templates only substitute values; they
  cannot translate them.

Fixed texts that the dialogue itself utters (``utter_ask_*``, ``utter_faq_unknown``,
``utter_keep_order``, ``utter_offer_payments_team``, the fallback's answers) stay
domain responses, which the actions that need them keep sending by name. The rule
is: a whole fixed turn lives in domain.yml; a text an action composes lives here.

The English texts are exactly what the actions said before this catalogue
existed (end-to-end tests compare them byte for byte).
"""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

EN = "en"
ZH = "zh"
LANGUAGE_SLOT = "language"

# key -> language -> text with str.format placeholders.
TEXTS: dict[str, dict[str, str]] = {
    # actions/base.py
    "backend_down": {
        EN: "Sorry, I can't reach our order system right now. Please try again in a few "
            "minutes, or ask me for a human colleague.",
        ZH: "抱歉，我们的订单系统暂时无法连接。请过几分钟再试，"
            "或者告诉我“转人工”，由同事为您处理。",
    },
    # actions/forms.py
    "order_id_format": {
        EN: "That doesn't look like an order number: it has exactly 5 digits, like 12345. "
            "You'll find it in your confirmation email.",
        ZH: "这好像不是订单号：订单号是5位数字，例如12345。您可以在订单确认邮件里找到它。",
    },
    "order_id_unknown": {
        EN: "I can't find an order {order_id}. Could you check the number?",
        ZH: "没有找到订单{order_id}，麻烦您核对一下订单号。",
    },
    "proof_needed": {
        EN: "I need the e-mail address on the order (like name@example.com) or its delivery "
            "postcode (like LS6 2AB).",
        ZH: "请告诉我下单时用的邮箱地址（例如 name@example.com），或者收货地址的邮编"
            "（例如 LS6 2AB）。",
    },
    "proof_no_match": {
        EN: "That doesn't match order {order_id}: either there is no such order, or the "
            "e-mail address or postcode is not the one on it. Please check the order "
            "number, then tell me it again.",
        ZH: "与订单{order_id}的信息不符：可能没有这个订单，或者邮箱地址、邮编和订单上的不一致。"
            "请核对订单号后再告诉我一次。",
    },
    "proof_locked": {
        EN: "For your security I can't check order details in this conversation for the "
            "next {minutes} minutes, after too many attempts. A colleague can help you "
            "sooner: just ask for a human.",
        ZH: "为了您的账户安全，由于尝试次数过多，接下来{minutes}分钟内"
            "我无法在本次对话中查询订单信息。"
            "如需尽快处理，请告诉我“转人工”，同事会为您服务。",
    },
    "address_order_left": {
        EN: "Order {order_id} has already left our warehouse, so its address can't be changed "
            "any more. If you have another order, tell me its number.",
        ZH: "订单{order_id}已经出库，收货地址无法再修改了。如果您还有其他订单，请告诉我订单号。",
    },
    "address_invalid": {
        EN: "That doesn't look like a full address ({problem}). Could you send it again, for "
            "example: 42 Oak Avenue, Leeds LS6 2AB?",
        ZH: "这个地址好像不完整（{problem}）。请您再发一次，"
            "例如：42 Oak Avenue, Leeds LS6 2AB。",
    },
    "address_length": {
        EN: "an address has between {low} and {high} characters",
        ZH: "地址长度应在{low}到{high}个字符之间",
    },
    "address_parts": {
        EN: "an address needs a street, a house number and a postcode",
        ZH: "地址需要包含街道、门牌号和邮编",
    },
    # actions/orders.py: an order's state
    "order_not_found": {
        EN: "Sorry, I couldn't find that order.",
        ZH: "抱歉，没有找到这个订单。",
    },
    "status_processing": {
        EN: "Order {order_id} ({items}) is being prepared and will ship soon.",
        ZH: "订单{order_id}（{items}）正在备货，很快就会发货。",
    },
    "status_shipped": {
        EN: "Order {order_id} ({items}) has shipped with {carrier} and should arrive on {eta}.",
        ZH: "订单{order_id}（{items}）已通过{carrier}发货，预计{eta}送达。",
    },
    "status_delivered": {
        EN: "Order {order_id} ({items}) was delivered on {eta}.",
        ZH: "订单{order_id}（{items}）已于{eta}送达。",
    },
    "status_cancelled": {
        EN: "Order {order_id} was cancelled.",
        ZH: "订单{order_id}已取消。",
    },
    "status_other": {
        EN: "Order {order_id} is {status}.",
        ZH: "订单{order_id}的状态是：{status}。",
    },
    "tracking_shipped": {
        EN: "Order {order_id} is on its way with {carrier}, tracking number {tracking_number}. "
            "Expected delivery: {eta}.",
        ZH: "订单{order_id}正由{carrier}配送，运单号{tracking_number}，预计送达日期：{eta}。",
    },
    "tracking_processing": {
        EN: "Order {order_id} hasn't shipped yet. You'll get a tracking number by email as soon "
            "as it leaves our warehouse.",
        ZH: "订单{order_id}还没有发货。包裹一出库，我们就会通过邮件把运单号发给您。",
    },
    "refund_pending": {
        EN: "The refund for order {order_id} is being processed; it reaches your account "
            "within 5-7 working days.",
        ZH: "订单{order_id}的退款正在处理中，5-7个工作日内会退回您的账户。",
    },
    "refund_paid": {
        EN: "The refund for order {order_id} has been paid to your original payment method.",
        ZH: "订单{order_id}的退款已原路退回到您的支付账户。",
    },
    "refund_none": {
        EN: "There is no refund on order {order_id}.",
        ZH: "订单{order_id}没有退款记录。",
    },
    "return_started": {
        EN: "I've started a return for order {order_id}. Your return reference is "
            "{reference}; the free return label is on its way to your email.",
        ZH: "已为您的订单{order_id}申请退货，退货编号是{reference}；免费退货面单会发送到您的邮箱。",
    },
    "return_processing": {
        EN: "Order {order_id} hasn't shipped yet, so there is nothing to return: you can "
            "cancel it instead.",
        ZH: "订单{order_id}还没有发货，无需退货：您可以直接取消订单。",
    },
    "return_shipped": {
        EN: "Order {order_id} is still on its way. Once it arrives you can return it for free "
            "within 30 days.",
        ZH: "订单{order_id}还在配送途中。收到货后30天内可以免费退货。",
    },
    "return_cancelled": {
        EN: "Order {order_id} was cancelled, so there is nothing to return.",
        ZH: "订单{order_id}已取消，无需退货。",
    },
    # actions/orders.py: cancelling and re-addressing
    "cancel_refused": {
        EN: "Sorry, order {order_id} is already {status} and can't be cancelled any more. "
            "Once it has arrived you can return it for free within 30 days.",
        ZH: "抱歉，订单{order_id}{status}，无法再取消了。收到货后30天内可以免费退货。",
    },
    "cancel_too_late": {
        EN: "Sorry, order {order_id} has just left our warehouse and can't be cancelled any "
            "more.",
        ZH: "抱歉，订单{order_id}刚刚出库，无法再取消了。",
    },
    "cancel_done": {
        EN: "Done: order {order_id} is cancelled. Your refund is on its way and reaches your "
            "account within 5-7 working days.",
        ZH: "已为您取消订单{order_id}。退款正在处理中，5-7个工作日内会退回您的账户。",
    },
    "address_failed": {
        EN: "Sorry, I couldn't change the address.",
        ZH: "抱歉，没能修改收货地址。",
    },
    "address_left": {
        EN: "Sorry, order {order_id} has already left our warehouse, so its address can't be "
            "changed any more.",
        ZH: "抱歉，订单{order_id}已经出库，收货地址无法再修改了。",
    },
    "address_too_late": {
        EN: "Sorry, order {order_id} has just left our warehouse, so its address can't be "
            "changed any more.",
        ZH: "抱歉，订单{order_id}刚刚出库，收货地址无法再修改了。",
    },
    "address_done": {
        EN: "Done: order {order_id} will be delivered to {address}.",
        ZH: "已修改：订单{order_id}将配送至{address}。",
    },
    # actions/orders.py: products
    "product_which": {
        EN: "Which product are you looking for?",
        ZH: "请问您想找哪款商品？",
    },
    "product_unknown": {
        EN: "Sorry, we don't sell {product}.",
        ZH: "抱歉，我们暂不销售{product}。",
    },
    "product_out": {
        EN: "Sorry, we're out of {product} right now; new stock arrives in 1-2 weeks.",
        ZH: "抱歉，{product}目前缺货，新货预计1-2周内到货。",
    },
    "product_in": {
        EN: "Good news: we have {product} in stock ({stock} available).",
        ZH: "好消息：{product}有现货（库存{stock}件）。",
    },
    # actions/payments.py: the advice for each kind of payment problem
    "payment_double_charge": {
        EN: "A second charge is usually a pending authorisation from a failed attempt: your "
            "bank releases it within 3-5 working days. If it is still there after that, our "
            "payments team refunds it.",
        ZH: "第二笔扣款通常是支付失败时产生的预授权，银行会在3-5个工作日内自动释放。"
            "如果之后仍未退回，我们的支付团队会为您退款。",
    },
    "payment_charged_no_order": {
        EN: "When the money left your account but no confirmation came, the order is usually "
            "still being confirmed: check your spam folder and your account's Orders page in 15 "
            "minutes. If it isn't there, the payment is refunded automatically within 5 "
            "working days.",
        ZH: "如果已经扣款但没有收到确认，订单通常还在确认中：请查看一下垃圾邮件，"
            "并在15分钟后查看您账户的“Orders”（我的订单）页面。如果订单仍未出现，"
            "款项会在5个工作日内自动退回。",
    },
    "payment_declined": {
        EN: "Most declined payments are fixed by checking the card's expiry date, the billing "
            "address and the 3-digit security code, or by confirming the payment in your bank's "
            "app. You can also pay with PayPal, Apple Pay, Google Pay or bank transfer.",
        ZH: "支付被拒的问题，大多核对一下银行卡的有效期、账单地址和3位安全码，"
            "或在银行App中确认这笔付款就能解决。您也可以改用PayPal、Apple Pay、"
            "Google Pay或银行转账付款。",
    },
    "payment_general": {
        EN: "Sorry about the payment trouble. Most problems are solved by checking the card's "
            "details or trying another method (card, PayPal or bank transfer).",
        ZH: "很抱歉支付遇到了问题。大多数情况下，核对一下银行卡信息，或换一种支付方式"
            "（银行卡、PayPal或银行转账）就能解决。",
    },
    # actions/complaints.py
    "complaint_filed": {
        EN: "I'm sorry about this. I've opened ticket {reference} for our {team} team with "
            "your description; a colleague will get back to you here.",
        ZH: "非常抱歉给您带来不便。我已把您的描述提交给{team}团队，工单号{reference}；"
            "同事会在这里回复您。",
    },
    # actions/handoff.py
    "handoff": {
        EN: "{reason}I've passed our conversation to a colleague (ticket {reference}, "
            "{priority} priority). They will reply here within a few minutes during opening "
            "hours. If nobody can reply within {duration}, I'll tell you and help you again "
            "myself.",
        ZH: "{reason}我已把我们的对话转给同事（工单号{reference}，优先级：{priority}）。"
            "营业时间内，同事会在几分钟内在这里回复您。如果{duration}内没有同事回复，"
            "我会告诉您，并继续为您服务。",
    },
    "reason_strongly_negative": {
        EN: "I'm sorry this has been so frustrating. ",
        ZH: "非常抱歉让您这么不愉快。",
    },
    "reason_persistently_negative": {
        EN: "I'm sorry I haven't been able to sort this out. ",
        ZH: "很抱歉一直没能帮您解决问题。",
    },
    "handoff_pending": {
        EN: "A colleague has our conversation and will answer here shortly; I've added your "
            "message for them. If you'd rather carry on with me, just say so.",
        ZH: "同事已经接手我们的对话，很快会在这里回复您；您的留言我已转给同事。"
            "如果您想继续和我聊，直接告诉我就好。",
    },
    "handoff_pending_ticket": {
        EN: "A colleague has our conversation (ticket {reference}) and will answer here "
            "shortly; I've added your message for them. If you'd rather carry on with me, just "
            "say so.",
        ZH: "同事已经接手我们的对话（工单号{reference}），很快会在这里回复您；"
            "您的留言我已转给同事。如果您想继续和我聊，直接告诉我就好。",
    },
    "ticket_closed_earlier": {
        EN: "Our colleague has closed your ticket {reference}.",
        ZH: "同事已关闭您的工单{reference}。",
    },
    "ticket_handed_back": {
        EN: "Hello again, it's the shop assistant. Our colleague has handed the conversation "
            "back to me and closed your ticket {reference}. What else can I help you with?",
        ZH: "您好，我是Shopwise智能助手，很高兴继续为您服务。同事已把对话转回给我，"
            "并关闭了您的工单{reference}。请问还有什么可以帮您？",
    },
    "ticket_closed": {
        EN: "Our colleague has closed your ticket {reference}; I'm here again if you need "
            "anything.",
        ZH: "同事已关闭您的工单{reference}；如果您还需要帮助，随时告诉我。",
    },
    "satisfaction_question": {
        EN: "How happy are you with the help you got from our colleague?",
        ZH: "请问您对同事这次提供的帮助满意吗？",
    },
    "timeout_no_ticket": {
        EN: "No colleague has been able to reply, sorry; I'm here again to help you.",
        ZH: "抱歉，暂时没有同事能回复您；接下来由我继续为您服务。",
    },
    "timeout_ticket_closed": {
        EN: "Your ticket {reference} has been closed; I'm here again if you need anything.",
        ZH: "您的工单{reference}已关闭；如果您还需要帮助，随时告诉我。",
    },
    "timeout_ticket_open": {
        EN: "No colleague has been able to reply yet, sorry. Your ticket {reference} stays "
            "open and a colleague will follow it up; meanwhile I can help you again myself.",
        ZH: "抱歉，目前还没有同事能回复您。您的工单{reference}会保持开启，同事稍后会跟进；"
            "在此期间，我可以继续为您服务。",
    },
    "rating_stored": {
        EN: "Thank you for telling us! Anything else I can do for you?",
        ZH: "感谢您的评价！还有什么可以帮您的吗？",
    },
    "rating_nothing": {
        EN: "Thanks! There's nothing to rate just now; what can I help you with?",
        ZH: "谢谢！目前没有需要评价的服务。请问有什么可以帮您？",
    },
    "bot_here": {
        EN: "Sure, I'm here. What can I help you with?",
        ZH: "好的，我在。请问有什么可以帮您？",
    },
    "back_with_bot": {
        EN: "Alright, you're back with me. What can I help you with?",
        ZH: "好的，接下来由我继续为您服务。请问有什么可以帮您？",
    },
    "back_with_bot_ticket": {
        EN: "Alright, you're back with me. Your ticket {reference} stays open, so a colleague "
            "may still follow up. What can I help you with?",
        ZH: "好的，接下来由我继续为您服务。您的工单{reference}仍保持开启，同事可能还会跟进。"
            "请问有什么可以帮您？",
    },
}

# The words that fill other texts' placeholders. English is the value as the
# backend stores it (the texts used it as it is); Chinese translates it.
ORDER_STATUS_ZH = {"processing": "正在备货", "shipped": "已发货", "delivered": "已送达",
                   "cancelled": "已取消"}
PRIORITY_ZH = {"low": "低", "normal": "普通", "high": "高", "urgent": "紧急"}
TEAM_ZH = {"logistics": "物流", "orders": "订单", "returns": "退货", "billing": "账务",
           "accounts": "账户", "sales": "销售", "customer_service": "客服"}
# The satisfaction question's answers, best first; the payloads are the same in both
# languages (rate_support with the rating entity, see actions/handoff.py).
RATING_TITLES_ZH = {5: "非常满意", 4: "满意", 3: "一般", 2: "不满意", 1: "非常不满意"}

# The shop's products by their Chinese names (the `product` entity of Chinese
# messages, data/nlu_zh.yml) -> the names the shop's database knows them by.
PRODUCTS_ZH = {
    "跑步鞋": "running shoes", "无线耳机": "wireless headphones", "冬季外套": "winter jacket",
    "咖啡机": "coffee maker", "瑜伽垫": "yoga mat", "智能手表": "smart watch",
    "蓝牙音箱": "bluetooth speaker", "登山鞋": "hiking boots", "办公椅": "office chair",
    "空气炸锅": "air fryer", "电脑包": "laptop bag", "机械键盘": "mechanical keyboard",
    "雨衣": "rain jacket", "破壁机": "blender", "床单": "bed sheets", "婴儿推车": "baby stroller",
    "电动牙刷": "electric toothbrush", "运动手环": "fitness tracker", "羊毛衫": "wool sweater",
    "游戏鼠标": "gaming mouse", "电水壶": "kettle", "保温杯": "water bottle", "台灯": "desk lamp",
    "手机壳": "phone case", "平底锅": "frying pan", "双肩包": "backpack", "运动鞋": "sneakers",
    "充电器": "usb charger", "太阳镜": "sunglasses", "卫衣": "hoodie", "牛仔裤": "denim jeans",
}
_PRODUCTS_EN = {english: chinese for chinese, english in PRODUCTS_ZH.items()}

# CJK Unified Ideographs and Extension A: the Han characters of Simplified Chinese.
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")


def language(tracker: Tracker) -> str:
    """The customer's language: ``zh`` when the ``language`` slot says so, else ``en``."""
    return ZH if tracker.get_slot(LANGUAGE_SLOT) == ZH else EN


def text(key: str, lang: str, **values: Any) -> str:
    """The catalogue's text ``key`` in ``lang`` (English for any other), filled in."""
    variants = TEXTS[key]
    return variants.get(lang, variants[EN]).format(**values)


def say(dispatcher: CollectingDispatcher, tracker: Tracker, key: str,
        buttons: list[dict[str, Any]] | None = None, **values: Any) -> None:
    """Sends the text ``key`` in the customer's language (``values`` fill it in)."""
    if buttons is None:
        dispatcher.utter_message(text=text(key, language(tracker), **values))
    else:
        dispatcher.utter_message(text=text(key, language(tracker), **values), buttons=buttons)


def shop_product(name: str) -> str:
    """The shop's (English) name for a product the customer named, in either language."""
    return PRODUCTS_ZH.get(name.strip(), name)


def product_name(name: str, lang: str) -> str:
    """A product's name for the customer: its Chinese name in Chinese where known."""
    if lang != ZH:
        return name
    stripped = name.strip()
    if stripped in PRODUCTS_ZH:
        return stripped
    return _PRODUCTS_EN.get(" ".join(stripped.lower().split()), name)


def order_items(items: tuple[str, ...] | list[str], lang: str) -> str:
    """An order's items as one phrase: "running shoes and yoga mat", "跑步鞋、瑜伽垫"."""
    if lang == ZH:
        return "、".join(product_name(item, ZH) for item in items)
    return " and ".join(items)


def order_status(status: str, lang: str) -> str:
    """An order's status as the texts say it ("shipped", "已发货")."""
    return ORDER_STATUS_ZH.get(status, status) if lang == ZH else status


def priority_name(priority: str, lang: str) -> str:
    """A ticket's priority as the texts say it ("high", "高")."""
    return PRIORITY_ZH.get(priority, priority) if lang == ZH else priority


def team_name(department: str, routed: bool, lang: str) -> str:
    """The team a ticket went to: customer service when it could not be routed."""
    department = department if routed else "customer_service"
    if lang == ZH:
        return TEAM_ZH.get(department, department.replace("_", " "))
    return department.replace("_", " ")


def duration(seconds: float, lang: str = EN) -> str:
    """``seconds`` for the customer: "15 minutes", "an hour", "90 seconds"; "15分钟"."""
    whole = round(seconds)
    if lang == ZH:
        if whole % 3600 == 0:
            return f"{whole // 3600}小时"
        if whole % 60 == 0 and whole >= 120:
            return f"{whole // 60}分钟"
        return f"{whole}秒"
    if whole % 3600 == 0:
        hours = whole // 3600
        return "an hour" if hours == 1 else f"{hours} hours"
    if whole % 60 == 0 and whole >= 120:
        return f"{whole // 60} minutes"
    return "a second" if whole == 1 else f"{whole} seconds"


def rating_buttons(lang: str, intent: str, entity: str) -> list[dict[str, str]]:
    """The satisfaction question's 5..1 buttons; the same payloads in every language."""
    return [{"title": (f"{RATING_TITLES_ZH[stars]} {'★' * stars}" if lang == ZH
                       else f"{stars} {'★' * stars}"),
             "payload": f'/{intent}{{"{entity}": "{stars}"}}'}
            for stars in range(5, 0, -1)]


def han_count(value: str) -> int:
    """How many Han characters ``value`` has (each counts as a word of Chinese)."""
    return len(HAN.findall(value))
