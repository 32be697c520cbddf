"""The base of this package's policies: they learn nothing and predict one action.

A subclass names its options' frozen dataclass (``CONFIG``, with a ``priority``
field) and its ``NAME``; the base parses Rasa's merged config into
``self.settings`` at once and builds the one-hot and abstaining predictions.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rasa.core.policies.policy import Policy, PolicyPrediction, SupportedData
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import Event

from nlu_components import _shared


class ConfiguredPolicy(Policy):
    """A policy with typed options and no training (not registered itself)."""

    NAME: ClassVar[str]
    CONFIG: ClassVar[type]

    @staticmethod
    def supported_data() -> SupportedData:
        return SupportedData.ML_AND_RULE_DATA

    def __init__(self, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
                 execution_context: ExecutionContext, featurizer: Any = None) -> None:
        self.settings = _shared.parse_config(
            self.CONFIG, {k: v for k, v in config.items() if k != "featurizer"}, self.NAME)
        super().__init__(config, model_storage, resource, execution_context, featurizer)
        self.priority = self.settings.priority

    def _abstain(self, domain: Domain) -> PolicyPrediction:
        """All zeros: the turn is left to the other policies."""
        return self._prediction(self._default_predictions(domain))

    def _one_hot(self, domain: Domain, action: str,
                 events: list[Event] | None = None) -> PolicyPrediction:
        """``action`` with certainty, independent of the user's intent (so it also
        wins over an active form)."""
        probabilities = self._default_predictions(domain)
        probabilities[domain.index_for_action(action)] = 1.0
        return self._prediction(probabilities, optional_events=events,
                                is_no_user_prediction=True)
