"""Dialogue policies of the framework (Rasa ``POLICY`` components).

Named in ``config.yml``'s ``policies:`` as ``nlu_components.policies.<Name>``;
the earlier ``nlu_components.<Name>`` keeps working (see the README changelog).

- ``SentimentEscalationPolicy``: hands angry customers to a human
- ``ActionFailurePolicy``: answers when the action server failed
"""

from __future__ import annotations

from nlu_components.policies.action_failure import ActionFailurePolicy
from nlu_components.policies.sentiment_escalation import SentimentEscalationPolicy

__all__ = ["ActionFailurePolicy", "SentimentEscalationPolicy"]
