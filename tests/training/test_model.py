from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from training import artifact as artifact_module
from training import model as model_module
from training.artifact import ARTIFACT_FILE, HEAD_FILE, ArtifactInfo
from training.exceptions import ArtifactError, NotAModelError


@pytest.fixture
def artifact_copy(tiny_artifact: Path, tmp_path: Path) -> Path:
    """A writable copy of the session's tiny artifact."""
    return Path(shutil.copytree(tiny_artifact, tmp_path / "copy"))


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (None, "is not a directory"),
        ([], "has no config.json"),
        (["config.json"], "has no weights"),
    ],
)
def test_check_checkpoint_names_what_is_missing(tmp_path: Path, files, message) -> None:
    path = tmp_path / "checkpoint"
    if files is not None:
        path.mkdir()
        for name in files:
            (path / name).write_text("{}")

    with pytest.raises(NotAModelError, match=message):
        artifact_module.check_checkpoint(path)


def test_build_model_refuses_a_directory_that_is_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    (tmp_path / "model.safetensors").write_bytes(b"garbage")

    with pytest.raises(NotAModelError, match="cannot be loaded"):
        model_module.build_model(tmp_path, 3)


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_pooling_ignores_padding(tiny_checkpoint: Path, pooling: str) -> None:
    classifier, _ = model_module.build_model(tiny_checkpoint, 2, pooling=pooling)
    hidden = torch.tensor([[[1.0, 1.0], [3.0, 3.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])

    pooled = classifier.pool(hidden, mask)

    expected = [[2.0, 2.0]] if pooling == "mean" else [[1.0, 1.0]]
    assert pooled.tolist() == expected


def test_class_weights_change_the_loss(tiny_checkpoint: Path) -> None:
    classifier, tokenizer = model_module.build_model(tiny_checkpoint, 2)
    classifier.eval()
    batch = tokenizer(["hello", "refund"], padding=True, return_tensors="pt")
    labels = torch.tensor([0, 1])

    plain = classifier(**batch, labels=labels)["loss"]
    classifier.set_class_weights(torch.tensor([10.0, 0.1]))
    weighted = classifier(**batch, labels=labels)["loss"]

    assert not torch.isclose(plain, weighted)
    assert "loss_weights" not in classifier.state_dict()


def test_artifact_round_trip_gives_identical_outputs(tiny_artifact: Path) -> None:
    first, tokenizer, info = model_module.load_artifact(tiny_artifact)
    second, _, _ = model_module.load_artifact(tiny_artifact)
    batch = tokenizer(["where is my order 1234", "hello"], padding=True, return_tensors="pt")

    with torch.inference_mode():
        assert torch.equal(first(**batch)["logits"], second(**batch)["logits"])
    assert info.task == "intent"
    assert info.labels == ["greet", "order_status", "refund"]
    assert not first.training


def test_artifact_json_records_the_contract(tiny_artifact: Path) -> None:
    data = json.loads((tiny_artifact / ARTIFACT_FILE).read_text())

    assert data["max_length"] == 32
    assert data["format_version"] == artifact_module.FORMAT_VERSION
    assert len(data["data_fingerprint"]) == 64
    assert set(data["versions"]) == {"python", "torch", "transformers"}
    assert data["training_arguments"]["learning_rate"] == 3e-3
    assert "validation" in data["metrics"]
    # The encoder's own config carries the labels too, for plain Hugging Face users.
    config = json.loads((tiny_artifact / "config.json").read_text())
    assert config["id2label"] == {"0": "greet", "1": "order_status", "2": "refund"}


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / ARTIFACT_FILE).unlink(), "classifier.json is missing"),
        (lambda d: (d / ARTIFACT_FILE).write_text("{trunc"), "is not valid JSON"),
        (lambda d: (d / ARTIFACT_FILE).write_text('{"task": "intent"}'),
         "lacks labels, max_length"),
        (lambda d: (d / HEAD_FILE).unlink(), "classifier_head.safetensors is missing"),
        (lambda d: (d / HEAD_FILE).write_bytes((d / HEAD_FILE).read_bytes()[:40]),
         "cannot be loaded"),
        (lambda d: (d / "model.safetensors").write_bytes(b"\0" * 10), "cannot be loaded"),
        (lambda d: (d / "model.safetensors").unlink(), "has no weights"),
    ],
)
def test_damaged_artifacts_are_refused_with_the_file_named(artifact_copy: Path, damage,
                                                           message: str) -> None:
    damage(artifact_copy)

    with pytest.raises(ArtifactError, match=message):
        model_module.load_artifact(artifact_copy)


def test_wrong_kind_of_artifact_is_refused(tiny_artifact: Path) -> None:
    with pytest.raises(ArtifactError, match="holds a intent classifier, not a sentiment one"):
        model_module.load_artifact(tiny_artifact, expected_task="sentiment")


def test_newer_format_asks_for_an_upgrade(artifact_copy: Path) -> None:
    info = ArtifactInfo.read(artifact_copy)
    data = json.loads((artifact_copy / ARTIFACT_FILE).read_text())
    data["format_version"] = info.format_version + 1
    (artifact_copy / ARTIFACT_FILE).write_text(json.dumps(data))

    with pytest.raises(ArtifactError, match="upgrade the project"):
        ArtifactInfo.read(artifact_copy)


def test_head_for_another_label_count_is_refused(artifact_copy: Path) -> None:
    data = json.loads((artifact_copy / ARTIFACT_FILE).read_text())
    data["labels"] = data["labels"] + ["extra"]
    (artifact_copy / ARTIFACT_FILE).write_text(json.dumps(data))

    with pytest.raises(ArtifactError, match="does not match 4 labels"):
        model_module.load_artifact(artifact_copy)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_label_smoothing_changes_the_loss_as_cross_entropy_does(tiny_checkpoint, smoothing) -> None:
    import torch

    from training.model import build_model

    model, tokenizer = build_model(tiny_checkpoint, num_labels=3)
    model.eval()
    model.label_smoothing = smoothing
    batch = tokenizer(["hello there", "refund please"], return_tensors="pt", padding=True)
    labels = torch.tensor([0, 2])

    output = model(**batch, labels=labels)

    expected = torch.nn.functional.cross_entropy(output["logits"].float(), labels,
                                                 label_smoothing=smoothing)
    assert torch.allclose(output["loss"], expected)


# Sharing frozen word embeddings with the base checkpoint (a shipped artifact that
# does not repeat 96M weights it never changed).


@pytest.fixture(scope="module")
def frozen_artifact(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny sentiment artifact trained with frozen word embeddings (read-only)."""
    from tests.conftest import SENTIMENT_TEMPLATES, TINY_TRAINING, synthetic_pairs
    from training.arguments import DataArguments, TrainArguments
    from training.trainer import ClassifierTrainer

    root = tmp_path_factory.mktemp("frozen")
    data = root / "train.csv"
    data.write_text("text,label\n" + "".join(
        f"{text},{label}\n" for text, label in synthetic_pairs(templates=SENTIMENT_TEMPLATES)))
    ClassifierTrainer(DataArguments(path=data, validation_split=0.2), TrainArguments(
        **TINY_TRAINING, output_dir=root / "artifact", base_model=str(tiny_checkpoint),
        task="sentiment", freeze_word_embeddings=True)).run()
    return root / "artifact"


@pytest.fixture
def shared_copy(frozen_artifact: Path, tiny_checkpoint: Path, tmp_path: Path
                ) -> tuple[Path, Path]:
    """A copy of ``frozen_artifact`` sharing its word embeddings with a copy of the base."""
    base = Path(shutil.copytree(tiny_checkpoint, tmp_path / "encoders" / "base"))
    shared = Path(shutil.copytree(frozen_artifact, tmp_path / "shared"))
    model_module.share_word_embeddings(shared, base)
    return shared, base


TEXTS = ["this is terrible 1000", "great thanks 1007", "where is my order 1014"]


def logits_of(directory: Path) -> torch.Tensor:
    model, tokenizer, _ = model_module.load_artifact(directory)
    with torch.no_grad():
        batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
        return model(batch["input_ids"], batch["attention_mask"])["logits"]


def test_a_shared_artifact_loads_to_the_same_model_without_the_matrix(
        frozen_artifact: Path, shared_copy: tuple[Path, Path]) -> None:
    from safetensors import safe_open

    shared, base = shared_copy
    with safe_open(str(shared / "model.safetensors"), framework="pt") as handle:
        stored = set(handle.keys())
    info = json.loads((shared / ARTIFACT_FILE).read_text())

    assert model_module.WORD_EMBEDDINGS not in stored
    assert info["shared_weights"][model_module.WORD_EMBEDDINGS]["from"] == "../encoders/base"
    assert torch.allclose(logits_of(shared), logits_of(frozen_artifact), atol=1e-6)


def test_trained_word_embeddings_are_not_shared(artifact_copy: Path,
                                                tiny_checkpoint: Path) -> None:
    # tiny_artifact was trained with its word embeddings (not frozen).
    with pytest.raises(ArtifactError, match="are not those of"):
        model_module.share_word_embeddings(artifact_copy, tiny_checkpoint)


def test_a_missing_base_is_named_with_how_to_build_it(shared_copy: tuple[Path, Path]) -> None:
    shared, base = shared_copy
    shutil.rmtree(base)

    with pytest.raises(ArtifactError, match="make multilingual-encoder"):
        model_module.load_artifact(shared)


def test_another_base_at_the_same_path_is_refused(shared_copy: tuple[Path, Path],
                                                   tmp_path: Path) -> None:
    from tests.conftest import save_tiny_bert

    shared, base = shared_copy
    shutil.rmtree(base)
    save_tiny_bert(base, seed=1)

    with pytest.raises(ArtifactError, match="SHA-256 differs"):
        model_module.load_artifact(shared)


def test_a_copy_with_the_shared_weights_included_stands_alone(
        frozen_artifact: Path, shared_copy: tuple[Path, Path], tmp_path: Path) -> None:
    shared, base = shared_copy
    stored = Path(shutil.copytree(shared, tmp_path / "rasa-model" / "component"))

    model_module.include_shared_weights(stored, shared)
    shutil.rmtree(base)

    assert json.loads((stored / ARTIFACT_FILE).read_text())["shared_weights"] == {}
    assert torch.allclose(logits_of(stored), logits_of(frozen_artifact), atol=1e-6)
