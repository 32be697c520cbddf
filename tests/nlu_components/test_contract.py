"""The contract every classifier component keeps (parametrised over all of them)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.training_data.message import Message

from tests.nlu_components.conftest import ComponentCase

ROOT = Path(__file__).resolve().parents[2]

AWKWARD_TEXTS = ["", "   \t\n", "😡😡😡 📦?!", "我的订单在哪里", "¿Dónde está mi pedido?",
                 "أين طلبي", "x" * 50_000, "order " * 10_000]


def _messages(texts: list[str]) -> list[Message]:
    return [Message(data={"text": text}) for text in texts]


def _output(message: Message, keys: tuple[str, ...]) -> dict:
    return {key: message.get(key) for key in keys}


def test_adds_its_keys_and_removes_nothing(case: ComponentCase, build) -> None:
    component = build(case)
    entities = [{"entity": "order_id", "value": "12345", "start": 0, "end": 5}]
    message = Message(data={"text": "where is my order 12345", "entities": entities,
                            "custom": {"keep": True}})

    [processed] = component.process([message])

    assert processed.get("entities") == entities
    assert processed.get("custom") == {"keep": True}
    for key in case.added_keys:
        assert processed.get(key) is not None
    # add_to_output: the keys reach /model/parse and tracker.latest_message.
    assert set(case.added_keys) <= set(processed.as_dict_nlu())


def test_output_is_plain_json_with_sorted_scores(case: ComponentCase, build) -> None:
    component = build(case)

    [message] = component.process(_messages(["refund my money please"]))
    output = _output(message, case.added_keys)

    assert json.loads(json.dumps(output)) == output  # plain floats and strings only
    if case.name == "intent":
        ranking = [entry["confidence"] for entry in output["intent_ranking"]]
        assert ranking == sorted(ranking, reverse=True)
        assert output["intent"]["name"] == output["intent_ranking"][0]["name"]
        # Unsure or out of scope: Rasa's fallback intent instead of a guess.
        assert output["intent"]["name"] in (*case.labels, "nlu_fallback")
    else:
        sentiment = output["sentiment"]
        assert set(sentiment) == {"label", "confidence", "scores", "score"}  # no intensity head
        assert sentiment["score"] == pytest.approx(
            sentiment["scores"]["positive"] - sentiment["scores"]["negative"], abs=1e-4)
        assert set(sentiment["scores"]) == set(case.labels)
        assert sentiment["confidence"] == max(sentiment["scores"].values())
        assert sum(sentiment["scores"].values()) == pytest.approx(1.0, abs=1e-5)


def test_persist_and_load_give_identical_predictions(case: ComponentCase, build) -> None:
    texts = ["hello there", "where is my order 1234", "terrible service", "great thanks"]
    first = build(case, resource_name="first")
    second = build(case, resource_name="second")

    outputs = [[_output(m, case.added_keys) for m in c.process(_messages(texts))]
               for c in (first, second)]

    assert outputs[0] == outputs[1]


def test_batches_match_single_messages(case: ComponentCase, build) -> None:
    component = build(case)
    texts = ["hello", "refund please now", "", "order 12345 status", "i love it"]

    batched = [_output(m, case.added_keys) for m in component.process(_messages(texts))]
    single = [_output(component.process(_messages([t]))[0], case.added_keys) for t in texts]

    for one, other in zip(batched, single):
        key = case.added_keys[0]
        assert one[key]["name" if key == "intent" else "label"] == \
            other[key]["name" if key == "intent" else "label"]


@pytest.mark.parametrize("text", AWKWARD_TEXTS, ids=range(len(AWKWARD_TEXTS)))
def test_awkward_text_never_raises(case: ComponentCase, build, text: str) -> None:
    [message] = build(case).process(_messages([text]))

    assert all(message.get(key) is not None for key in case.added_keys)


def test_no_messages(case: ComponentCase, build) -> None:
    assert build(case).process([]) == []


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"device": "tpu"}, "'device: 'tpu'' is invalid; use auto, cpu or cuda"),
        ({"predict_batch_size": 0}, "'predict_batch_size: 0' is invalid"),
        ({"predict_batch_size": "8"}, "give a whole number"),
        ({"batch_sise": 8}, "unknown option\\(s\\) batch_sise"),
        ({"backend": "tensorrt"}, "'backend: 'tensorrt'' is invalid; use one of auto, onnx, torch"),
        ({"num_threads": 0}, "'num_threads: 0' is invalid; use 1 or more"),
        ({"num_threads": "2"}, "'num_threads: '2'' is invalid"),
    ],
)
def test_bad_config_raises_invalid_config(case: ComponentCase, config: dict, message: str,
                                          model_storage, execution_context) -> None:
    from rasa.engine.storage.resource import Resource

    merged = case.component.get_default_config() | config
    with pytest.raises(InvalidConfigException, match=message):
        case.component.create(merged, model_storage, Resource("x"), execution_context)


def test_missing_artifact_is_a_config_error(case: ComponentCase, tmp_path: Path,
                                            model_storage, execution_context) -> None:
    from rasa.engine.storage.resource import Resource

    from tests.nlu_components.conftest import intent_training_data

    config = case.component.get_default_config() | {"model_path": str(tmp_path / "none")}
    component = case.component.create(config, model_storage, Resource("x"), execution_context)

    with pytest.raises(InvalidConfigException, match="classifier.json is missing"):
        component.train(intent_training_data())


def test_fingerprint_follows_the_artifact_content(case: ComponentCase, request,
                                                  tmp_path: Path) -> None:
    import shutil

    source = request.getfixturevalue(case.artifact_fixture)
    copy = Path(shutil.copytree(source, tmp_path / "artifact"))
    config = {"model_path": str(copy)}

    before = case.component.fingerprint_addon(config)
    assert case.component.fingerprint_addon(config) == before
    head = copy / "classifier_head.safetensors"
    head.write_bytes(head.read_bytes()[:-4] + b"\0\0\0\1")

    assert case.component.fingerprint_addon(config) != before


def test_importing_components_and_actions_loads_no_torch() -> None:
    code = ("import sys, nlu_components, actions; "
            "heavy = {'torch', 'transformers'} & set(sys.modules); "
            "print(sorted(heavy)); sys.exit(bool(heavy))")
    process = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                             text=True, timeout=300)

    assert process.returncode == 0, process.stdout + process.stderr


@pytest.mark.parametrize(("backend", "expected"), [("auto", "onnx"), ("onnx", "onnx"),
                                                   ("torch", "torch")])
def test_serving_backend(case: ComponentCase, build, backend: str, expected: str) -> None:
    component = build(case, resource_name=f"component-{backend}", backend=backend)

    assert component._predictor.backend == expected
    [message] = component.process([Message(data={"text": "where is my order 1234"})])
    added = message.get(case.added_keys[0])
    assert added  # the ONNX path sets the same keys as the torch one


@pytest.mark.parametrize("backend", ["auto", "onnx"])
def test_only_the_auto_backend_stores_the_pytorch_weights(case: ComponentCase, build,
                                                           model_storage, backend: str) -> None:
    build(case, resource_name=f"weights-{backend}", backend=backend)
    stored = Path(model_storage._storage_path) / f"weights-{backend}"

    assert (stored / "onnx" / "model.int8.onnx").is_file()
    assert (stored / "model.safetensors").is_file() == (backend == "auto")


def test_onnx_and_torch_agree_on_labels(case: ComponentCase, build) -> None:
    texts = ["where is my order 1234", "refund please 55", "hello there 9", "i am angry 3",
             "great thanks 8"]
    labels = {}
    for backend in ("onnx", "torch"):
        component = build(case, resource_name=f"agree-{backend}", backend=backend)
        messages = component.process([Message(data={"text": text}) for text in texts])
        key = case.added_keys[0]
        labels[backend] = [(m.get(key) or {}).get("name") or (m.get(key) or {}).get("label")
                           for m in messages]

    assert labels["onnx"] == labels["torch"]


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


def _other_task(directory: Path) -> None:
    info = json.loads((directory / "classifier.json").read_text())
    info["task"] = "sentiment" if info["task"] == "intent" else "intent"
    (directory / "classifier.json").write_text(json.dumps(info))


# What can be wrong with a stored artifact at `rasa run`, and what the refusal names.
BROKEN_ARTIFACTS = {
    "classifier.json missing": (lambda d: (d / "classifier.json").unlink(), "classifier.json"),
    "classifier.json truncated": (lambda d: _truncate(d / "classifier.json"), "classifier.json"),
    "ONNX model truncated": (lambda d: _truncate(d / "onnx" / "model.int8.onnx"),
                             "model.int8.onnx"),
    "tokenizer truncated": (lambda d: _truncate(d / "tokenizer.json"), "tokenizer"),
    "model of the other task": (_other_task, "classifier, not a"),
}


@pytest.mark.parametrize("broken", sorted(BROKEN_ARTIFACTS))
@pytest.mark.parametrize("backend", ["auto", "torch"])
def test_a_broken_stored_model_refuses_to_serve(case: ComponentCase, build, model_storage,
                                                execution_context, broken: str,
                                                backend: str) -> None:
    from rasa.engine.storage.resource import Resource

    from nlu_components._shared import ModelRefused

    build(case, resource_name="stored", backend=backend)
    damage, names = BROKEN_ARTIFACTS[broken]
    if backend == "torch" and "ONNX" in broken:
        damage, names = (lambda d: _truncate(d / "model.safetensors")), "model.safetensors"
    damage(Path(model_storage._storage_path) / "stored")
    config = case.component.get_default_config() | {"device": "cpu", "backend": backend}

    # A SystemExit: Rasa's load_agent would swallow any Exception and serve without a model.
    with pytest.raises(ModelRefused, match=names) as refused:
        case.component.load(config, model_storage, Resource("stored"), execution_context)
    assert not isinstance(refused.value, Exception)
    assert "rasa train" in str(refused.value) and "components/stored" in str(refused.value)


def test_a_model_without_the_component_refuses_to_serve(case: ComponentCase, model_storage,
                                                        execution_context) -> None:
    from rasa.engine.storage.resource import Resource

    from nlu_components._shared import ModelRefused

    with pytest.raises(ModelRefused, match="components/never-stored"):
        case.component.load(case.component.get_default_config(), model_storage,
                            Resource("never-stored"), execution_context)
