"""The async action server (rasa-sdk): ``rasa run actions --actions actions``.

torch and sentence-transformers stay off this import path: the FAQ encoder
imports them when the action server builds its services at start-up.
"""

from __future__ import annotations

from actions.answers import ActionAnswerFaq
from actions.complaints import ActionFileComplaint, ValidateComplaintForm
from actions.fallback import ActionHandleFallback
from actions.forms import ValidateAddressForm, ValidateCancelForm, ValidateOrderForm
from actions.handoff import ActionHandoff, ActionHandoffPending
from actions.orders import (
    ActionCancelOrder,
    ActionChangeAddress,
    ActionHandleOrderRequest,
    ActionProductAvailability,
)
from actions.payments import ActionPaymentTriage
from actions.privacy import install as _mask_personal_data_in_logs

# rasa-sdk has configured logging when it imports this package.
_mask_personal_data_in_logs()

__all__ = [
    "ActionAnswerFaq",
    "ActionCancelOrder",
    "ActionChangeAddress",
    "ActionFileComplaint",
    "ActionHandleFallback",
    "ActionHandleOrderRequest",
    "ActionHandoff",
    "ActionHandoffPending",
    "ActionPaymentTriage",
    "ActionProductAvailability",
    "ValidateAddressForm",
    "ValidateCancelForm",
    "ValidateComplaintForm",
    "ValidateOrderForm",
]
