"""The async action server (rasa-sdk): ``python -m actions`` (see ``__main__``).

torch and sentence-transformers stay off this import path: the FAQ encoder
imports them when the action server builds its services at start-up. Importing
the package changes no process-wide state: log masking is installed by the
start-up hook, ``actions.startup.install``.
"""

from __future__ import annotations

from actions.answers import ActionAnswerFaq
from actions.complaints import ActionFileComplaint, ValidateComplaintForm
from actions.fallback import ActionHandleFallback
from actions.forms import ValidateAddressForm, ValidateCancelForm, ValidateOrderForm
from actions.handoff import (
    ActionContinueWithBot,
    ActionHandoff,
    ActionHandoffPending,
    ActionHandoffTimeout,
    ActionReleaseHandoff,
    ActionStoreSatisfaction,
)
from actions.orders import (
    ActionCancelOrder,
    ActionChangeAddress,
    ActionHandleOrderRequest,
    ActionProductAvailability,
)
from actions.payments import ActionPaymentTriage
from actions.session import ActionSessionStart

__all__ = [
    "ActionAnswerFaq",
    "ActionCancelOrder",
    "ActionChangeAddress",
    "ActionContinueWithBot",
    "ActionFileComplaint",
    "ActionHandleFallback",
    "ActionHandleOrderRequest",
    "ActionHandoff",
    "ActionHandoffPending",
    "ActionHandoffTimeout",
    "ActionPaymentTriage",
    "ActionProductAvailability",
    "ActionReleaseHandoff",
    "ActionStoreSatisfaction",
    "ActionSessionStart",
    "ValidateAddressForm",
    "ValidateCancelForm",
    "ValidateComplaintForm",
    "ValidateOrderForm",
]
