"""Hypothesis: both components' ``process`` take any text and keep their contract."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message

from tests.nlu_components.conftest import CASES, intent_training_data

TEXTS = st.text(max_size=300) | st.text(
    st.characters(codec="utf-8", categories=["Cc", "Cf", "Zs", "So", "Lo"]), max_size=100)


@pytest.fixture(scope="module", params=CASES, ids=[case.name for case in CASES])
def component(request, tmp_path_factory):
    from rasa.engine.graph import ExecutionContext, GraphSchema

    case = request.param
    storage_dir = tmp_path_factory.mktemp("fuzz-storage")
    storage = LocalModelStorage(storage_dir)
    context = ExecutionContext(GraphSchema({}), "fuzz")
    artifact = request.getfixturevalue(case.artifact_fixture)
    config = case.component.get_default_config() | {"model_path": str(artifact),
                                                    "device": "cpu"}
    created = case.component.create(config, storage, Resource("fuzz"), context)
    created.train(intent_training_data())
    return case, case.component.load(config, storage, Resource("fuzz"), context)


@settings(max_examples=60, deadline=None)
@given(texts=st.lists(TEXTS, min_size=1, max_size=4))
def test_process_takes_any_text(component, texts: list[str]) -> None:
    case, loaded = component
    messages = loaded.process([Message(data={"text": text}) for text in texts])

    for message in messages:
        value = message.get(case.added_keys[0])
        name = value.get("name") or value.get("label")
        assert name in (*case.labels, "nlu_fallback")  # unsure: no guess
        assert math.isfinite(value["confidence"]) and 0.0 <= value["confidence"] <= 1.0
