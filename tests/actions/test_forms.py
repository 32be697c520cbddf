from __future__ import annotations

import pytest

from actions.forms import (
    ValidateAddressForm,
    ValidateCancelForm,
    ValidateOrderForm,
    address_problem,
)
from actions.services import parse_order_id
from tests.actions.conftest import texts


@pytest.mark.parametrize(
    ("text", "expected"),
    [("12345", "12345"), ("it's 48213, I think", "48213"), ("order no. 55120!", "55120"),
     ("1234", None), ("123456", None), ("12345 or 48213", None), ("12345 and 12345", "12345"),
     ("", None), (None, None), ("12345'; DROP TABLE orders;--", "12345")],
)
def test_parse_order_id(text, expected) -> None:
    assert parse_order_id(text) == expected


@pytest.mark.parametrize(
    ("value", "slots", "said"),
    [
        ("it's 12345", {"order_id": "12345"}, None),
        ("1234", {"order_id": None}, "exactly 5 digits"),
        # Not found: asked for proof like any other order, so nothing tells which
        # numbers exist (tests/actions/test_ownership.py).
        ("99999", {"order_id": "99999", "order_proof": None}, None),
    ],
)
async def test_order_form_validates_order_id(services, dispatcher, make_tracker, value, slots,
                                             said) -> None:
    result = await ValidateOrderForm(services).validate_order_id(
        value, dispatcher, make_tracker(), {})

    assert result == slots
    if said is None:
        assert texts(dispatcher) == []
    else:
        assert said in texts(dispatcher)[0]


@pytest.mark.parametrize(
    ("order_id", "slots"),
    [("48213", {"order_id": "48213"}),
     ("12345", {"order_id": "12345", "cancel_confirmed": False})],
)
async def test_cancel_form_skips_confirmation_for_shipped_orders(
        services, dispatcher, make_tracker, order_id, slots) -> None:
    result = await ValidateCancelForm(services).validate_order_id(
        order_id, dispatcher, make_tracker(), {})

    assert result == slots


async def test_address_form_refuses_shipped_orders(services, dispatcher, make_tracker) -> None:
    result = await ValidateAddressForm(services).validate_order_id(
        "12345", dispatcher, make_tracker(), {})

    assert result == {"order_id": None}
    assert "already left our warehouse" in texts(dispatcher)[0]


@pytest.mark.parametrize(
    ("address", "problem"),
    [("42 Oak Avenue, Leeds LS6 2AB", None), ("Keizersgracht 120, 1015 CW Amsterdam", None),
     ("short 1", "between 10 and 200"), ("x1" * 150, "between 10 and 200"),
     ("Somewhere over the rainbow", "house number"), ("1234567890 123", "street")],
)
def test_address_problem(address, problem) -> None:
    result = address_problem(address)

    assert (result is None) if problem is None else (problem in result)


async def test_address_is_normalised(services, dispatcher, make_tracker) -> None:
    result = await ValidateAddressForm(services).validate_new_address(
        "  42 Oak   Avenue,\nLeeds LS6 2AB ", dispatcher, make_tracker(), {})

    assert result == {"new_address": "42 Oak Avenue, Leeds LS6 2AB"}
