"""Escalates to a human when the customer's mood says so, whatever the intent.

A dialogue policy, because the decision needs every user turn's sentiment and
must win over rules and forms: rules can't express "after any message whose
sentiment is ...". After each user message it reads the ``sentiment`` that
``SentimentAnalyzer`` put on the conversation's user turns and, following
``actions.escalation.escalation_reason``:

- predicts ``action_handoff`` (with ``escalation_reason`` set) when the latest
  turn is negative with a sentiment intensity of at least ``strong_intensity``,
  or the last ``negative_turns`` turns were negative;
- predicts ``action_handoff_pending`` for every message once ``handoff`` is set,
  so the bot stops self-serving after a hand-over;
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
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
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

from actions.escalation import escalation_reason, sentiment_turn
from actions.exceptions import SettingsError
from actions.settings import STRONG_INTENSITY, EscalationRules
from nlu_components import _shared
from nlu_components._policy import ConfiguredPolicy

logger = logging.getLogger(__name__)

NAME = "SentimentEscalationPolicy"
_CONTROL_INTENTS = frozenset({USER_INTENT_RESTART, USER_INTENT_BACK, USER_INTENT_SESSION_START})


@dataclass(frozen=True)
class EscalationConfig:
    """The policy's options (see ``get_default_config`` for their meaning)."""

    strong_intensity: float = STRONG_INTENSITY
    negative_score: float = 0.5
    negative_turns: int = 3
    handoff_action: str = "action_handoff"
    pending_action: str = "action_handoff_pending"
    handoff_slot: str = "handoff"
    reason_slot: str = "escalation_reason"
    skip_intents: tuple[str, ...] = ("request_human", "complaint")
    priority: int = 7

    def __post_init__(self) -> None:
        if not isinstance(self.skip_intents, (list, tuple)) or not all(
                isinstance(intent, str) for intent in self.skip_intents):
            raise _shared.invalid(NAME, "skip_intents", self.skip_intents,
                                  "give a list of intent names")
        object.__setattr__(self, "skip_intents", tuple(self.skip_intents))
        for key in ("handoff_action", "pending_action", "handoff_slot", "reason_slot"):
            _shared.check_type(NAME, key, getattr(self, key), str, "give a name from the domain")
        _shared.check_type(NAME, "priority", self.priority, int, "give a whole number")
        _shared.check_type(NAME, "negative_turns", self.negative_turns, int,
                           "give a whole number of turns, 1 or more")
        for key in ("strong_intensity", "negative_score"):
            _shared.to_number(NAME, key, getattr(self, key))
        try:
            self.rules()
        except SettingsError as error:
            key, _, fix = str(error).partition(": ")
            name, _, value = key.partition("=")
            raise _shared.invalid(NAME, name, value, fix) from None

    def rules(self) -> EscalationRules:
        """The thresholds as the action server's rules."""
        return EscalationRules(strong_intensity=float(self.strong_intensity),
                               negative_score=float(self.negative_score),
                               negative_turns=self.negative_turns)


def session_history(tracker: DialogueStateTracker) -> list[dict[str, Any]]:
    """``sentiment_turn`` of every user message since the session started."""
    history: list[dict[str, Any]] = []
    for event in tracker.events:
        if isinstance(event, SessionStarted):
            history.clear()
        elif isinstance(event, UserUttered):
            history.append(sentiment_turn(event.parse_data, event.text or ""))
    return history


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT,
                          is_trainable=True)
class SentimentEscalationPolicy(ConfiguredPolicy):
    """Hands the conversation to a human when sentiment rules fire (see module doc)."""

    NAME = NAME
    CONFIG = EscalationConfig

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            # One negative turn with at least this calibrated sentiment intensity
            # (0 neutral .. 1 furious) escalates at once; measured on the shipped
            # model (benchmarks/results/sentiment_v2.json).
            "strong_intensity": STRONG_INTENSITY,
            # A turn counts as negative (label negative) from this negative score.
            "negative_score": 0.5,
            # This many negative user turns in a row escalate.
            "negative_turns": 3,
            # The domain's hand-over action, and the one for messages after it.
            "handoff_action": "action_handoff",
            "pending_action": "action_handoff_pending",
            # Bool slot set by the hand-over; categorical slot this policy fills.
            "handoff_slot": "handoff",
            "reason_slot": "escalation_reason",
            # Intents whose own flow already ends with a person (the complaint
            # form files a ticket): no escalation on these.
            "skip_intents": ["request_human", "complaint"],
            # Above RulePolicy (6), so an escalation wins over rules and forms.
            "priority": 7,
        }

    def __init__(self, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
                 execution_context: ExecutionContext, featurizer: Any = None) -> None:
        super().__init__(config, model_storage, resource, execution_context, featurizer)
        self._rules = self.settings.rules()

    def train(self, training_trackers: list[TrackerWithCachedStates], domain: Domain,
              **kwargs: Any) -> Resource:
        """Nothing to learn; checks the domain has the actions and slots it needs."""
        for action in (self.settings.handoff_action, self.settings.pending_action):
            if action not in domain.action_names_or_texts:
                raise _shared.invalid(NAME, "handoff_action" if action ==
                                      self.settings.handoff_action else "pending_action",
                                      action, "add the action to domain.yml")
        for key in ("handoff_slot", "reason_slot"):
            slot = getattr(self.settings, key)
            if slot not in {s.name for s in domain.slots}:
                raise _shared.invalid(NAME, key, slot, "add the slot to domain.yml")
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
            return self._one_hot(domain, self.settings.pending_action)
        if tracker.latest_message.intent.get("name") in self.settings.skip_intents:
            return abstain
        reason = escalation_reason(session_history(tracker), self._rules)
        if reason is None:
            return abstain
        logger.info("escalating conversation %s: %s", tracker.sender_id, reason)
        return self._one_hot(domain, self.settings.handoff_action,
                             events=[SlotSet(self.settings.reason_slot, reason)])
