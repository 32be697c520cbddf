from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from training import trainer as trainer_module
from training.data import LabelledTexts
from training.exceptions import DataError, OutputExistsError
from training.fitting import class_weights
from training.predict import Predictor


def test_train_save_load_predict_identically(train_tiny) -> None:
    result = train_tiny()
    trainer = result.trainer
    texts = ["where is my order 4321", "refund please", "hello", "no idea at all"]

    in_memory = Predictor(trainer.model, trainer.tokenizer, trainer.info, torch.device("cpu"))
    loaded = Predictor.load(result.output_dir, device="cpu")

    assert torch.allclose(in_memory.predict_proba(texts), loaded.predict_proba(texts), atol=1e-6)
    assert result.results["validation"]["accuracy"] >= 0.8
    assert set(result.step_seconds) == set(trainer_module.ClassifierTrainer.steps)
    written = json.loads((result.output_dir / "results.json").read_text())
    assert written["validation"]["confusion_matrix_png"] == "confusion_validation.png"
    assert (result.output_dir / "confusion_validation.png").is_file()


def test_training_is_reproducible_with_a_seed(train_tiny, tmp_path: Path) -> None:
    first = train_tiny(output_dir=tmp_path / "one", epochs=2)
    second = train_tiny(output_dir=tmp_path / "two", epochs=2)
    texts = ["where is my order 1", "hello"]

    assert torch.equal(Predictor.load(first.output_dir).predict_proba(texts),
                       Predictor.load(second.output_dir).predict_proba(texts))


def test_test_set_is_evaluated_and_written(train_tiny, write_csv) -> None:
    test = write_csv([("where is my order 9", "order_status"), ("hello you", "greet"),
                      ("refund it", "refund")], name="test.csv")

    result = train_tiny(data_options={"test_path": test})

    assert result.results["test"]["examples"] == 3
    assert result.info.metrics["test"]["accuracy"] == result.results["test"]["accuracy"]


def test_no_validation_split_trains_on_everything(train_tiny) -> None:
    result = train_tiny(epochs=1, data_options={"validation_split": 0.0})

    assert "validation" not in result.results
    assert result.output_dir.joinpath("classifier.json").is_file()


def test_class_weights_are_inverse_frequency() -> None:
    dataset = LabelledTexts(("a", "b", "c", "d"), ("x", "x", "x", "y"))

    weights = class_weights(dataset, ["x", "y"])

    assert weights.mean().item() == pytest.approx(1.0)
    assert weights[1] / weights[0] == pytest.approx(3.0)


def test_training_with_class_weights_runs(train_tiny) -> None:
    assert train_tiny(epochs=1, class_weights=True).results["validation"]["examples"] > 0


def test_sentiment_needs_its_label_vocabulary(train_tiny) -> None:
    with pytest.raises(DataError, match="--label-map"):
        train_tiny(task="sentiment")


def test_test_labels_unknown_to_training_are_refused(train_tiny, write_csv) -> None:
    test = write_csv([("bye", "goodbye")], name="test.csv")

    with pytest.raises(DataError, match="absent from training: goodbye"):
        train_tiny(data_options={"test_path": test})


def test_existing_output_needs_overwrite(train_tiny, tmp_path: Path) -> None:
    output = tmp_path / "out"
    output.mkdir()
    (output / "keep.txt").write_text("x")

    with pytest.raises(OutputExistsError, match="pass --overwrite"):
        train_tiny(output_dir=output)
    assert (output / "keep.txt").exists()

    train_tiny(output_dir=output, overwrite=True, epochs=1)
    assert not (output / "keep.txt").exists()


def test_steps_run_as_functions_of_their_inputs(write_csv, tmp_path: Path) -> None:
    from training.arguments import DataArguments, TrainArguments

    data_file = write_csv([(f"where is my order {i}", "order_status") for i in range(10)]
                          + [(f"hello there {i}", "greet") for i in range(10)])
    data_args = DataArguments(path=data_file, validation_split=0.2)
    args = TrainArguments(output_dir=tmp_path / "out", device="cpu")

    data = trainer_module.load_data(data_args, args)
    sets = trainer_module.split(data, validation_split=0.2, seed=args.seed)

    assert data.labels == ("greet", "order_status")
    assert len(sets.train) + len(sets.validation) == len(data.dataset) == 20
    assert set(sets.validation.labels) == {"greet", "order_status"}
    assert trainer_module.label_ids(data.labels, sets.validation).tolist() == [
        data.labels.index(label) for label in sets.validation.labels]
    info = trainer_module.describe(data_args, args, "base", data)
    assert info.training_arguments["data"] == data_args.to_dict()
    assert info.data_fingerprint == data.dataset.fingerprint()


def test_what_a_run_produced_is_there_only_after_it(tmp_path: Path) -> None:
    from training.arguments import DataArguments, TrainArguments

    trainer = trainer_module.ClassifierTrainer(
        DataArguments(path=tmp_path / "none.csv"),
        TrainArguments(output_dir=tmp_path / "out", base_model="unused", device="cpu"))

    with pytest.raises(RuntimeError, match=r"run\(\) has not finished"):
        trainer.predictor()
    with pytest.raises(RuntimeError, match=r"run\(\) has not finished"):
        _ = trainer.labels


def test_frozen_word_embeddings_stay_as_pretrained(train_tiny, tiny_checkpoint: Path) -> None:
    from transformers import AutoModel

    pretrained = AutoModel.from_pretrained(str(tiny_checkpoint))
    result = train_tiny(freeze_word_embeddings=True, epochs=2)
    trained = Predictor.load(result.output_dir, device="cpu").model.encoder

    assert torch.equal(trained.get_input_embeddings().weight.float(),
                       pretrained.get_input_embeddings().weight.float())
    assert not torch.equal(trained.encoder.layer[0].attention.self.query.weight.float(),
                           pretrained.encoder.layer[0].attention.self.query.weight.float())


def test_word_embeddings_train_unless_frozen(train_tiny, tiny_checkpoint: Path) -> None:
    from transformers import AutoModel

    pretrained = AutoModel.from_pretrained(str(tiny_checkpoint))
    trained = Predictor.load(train_tiny(epochs=2).output_dir, device="cpu").model.encoder
    assert not torch.equal(trained.get_input_embeddings().weight.float(),
                           pretrained.get_input_embeddings().weight.float())
