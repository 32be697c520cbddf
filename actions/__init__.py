"""The async action server (rasa-sdk): ``rasa run actions --actions actions``.

Torch and transformers stay off this import path: the action server only
reads the classifiers' output from the tracker.
"""

from __future__ import annotations

from actions.fallback import ActionHandleFallback
from actions.forms import ValidateAddressForm, ValidateCancelForm, ValidateOrderForm
from actions.handoff import ActionHandoff
from actions.orders import (
    ActionCancelOrder,
    ActionChangeAddress,
    ActionHandleOrderRequest,
    ActionProductAvailability,
)

__all__ = [
    "ActionCancelOrder",
    "ActionChangeAddress",
    "ActionHandleOrderRequest",
    "ActionHandleFallback",
    "ActionHandoff",
    "ActionProductAvailability",
    "ValidateAddressForm",
    "ValidateCancelForm",
    "ValidateOrderForm",
]
