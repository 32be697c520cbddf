from __future__ import annotations

import pytest

from actions.payments import ActionPaymentTriage, payment_issue
from tests.actions.conftest import texts


@pytest.mark.parametrize(
    ("text", "kind"),
    [("I was charged twice for the same order", "double_charge"),
     ("there's a duplicate payment on my statement", "double_charge"),
     ("money was taken from my account but I never got an order confirmation",
      "charged_no_order"),
     ("I paid but there's no confirmation email", "charged_no_order"),
     ("my card keeps getting declined at checkout", "declined"),
     ("the payment didn't go through", "declined"),
     ("PayPal says error when I try to pay", "declined"),
     ("I have a question about paying", "general"),
     ("", "general")])
def test_payment_issue(text: str, kind: str) -> None:
    assert payment_issue(text)[0] == kind


async def test_triage_gives_advice_then_offers_the_payments_team(dispatcher,
                                                                 make_tracker) -> None:
    tracker = make_tracker(intent="payment_problem", text="you charged me twice!")

    assert await ActionPaymentTriage().run(dispatcher, tracker, {}) == []

    advice, offer = texts(dispatcher)
    assert "pending authorisation" in advice
    assert offer == "utter_offer_payments_team"
