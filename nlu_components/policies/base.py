"""The base of this package's policies: they learn nothing and predict one action.

A subclass names its options' frozen dataclass (``CONFIG``, with a ``priority``
field) and its ``NAME``; the base derives ``get_default_config`` from the
dataclass, parses Rasa's merged config into ``self.settings`` at once and
builds the one-hot and abstaining predictions.
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

    @classmethod
    def get_default_config(cls) -> dict[str, Any]:
        """The options and their defaults: those of ``CONFIG`` (see its docstring)."""
        return _shared.default_config(cls.CONFIG)

    def __init__(self, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
                 execution_context: ExecutionContext, featurizer: Any = None) -> None:
        self.settings = _shared.parse_config(
            self.CONFIG, {k: v for k, v in config.items() if k != "featurizer"}, self.NAME)
        super().__init__(config, model_storage, resource, execution_context, featurizer)
        self.priority = self.settings.priority

    @classmethod
    def load(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> ConfiguredPolicy:
        """The policy for serving (nothing is stored: it is built from its config)."""
        _shared.warn_if_not_installed(cls.NAME)
        return super().load(config, model_storage, resource, execution_context, **kwargs)

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

    def _check_domain(self, domain: Domain, actions: tuple[str, ...] = (),
                      slots: tuple[str, ...] = ()) -> None:
        """Refuses a domain without the actions and slots named by these options."""
        for key in actions:
            name = getattr(self.settings, key)
            if name not in domain.action_names_or_texts:
                raise _shared.invalid(self.NAME, key, name, "add it to domain.yml")
        for key in slots:
            name = getattr(self.settings, key)
            if name not in {slot.name for slot in domain.slots}:
                raise _shared.invalid(self.NAME, key, name, "add the slot to domain.yml")
