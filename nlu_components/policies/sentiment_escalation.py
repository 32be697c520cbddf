"""Escalates to a human when the customer's mood says so, whatever the intent.

A dialogue policy, because the decision needs every user turn's sentiment and
must win over rules and forms: rules can't express "after any message whose
sentiment is ...". After each user message it reads the ``sentiment`` that
``SentimentAnalyzer`` put on the conversation's user turns and, following
``cs_core.escalation.escalation_reason`` (the rules the action server's
ticket priorities use too):

- predicts ``action_handoff`` (with ``escalation_reason`` set) when the latest
  turn is negative with a sentiment intensity of at least ``strong_intensity``,
  or the last ``negative_turns`` turns were negative;
- predicts ``action_handoff_pending`` for every message once ``handoff`` is set,
  so the bot stops self-serving after a hand-over; except the messages that end
  a hand-over: the ``release_intents`` (the customer's ``continue_with_bot``)
  and Rasa's external events (``EXTERNAL_...`` intents: the ticket closed
  through the HTTP API, the hand-over's timeout reminder), left to the rules;
- predicts ``action_listen`` right after either of its actions;
- otherwise abstains (all zeros), leaving the turn to the other policies.

Its predictions have priority 7, above RulePolicy's 6, and are marked as not
depending on the user's intent so that they also interrupt an active form.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from rasa.core.policies.policy import PolicyPrediction
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.shared.core.constants import (
    ACTION_LISTEN_NAME,
    USER_INTENT_BACK,
    USER_INTENT_RESTART,
    USER_INTENT_SESSION_START,
)
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SessionStarted, SlotSet, UserUttered
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker

from cs_core.errors import InvalidRule
from cs_core.escalation import EscalationRules, escalation_reason, sentiment_history
from nlu_components import _shared
from nlu_components.policies.base import ConfiguredPolicy

logger = logging.getLogger(__name__)

NAME = "SentimentEscalationPolicy"
_CONTROL_INTENTS = frozenset({USER_INTENT_RESTART, USER_INTENT_BACK, USER_INTENT_SESSION_START})
# Rasa's naming convention for intents of external events (trigger_intent, reminders).
EXTERNAL_INTENT_PREFIX = "EXTERNAL_"


@dataclass(frozen=True)
class EscalationConfig:
    """The policy's options.

    Attributes:
        strong_intensity: One negative turn with at least this calibrated sentiment
            intensity (0 neutral .. 1 furious) escalates at once; measured on the
            shipped model (benchmarks/results/sentiment_v2.json).
        negative_score: A turn counts as negative (label negative) from this score.
        negative_turns: This many negative user turns in a row escalate.
        handoff_action: The domain's hand-over action.
        pending_action: The action for every message after a hand-over.
        handoff_slot: Bool slot set by the hand-over.
        reason_slot: Categorical slot this policy fills with the reason.
        skip_intents: Intents whose own flow already ends with a person (the
            complaint form files a ticket): no escalation on these.
        release_intents: Intents that end a hand-over (their rules run instead of
            ``pending_action`` while ``handoff`` is set), besides Rasa's
            ``EXTERNAL_...`` intents, which always do.
        priority: Above RulePolicy (6), so an escalation wins over rules and forms.

    The three thresholds' defaults are ``cs_core.escalation.EscalationRules``',
    their one home; the action server reads this policy's values from
    ``config.yml`` for ticket priorities.
    """

    strong_intensity: float = EscalationRules.strong_intensity
    negative_score: float = EscalationRules.negative_score
    negative_turns: int = EscalationRules.negative_turns
    handoff_action: str = "action_handoff"
    pending_action: str = "action_handoff_pending"
    handoff_slot: str = "handoff"
    reason_slot: str = "escalation_reason"
    skip_intents: tuple[str, ...] = ("request_human", "complaint")
    release_intents: tuple[str, ...] = ("continue_with_bot",)
    priority: int = 7

    def __post_init__(self) -> None:
        if not isinstance(self.skip_intents, (list, tuple)) or not all(
                isinstance(intent, str) for intent in self.skip_intents):
            raise _shared.invalid(NAME, "skip_intents", self.skip_intents,
                                  "give a list of intent names")
        object.__setattr__(self, "skip_intents", tuple(self.skip_intents))
        if not isinstance(self.release_intents, (list, tuple)) or not all(
                isinstance(intent, str) for intent in self.release_intents):
            raise _shared.invalid(NAME, "release_intents", self.release_intents,
                                  "give a list of intent names")
        object.__setattr__(self, "release_intents", tuple(self.release_intents))
        for key in ("handoff_action", "pending_action", "handoff_slot", "reason_slot"):
            _shared.check_type(NAME, key, getattr(self, key), str, "give a name from the domain")
        _shared.check_type(NAME, "priority", self.priority, int, "give a whole number")
        _shared.check_type(NAME, "negative_turns", self.negative_turns, int,
                           "give a whole number of turns, 1 or more")
        for key in ("strong_intensity", "negative_score"):
            _shared.to_number(NAME, key, getattr(self, key))
        try:
            self.rules()
        except InvalidRule as error:
            raise _shared.invalid(NAME, error.key, error.value, error.fix) from None

    def rules(self) -> EscalationRules:
        """The thresholds as the action server's rules."""
        return EscalationRules(strong_intensity=float(self.strong_intensity),
                               negative_score=float(self.negative_score),
                               negative_turns=self.negative_turns)


def session_history(tracker: DialogueStateTracker) -> list[dict[str, Any]]:
    """``cs_core.escalation.sentiment_history`` of a Rasa tracker's events."""
    return sentiment_history(
        {"event": "session_started"} if isinstance(event, SessionStarted) else
        {"event": "user", "parse_data": event.parse_data, "text": event.text}
        for event in tracker.events if isinstance(event, (SessionStarted, UserUttered)))


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT,
                          is_trainable=True)
class SentimentEscalationPolicy(ConfiguredPolicy):
    """Hands the conversation to a human when sentiment rules fire (see module doc)."""

    NAME = NAME
    CONFIG = EscalationConfig

    def train(self, training_trackers: list[TrackerWithCachedStates], domain: Domain,
              **kwargs: Any) -> Resource:
        """Nothing to learn; checks the domain has the actions and slots it needs."""
        self._check_domain(domain, actions=("handoff_action", "pending_action"),
                           slots=("handoff_slot", "reason_slot"))
        return self._resource

    def predict_action_probabilities(self, tracker: DialogueStateTracker, domain: Domain,
                                     rule_only_data: dict[str, Any] | None = None,
                                     **kwargs: Any) -> PolicyPrediction:
        """See the module docstring for what it predicts when."""
        abstain = self._abstain(domain)
        ours = {self.settings.handoff_action, self.settings.pending_action}
        latest = tracker.latest_action_name
        if latest in ours:
            return self._one_hot(domain, ACTION_LISTEN_NAME)
        if latest != ACTION_LISTEN_NAME or not isinstance(tracker.latest_message, UserUttered):
            return abstain
        if tracker.latest_message.intent.get("name") in _CONTROL_INTENTS:
            return abstain  # /restart, /back and /session_start keep working
        if tracker.get_slot(self.settings.handoff_slot):
            if self._ends_handoff(tracker.latest_message.intent.get("name")):
                return abstain  # the rules release the hand-over
            return self._one_hot(domain, self.settings.pending_action)
        if tracker.latest_message.intent.get("name") in self.settings.skip_intents:
            return abstain
        reason = escalation_reason(session_history(tracker), self.settings.rules())
        if reason is None:
            return abstain
        logger.info("escalating conversation %s: %s", tracker.sender_id, reason)
        return self._one_hot(domain, self.settings.handoff_action,
                             events=[SlotSet(self.settings.reason_slot, reason)])

    def _ends_handoff(self, intent: str | None) -> bool:
        """Whether ``intent`` ends a hand-over: a release intent or an external event."""
        return bool(intent) and (intent in self.settings.release_intents
                                 or intent.startswith(EXTERNAL_INTENT_PREFIX))
