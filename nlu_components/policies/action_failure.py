"""Tells the customer when a custom action failed, instead of going silent.

When the action server is down, answers 500 or takes longer than its timeout,
Rasa 3.6 logs the error, records the action as executed with no events and
carries on: the customer gets no answer at all. This policy notices exactly
that state (``failed_action``: the conversation's last event is a custom
action or form that produced nothing) and predicts a response such as
"Sorry, I couldn't finish that just now", then ``action_listen``. Nothing is
lost: the tracker keeps the user's message, and the next message is handled
normally.

Its ``action_timeout`` also bounds how long Rasa waits for the action server.
Rasa 3.6 waits five minutes (``rasa.core.constants.DEFAULT_REQUEST_TIMEOUT``,
which endpoints.yml cannot change); the Rasa server's start-up hook
(``nlu_components.startup.install``, run by ``python -m bot.serve``) reads this
option from ``config.yml`` and replaces that wait for the whole process, so a
hung action server costs the customer seconds, not minutes.

Every custom action of the domain must say something or set something when it
succeeds; list those that may legitimately end with no events in
``quiet_actions``. ``validate_*`` actions are never judged: forms call them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rasa.core.policies.policy import PolicyPrediction
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, Event
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker

from nlu_components import _shared
from nlu_components.policies.base import ConfiguredPolicy

logger = logging.getLogger(__name__)

NAME = "ActionFailurePolicy"
# Upper bound for action_timeout: Rasa's own wait.
RASA_ACTION_TIMEOUT = 300


@dataclass(frozen=True)
class ActionFailureConfig:
    """The policy's options.

    Attributes:
        response: What the customer hears when an action failed (a domain
            response, so it needs no action server).
        action_timeout: Seconds Rasa waits for the action server (Rasa 3.6
            itself: 300); applied by the start-up hook.
        quiet_actions: Custom actions that may succeed without any event; not judged.
        priority: Above SentimentEscalationPolicy (7) and RulePolicy (6), so a
            failed hand-over is reported too.
    """

    response: str = "utter_action_failed"
    action_timeout: float = 20.0
    quiet_actions: tuple[str, ...] = ()
    priority: int = 8

    def __post_init__(self) -> None:
        _shared.check_type(NAME, "response", self.response, str,
                           "give the name of a response in domain.yml")
        if not self.response.startswith("utter_"):
            raise _shared.invalid(NAME, "response", self.response,
                                  "give a response (utter_...), which Rasa can say "
                                  "without the action server")
        timeout = _shared.to_number(NAME, "action_timeout", self.action_timeout)
        if not 0 < timeout <= RASA_ACTION_TIMEOUT:
            raise _shared.invalid(NAME, "action_timeout", self.action_timeout,
                                  f"give seconds above 0 and at most {RASA_ACTION_TIMEOUT}")
        object.__setattr__(self, "action_timeout", timeout)
        if not isinstance(self.quiet_actions, (list, tuple)) or not all(
                isinstance(action, str) for action in self.quiet_actions):
            raise _shared.invalid(NAME, "quiet_actions", self.quiet_actions,
                                  "give a list of action names")
        object.__setattr__(self, "quiet_actions", tuple(self.quiet_actions))
        _shared.check_type(NAME, "priority", self.priority, int, "give a whole number")


def judged_actions(user_actions: Iterable[str], forms: Iterable[str],
                   quiet_actions: Sequence[str]) -> frozenset[str]:
    """The custom actions and forms that always produce events when they succeed."""
    custom = {action for action in user_actions
              if not action.startswith("utter_") and not action.startswith("validate_")}
    return frozenset((custom | set(forms)) - set(quiet_actions))


def failed_action(events: Sequence[Event], judged: frozenset[str]) -> str | None:
    """The action that just failed, if the last event says one did.

    Rasa records a failed custom action as ``ActionExecuted`` followed by
    nothing; a successful one is followed by its ``BotUttered``/``SlotSet``/...
    events before the next prediction. Only actions that a policy predicted
    count (their ``ActionExecuted`` names the policy); an action run through
    the ``/execute`` API has none.
    """
    if not events:
        return None
    last = events[-1]
    if (isinstance(last, ActionExecuted) and last.action_name in judged
            and last.policy is not None):
        return last.action_name
    return None


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT,
                          is_trainable=True)
class ActionFailurePolicy(ConfiguredPolicy):
    """Answers with ``response`` when a custom action failed (see module doc)."""

    NAME = NAME
    CONFIG = ActionFailureConfig

    def train(self, training_trackers: list[TrackerWithCachedStates], domain: Domain,
              **kwargs: Any) -> Resource:
        """Nothing to learn; checks that the domain has the response."""
        self._check_domain(domain, actions=("response",))
        return self._resource

    def predict_action_probabilities(self, tracker: DialogueStateTracker, domain: Domain,
                                     rule_only_data: dict[str, Any] | None = None,
                                     **kwargs: Any) -> PolicyPrediction:
        """``response`` after a failed action, ``action_listen`` after it, else abstains."""
        if tracker.sender_source:
            # A story replayed by `rasa test` (its tracker names the story file): its
            # custom actions never ran, so they have no events to judge.
            return self._abstain(domain)
        if tracker.latest_action_name == self.settings.response:
            return self._one_hot(domain, ACTION_LISTEN_NAME)
        judged = judged_actions(domain.user_actions, domain.form_names,
                                self.settings.quiet_actions)
        failed = failed_action(tracker.events, judged)
        if failed is None:
            return self._abstain(domain)
        logger.warning("%s ended without result in conversation %s; telling the customer",
                       failed, tracker.sender_id)
        return self._one_hot(domain, self.settings.response)
