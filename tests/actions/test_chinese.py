"""Every action answers a Chinese customer (slot ``language: zh``) in Chinese.

The English answers are the other test modules'; these check the Chinese ones,
that the catalogue (``actions/texts.py``) is complete and consistent, and the
Chinese-specific rules: product names, complaint descriptions, payment wording.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import text as sql

from actions import texts as catalogue
from actions.backend import NewTicket
from actions.complaints import ActionFileComplaint, ValidateComplaintForm, describes_a_problem
from actions.forms import ValidateAddressForm, ValidateOrderForm, address_problem
from actions.handoff import (
    ActionContinueWithBot,
    ActionHandoff,
    ActionHandoffPending,
    ActionHandoffTimeout,
    ActionReleaseHandoff,
    ActionStoreSatisfaction,
    duration,
)
from actions.nlu_client import Parsed
from actions.orders import (
    ActionCancelOrder,
    ActionChangeAddress,
    ActionHandleOrderRequest,
    ActionProductAvailability,
)
from actions.payments import ActionPaymentTriage, payment_issue
from actions.schema import DEMO_STOCK
from tests.actions.conftest import FakeClassifier, texts, user_event

ZH = {"language": "zh"}
HAN = catalogue.HAN


@pytest.fixture
def zh_tracker(make_tracker: Callable[..., Tracker]) -> Callable[..., Tracker]:
    """``make_tracker`` with the slot ``language: zh`` added."""

    def make(slots: dict[str, Any] | None = None, **kwargs: Any) -> Tracker:
        return make_tracker({**ZH, **(slots or {})}, **kwargs)

    return make


def only_text(dispatcher: CollectingDispatcher) -> str:
    [said] = texts(dispatcher)
    return said


# -- the catalogue ---------------------------------------------------------------------------


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@pytest.mark.parametrize("key", sorted(catalogue.TEXTS))
def test_every_text_has_both_languages_with_the_same_placeholders(key: str) -> None:
    variants = catalogue.TEXTS[key]

    assert set(variants) == {"en", "zh"}
    assert placeholders(variants["en"]) == placeholders(variants["zh"])
    assert HAN.search(variants["zh"]) and not HAN.search(variants["en"])


def test_the_chinese_texts_address_the_customer_politely() -> None:
    # 您, never the familiar 你, as in domain.yml's Chinese responses.
    familiar = [key for key, variants in catalogue.TEXTS.items() if "你" in variants["zh"]]

    assert not familiar


def test_every_product_of_the_shop_has_a_chinese_name() -> None:
    assert set(DEMO_STOCK) <= set(catalogue.PRODUCTS_ZH.values())
    assert len(catalogue.PRODUCTS_ZH) == 31


@pytest.mark.parametrize(("slot", "expected"), [("zh", "zh"), ("en", "en"), (None, "en")])
def test_the_language_comes_from_the_slot(make_tracker, slot, expected) -> None:
    assert catalogue.language(make_tracker({"language": slot})) == expected


@pytest.mark.parametrize(("seconds", "said"), [(900, "15分钟"), (3600, "1小时"),
                                               (7200, "2小时"), (90, "90秒"), (1, "1秒")])
def test_durations_in_chinese(seconds: float, said: str) -> None:
    assert duration(seconds, "zh") == said


# -- orders ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("order_id", "request_", "expected"),
    [
        ("12345", "order_status", "订单12345（无线耳机）已通过DHL发货，预计2026-12-03送达。"),
        ("48213", "order_status", "订单48213（跑步鞋、瑜伽垫）正在备货，很快就会发货。"),
        ("90871", "order_status", "订单90871已取消。"),
        ("12345", "track_delivery", "订单12345正由DHL配送，运单号JD014600006281，"
                                    "预计送达日期：2026-12-03。"),
        ("48213", "track_delivery", "订单48213还没有发货。"),
        ("55120", "refund_status", "订单55120的退款正在处理中，5-7个工作日内会退回您的账户。"),
        ("12345", "refund_status", "订单12345没有退款记录。"),
        ("55120", "return_item", "已为您的订单55120申请退货，退货编号是R-55120-"),
        ("48213", "return_item", "您可以直接取消订单"),
        ("12345", "return_item", "收到货后30天内可以免费退货"),
    ],
)
async def test_order_requests_in_chinese(services, dispatcher, zh_tracker, order_id, request_,
                                         expected) -> None:
    tracker = zh_tracker({"order_id": order_id, "order_request": request_})

    assert await ActionHandleOrderRequest(services).run(dispatcher, tracker, {}) == []

    assert expected in only_text(dispatcher)


async def test_an_unknown_order_in_chinese(services, dispatcher, zh_tracker) -> None:
    events = await ActionHandleOrderRequest(services).run(
        dispatcher, zh_tracker({"order_id": "99999"}), {})

    assert only_text(dispatcher) == "抱歉，没有找到这个订单。"
    assert events == [SlotSet("order_id", None)]


@pytest.mark.parametrize(
    ("order_id", "confirmed", "expected"),
    [("48213", True, "已为您取消订单48213。"),
     ("12345", True, "抱歉，订单12345已发货，无法再取消了。"),
     ("55120", False, "抱歉，订单55120已送达，无法再取消了。"),
     # A domain response: Rasa picks its Chinese variation by the slot.
     ("48213", False, "utter_keep_order")],
)
async def test_cancelling_in_chinese(services, dispatcher, zh_tracker, order_id, confirmed,
                                     expected) -> None:
    tracker = zh_tracker({"order_id": order_id, "cancel_confirmed": confirmed})

    await ActionCancelOrder(services).run(dispatcher, tracker, {})

    assert only_text(dispatcher).startswith(expected)


@pytest.mark.parametrize(
    ("order_id", "expected"),
    [("36402", "已修改：订单36402将配送至上海市浦东新区世纪大道100号 200120。"),
     ("12345", "抱歉，订单12345已经出库，收货地址无法再修改了。")],
)
async def test_changing_the_address_in_chinese(services, dispatcher, zh_tracker, order_id,
                                               expected) -> None:
    address = "上海市浦东新区世纪大道100号 200120"
    tracker = zh_tracker({"order_id": order_id, "new_address": address})

    await ActionChangeAddress(services).run(dispatcher, tracker, {})

    assert only_text(dispatcher) == expected


@pytest.mark.parametrize(
    ("product", "expected"),
    [("瑜伽垫", "好消息：瑜伽垫有现货（库存25件）。"),
     ("智能手表", "抱歉，智能手表目前缺货，新货预计1-2周内到货。"),
     ("冬季外套", "好消息：冬季外套有现货（库存6件）。"),
     # Named in English by a Chinese customer: looked up as it is, answered in Chinese.
     ("Coffee Maker", "好消息：咖啡机有现货（库存3件）。"),
     ("飞船", "抱歉，我们暂不销售飞船。"),
     (None, "请问您想找哪款商品？")],
)
async def test_products_named_in_chinese(services, dispatcher, zh_tracker, product,
                                         expected) -> None:
    entities = [{"entity": "product", "value": product}] if product else []

    events = await ActionProductAvailability(services).run(
        dispatcher, zh_tracker(intent="product_availability", entities=entities), {})

    assert only_text(dispatcher) == expected
    assert events == ([SlotSet("product", product)] if product else [])


async def test_a_chinese_product_name_is_looked_up_by_the_shops_name(services) -> None:
    # The table's names are the database's (lower case, as backend.stock normalises).
    for chinese, english in catalogue.PRODUCTS_ZH.items():
        assert catalogue.shop_product(chinese) == english
        assert catalogue.product_name(english, "zh") == chinese
    assert await services.backend.stock(catalogue.shop_product("办公椅")) == 2
    assert catalogue.shop_product("yoga mat") == "yoga mat"


async def test_the_database_down_in_chinese(services, dispatcher, zh_tracker,
                                            database_url) -> None:
    await services.backend.close()
    services.backend.url = database_url.replace("shop.db", "missing/shop.db")

    await ActionHandleOrderRequest(services).run(dispatcher, zh_tracker({"order_id": "12345"}),
                                                 {})

    assert only_text(dispatcher).startswith("抱歉，我们的订单系统暂时无法连接。")


# -- forms -----------------------------------------------------------------------------------


async def test_order_number_format_in_chinese(services, dispatcher, zh_tracker) -> None:
    result = await ValidateOrderForm(services).validate_order_id("1234", dispatcher,
                                                                zh_tracker(), {})

    assert result == {"order_id": None}
    assert only_text(dispatcher).startswith("这好像不是订单号：订单号是5位数字")


async def test_ownership_proof_in_chinese(services, make_tracker) -> None:
    form = ValidateOrderForm(services)
    tracker = make_tracker({**ZH, "order_id": "48213"}, anonymous=True)

    asked = CollectingDispatcher()
    assert await form.validate_order_proof("不知道", asked, tracker, {}) == {
        "order_proof": None}
    assert only_text(asked).startswith("请告诉我下单时用的邮箱地址")

    for attempt in range(5):  # the fifth failure locks: its answer says both
        said = CollectingDispatcher()
        await form.validate_order_proof(f"我的邮箱是guess{attempt}@example.com", said,
                                        tracker, {})
    no_match, locked = texts(said)
    assert no_match.startswith("与订单48213的信息不符")
    assert "接下来15分钟内我无法在本次对话中查询订单信息" in locked


async def test_the_address_form_in_chinese(services, dispatcher, zh_tracker) -> None:
    form = ValidateAddressForm(services)

    assert await form.validate_order_id("12345", dispatcher, zh_tracker(), {}) == {
        "order_id": None}
    assert await form.validate_new_address("随便什么地方", dispatcher, zh_tracker(), {}) == {
        "new_address": None}
    # Han characters are letters: a Chinese address with a number is a full address.
    assert await form.validate_new_address("上海市浦东新区世纪大道100号", dispatcher,
                                           zh_tracker(), {}) == {
        "new_address": "上海市浦东新区世纪大道100号"}

    shipped, short = texts(dispatcher)
    assert shipped == ("订单12345已经出库，收货地址无法再修改了。如果您还有其他订单，"
                       "请告诉我订单号。")
    assert short.startswith("这个地址好像不完整（地址长度应在10到200个字符之间）")
    assert address_problem("上海市浦东新区世纪大道旁边", "zh") == "地址需要包含街道、门牌号和邮编"


# -- payments --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [("同一个订单扣了我两次钱", "double_charge"),
     ("钱已经扣了，但是没有收到订单确认邮件", "charged_no_order"),
     ("付款一直失败", "declined"),
     ("信用卡支付被拒绝了", "declined"),
     ("想问一下付款的事", "general")])
def test_chinese_payment_problems(text: str, kind: str) -> None:
    found, advice = payment_issue(text, "zh")

    assert found == kind
    assert advice == catalogue.text(f"payment_{kind}", "zh")


async def test_payment_triage_in_chinese(dispatcher, zh_tracker) -> None:
    tracker = zh_tracker(intent="payment_problem", text="你们扣了我两次款！")

    assert await ActionPaymentTriage().run(dispatcher, tracker, {}) == []

    advice, offer = texts(dispatcher)
    assert advice.startswith("第二笔扣款通常是支付失败时产生的预授权")
    assert offer == "utter_offer_payments_team"


# -- complaints ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "describes"),
    [("我要投诉", False), ("我想正式投诉一下", False), ("我要投诉你们", False), ("太差了", False),
     ("快递太慢了", True), ("订单55120的咖啡机漏水，桌子上全是水", True),
     ("我要投诉，耳机是坏的", True), ("我要投诉 耳机 坏了", False),
     # English words and Han characters each count for their share.
     ("咖啡机 leaks water", True), ("the 咖啡机 leaks", False)])
def test_chinese_descriptions_count_han_characters(text: str, describes: bool) -> None:
    assert describes_a_problem(text) is describes


async def test_a_chinese_description_is_accepted(dispatcher, zh_tracker) -> None:
    result = await ValidateComplaintForm().validate_complaint_description(
        " 收到的杯子 碎了 ", dispatcher, zh_tracker(), {})

    assert result == {"complaint_description": "收到的杯子 碎了"}


@pytest.mark.parametrize(("parsed", "team"), [
    (Parsed("return_item", 0.9, {"label": "negative", "confidence": 0.8,
                                 "scores": {"negative": 0.8, "neutral": 0.2, "positive": 0.0},
                                 "intensity": 0.4}), "退货"),
    (None, "客服")])
async def test_a_complaint_is_confirmed_in_chinese(services, dispatcher, zh_tracker, parsed,
                                                   team) -> None:
    services.classifier = FakeClassifier(parsed)
    tracker = zh_tracker({"complaint_description": "订单55120的咖啡机漏水"}, intent="complaint")

    events = await ActionFileComplaint(services).run(dispatcher, tracker, {})

    reference = events[2]["value"]
    assert only_text(dispatcher) == (f"非常抱歉给您带来不便。我已把您的描述提交给{team}团队，"
                                     f"工单号{reference}；同事会在这里回复您。")


# -- hand-over -------------------------------------------------------------------------------


async def open_ticket(services, sender_id: str = "test-user") -> str:
    ticket = await services.backend.create_ticket(NewTicket(sender_id=sender_id,
                                                            reason="requested"))
    return ticket.reference


def external(zh_tracker, intent: str, reference: str, slots: dict,
             entities: list | None = None) -> Tracker:
    return zh_tracker(slots, intent=intent, text=f"EXTERNAL: {intent}",
                      entities=[{"entity": "ticket_reference", "value": reference},
                                *(entities or [])])


async def test_a_handoff_in_chinese(services, dispatcher, zh_tracker) -> None:
    angry = [user_event("太慢了，气死我了", intent="track_delivery", label="negative",
                        negative=0.99)]
    tracker = zh_tracker({"escalation_reason": "strongly_negative"}, events=angry)

    events = await ActionHandoff(services).run(dispatcher, tracker, {})

    reference = events[1]["value"]
    assert only_text(dispatcher) == (
        f"非常抱歉让您这么不愉快。我已把我们的对话转给同事（工单号{reference}，优先级：紧急）。"
        "营业时间内，同事会在几分钟内在这里回复您。如果15分钟内没有同事回复，"
        "我会告诉您，并继续为您服务。")


@pytest.mark.parametrize(("ticket", "expected"), [
    (True, "同事已经接手我们的对话（工单号"), (False, "同事已经接手我们的对话，很快")])
async def test_messages_during_a_handoff_in_chinese(services, dispatcher, zh_tracker, ticket,
                                                    expected) -> None:
    slots = {"handoff": True, "ticket": await open_ticket(services) if ticket else None}

    await ActionHandoffPending(services).run(dispatcher, zh_tracker(
        slots, events=[user_event("还在吗？")]), {})

    assert only_text(dispatcher).startswith(expected)


async def test_a_hand_back_asks_for_a_rating_with_chinese_buttons(services, dispatcher,
                                                                   zh_tracker) -> None:
    reference = await open_ticket(services)
    engine = await services.backend._connection()  # noqa: SLF001 - the test's own database
    async with engine.begin() as connection:  # what the console does when an agent claims it
        await connection.execute(sql("UPDATE tickets SET assigned_agent = 'A-1' "
                                     "WHERE reference = :r"), {"r": reference})
    tracker = external(zh_tracker, "EXTERNAL_ticket_closed", reference,
                       {"handoff": True, "ticket": reference},
                       [{"entity": "ticket_outcome", "value": "handback"}])

    await ActionReleaseHandoff(services).run(dispatcher, tracker, {})

    greeting, question = dispatcher.messages
    assert greeting["text"].startswith("您好，我是Shopwise智能助手")
    assert reference in greeting["text"]
    assert question["text"] == "请问您对同事这次提供的帮助满意吗？"
    assert [b["title"] for b in question["buttons"]] == [
        "非常满意 ★★★★★", "满意 ★★★★", "一般 ★★★", "不满意 ★★", "非常不满意 ★"]
    # The same payloads as the English buttons: rate_support with the rating.
    assert [b["payload"] for b in question["buttons"]] == [
        f'/rate_support{{"rating": "{n}"}}' for n in (5, 4, 3, 2, 1)]


async def test_a_closed_ticket_in_chinese(services, dispatcher, zh_tracker) -> None:
    reference = await open_ticket(services)

    await ActionReleaseHandoff(services).run(dispatcher, external(
        zh_tracker, "EXTERNAL_ticket_closed", reference, {"handoff": True, "ticket": reference}),
        {})

    assert only_text(dispatcher) == f"同事已关闭您的工单{reference}；如果您还需要帮助，随时告诉我。"


async def test_the_handoff_timeout_in_chinese(services, dispatcher, zh_tracker) -> None:
    reference = await open_ticket(services)

    await ActionHandoffTimeout(services).run(dispatcher, external(
        zh_tracker, "EXTERNAL_handoff_timeout", reference,
        {"handoff": True, "ticket": reference}), {})

    assert only_text(dispatcher).startswith(f"抱歉，目前还没有同事能回复您。您的工单{reference}")


async def test_the_rating_answer_in_chinese(services, zh_tracker) -> None:
    reference = await open_ticket(services)
    await services.backend.close_ticket(reference)
    said = []
    for value in ("4", "4"):  # the second time there is nothing to rate
        dispatcher = CollectingDispatcher()
        await ActionStoreSatisfaction(services).run(dispatcher, zh_tracker(
            {"ticket": reference}, intent="rate_support",
            entities=[{"entity": "rating", "value": value}]), {})
        said += texts(dispatcher)

    assert said == ["感谢您的评价！还有什么可以帮您的吗？",
                    "谢谢！目前没有需要评价的服务。请问有什么可以帮您？"]


async def test_back_to_the_bot_in_chinese(services, zh_tracker) -> None:
    reference = await open_ticket(services)
    said = []
    for slots in ({"handoff": True, "ticket": reference}, {}):
        dispatcher = CollectingDispatcher()
        await ActionContinueWithBot(services).run(dispatcher, zh_tracker(
            slots, events=[user_event("算了，我还是跟机器人聊吧")]), {})
        said += texts(dispatcher)

    assert said == [f"好的，接下来由我继续为您服务。您的工单{reference}仍保持开启，"
                    "同事可能还会跟进。请问有什么可以帮您？",
                    "好的，我在。请问有什么可以帮您？"]


async def test_english_customers_still_get_english(services, dispatcher, make_tracker) -> None:
    await ActionHandleOrderRequest(services).run(
        dispatcher, make_tracker({"order_id": "12345", "language": "en"}), {})

    assert only_text(dispatcher) == ("Order 12345 (wireless headphones) has shipped with DHL "
                                     "and should arrive on 2026-12-03.")
