"""Factories for the components: model storage under tmp_path, training data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rasa.engine.graph import ExecutionContext, GraphComponent, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu_components import SentimentAnalyzer, TransformerIntentClassifier
from tests.conftest import synthetic_pairs


@pytest.fixture
def model_storage(tmp_path: Path) -> LocalModelStorage:
    (tmp_path / "storage").mkdir()
    return LocalModelStorage(tmp_path / "storage")


@pytest.fixture
def execution_context() -> ExecutionContext:
    return ExecutionContext(GraphSchema({}), "test-model")


def intent_training_data(per_label: int = 6) -> TrainingData:
    """Rasa training data with the tiny artifact's intents."""
    return TrainingData([Message(data={"text": text, "intent": label})
                         for text, label in synthetic_pairs(per_label)])


@dataclass
class ComponentCase:
    """How to build one component for the shared contract tests."""

    name: str
    component: type[GraphComponent]
    artifact_fixture: str
    added_keys: tuple[str, ...]
    labels: tuple[str, ...]


CASES = [
    ComponentCase("intent", TransformerIntentClassifier, "tiny_artifact",
                  ("intent", "intent_ranking"), ("greet", "order_status", "refund")),
    ComponentCase("sentiment", SentimentAnalyzer, "tiny_sentiment_artifact",
                  ("sentiment",), ("negative", "neutral", "positive")),
]


@pytest.fixture(params=CASES, ids=[case.name for case in CASES])
def case(request: pytest.FixtureRequest) -> ComponentCase:
    return request.param


@pytest.fixture
def build(model_storage: LocalModelStorage, execution_context: ExecutionContext,
          request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Factory: trains (stores) a component from an artifact, then loads it as Rasa does."""

    def build_component(case: ComponentCase, resource_name: str = "component",
                        **config: Any) -> GraphComponent:
        artifact = request.getfixturevalue(case.artifact_fixture)
        merged = case.component.get_default_config() | {"model_path": str(artifact),
                                                        "device": "cpu"} | config
        resource = Resource(resource_name)
        component = case.component.create(merged, model_storage, resource, execution_context)
        component.train(intent_training_data())
        return case.component.load(merged, model_storage, resource, execution_context)

    return build_component
