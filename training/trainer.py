"""Fine-tuning as a recipe of named steps, on Hugging Face's ``Trainer``.

``ClassifierTrainer(data_args, train_args).run()`` goes through::

    load_data -> split -> build_model -> fit -> evaluate -> save

Each step logs its wall time. ``Trainer`` supplies AdamW with linear warmup
and decay, bf16 autocast on CUDA, data-parallel training under ``torchrun``,
early stopping on validation and the progress bar.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training import data as data_module
from training.arguments import SENTIMENT_LABELS, DataArguments, TrainArguments
from training.data import LabelledTexts
from training.evaluation import compute_metrics, plot_confusion_matrix
from training.exceptions import DataError, OutputExistsError
from training.model import (
    ArtifactInfo,
    EncoderClassifier,
    build_model,
    default_base_model,
    library_versions,
    save_artifact,
)
from training.predict import Predictor, resolve_device

logger = logging.getLogger(__name__)

RESULTS_FILE = "results.json"


def check_output_dir(path: Path, overwrite: bool) -> None:
    """Refuses an existing, non-empty output directory unless ``overwrite``."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())) and not overwrite:
        raise OutputExistsError(
            f"output directory '{path}' already exists; pass --overwrite to replace it"
        )


def load_labelled(path: Path, data_args: DataArguments, source: str) -> LabelledTexts:
    """Loads, label-maps and cleans one data file as the options say."""
    dataset = data_module.load_dataset(
        path,
        data_format=data_args.data_format,
        text_column=data_args.text_column,
        label_column=data_args.label_column,
        label_map=data_args.label_map,
    )
    return data_module.clean(dataset, source=source)


def check_sentiment_labels(labels: list[str]) -> None:
    """Sentiment artifacts speak a fixed vocabulary the components rely on."""
    unknown = sorted(set(labels) - set(SENTIMENT_LABELS))
    if unknown:
        raise DataError(
            f"sentiment labels must be {', '.join(SENTIMENT_LABELS)}; found {', '.join(unknown)} "
            "(rename them with --label-map, e.g. --label-map 0=negative,1=positive)"
        )


def class_weights(dataset: LabelledTexts, labels: list[str]) -> torch.Tensor:
    """Inverse label frequency, scaled to average 1."""
    counts = dataset.label_counts()
    weights = torch.tensor([len(dataset) / (len(labels) * counts[label]) for label in labels])
    return weights / weights.mean()


class TokenizedDataset(torch.utils.data.Dataset):
    """Texts tokenized once (unpadded; the collator pads each batch)."""

    def __init__(self, dataset: LabelledTexts, tokenizer: Any, label_ids: dict[str, int],
                 max_length: int) -> None:
        encoded = tokenizer(list(dataset.texts), truncation=True, max_length=max_length)
        self.features = [
            {key: encoded[key][i] for key in encoded} | {"labels": label_ids[label]}
            for i, label in enumerate(dataset.labels)
        ]

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.features[index]


@dataclass
class TrainResult:
    """What a run produced.

    Attributes:
        output_dir: The artifact directory.
        info: Its ``classifier.json`` content.
        results: The full report written to ``results.json``.
        step_seconds: Wall time of each recipe step.
    """

    output_dir: Path
    info: ArtifactInfo
    results: dict[str, Any]
    step_seconds: dict[str, float] = field(default_factory=dict)


class ClassifierTrainer:
    """Fine-tunes an encoder into an intent or sentiment classifier.

    Args:
        data_args: Where the data comes from.
        train_args: How to train, and where the artifact goes.
        dataset: Labelled texts already in memory (the Rasa component passes
            Rasa's training data); ``data_args.path`` is then only recorded.
    """

    steps: tuple[str, ...] = ("load_data", "split", "build_model", "fit", "evaluate", "save")

    def __init__(self, data_args: DataArguments, train_args: TrainArguments,
                 dataset: LabelledTexts | None = None) -> None:
        self.data_args = data_args
        self.given_dataset = dataset
        self.args = train_args
        self.device = resolve_device(train_args.device)
        self.base_model = train_args.base_model or default_base_model()
        self.dataset: LabelledTexts | None = None
        self.data_fingerprint = ""
        self.test_set: LabelledTexts | None = None
        self.train_set: LabelledTexts | None = None
        self.validation_set: LabelledTexts | None = None
        self.labels: list[str] = []
        self.model: EncoderClassifier | None = None
        self.tokenizer: Any = None
        self.results: dict[str, Any] = {}
        self.step_seconds: dict[str, float] = {}
        self.is_main_process = True

    def run(self) -> TrainResult:
        """Runs every step in order and returns what was written."""
        check_output_dir(self.args.output_dir, self.args.overwrite)
        if self.args.num_threads:
            torch.set_num_threads(self.args.num_threads)
        for name in self.steps:
            step: Callable[[], None] = getattr(self, name)
            started = time.perf_counter()
            step()
            self.step_seconds[name] = round(time.perf_counter() - started, 2)
            logger.info("step %s done in %.1f s", name, self.step_seconds[name])
        return TrainResult(self.args.output_dir, self.info, self.results, self.step_seconds)

    # -- steps -------------------------------------------------------------

    def load_data(self) -> None:
        """Reads, cleans and checks the training (and test) data."""
        if self.given_dataset is not None:
            self.dataset = data_module.clean(self.given_dataset, source="training data")
        else:
            self.dataset = load_labelled(self.data_args.path, self.data_args, "training data")
        data_module.require_labels(self.dataset, source=str(self.data_args.path))
        self.data_fingerprint = self.dataset.fingerprint()
        self.labels = self.dataset.label_names
        if self.args.task == "sentiment":
            check_sentiment_labels(self.labels)
        if self.data_args.test_path is not None:
            self.test_set = load_labelled(self.data_args.test_path, self.data_args, "test data")
            unseen = sorted(set(self.test_set.labels) - set(self.labels))
            if unseen:
                raise DataError(
                    f"test data has labels absent from training: {', '.join(unseen[:10])}"
                )
        logger.info("%d examples, %d labels", len(self.dataset), len(self.labels))

    def split(self) -> None:
        """Holds out a stratified, seeded validation set."""
        self.train_set, self.validation_set = data_module.stratified_split(
            self.dataset, validation_fraction=self.data_args.validation_split,
            seed=self.args.seed,
        )
        logger.info("train %d, validation %d", len(self.train_set), len(self.validation_set))

    def build_model(self) -> None:
        """Loads the pretrained encoder and adds a seeded head."""
        from transformers import set_seed

        set_seed(self.args.seed)
        self.model, self.tokenizer = build_model(
            self.base_model, len(self.labels), pooling=self.args.pooling,
            dropout=self.args.dropout,
        )
        if self.args.class_weights:
            self.model.set_class_weights(class_weights(self.train_set, self.labels))
        self.model.label_smoothing = self.args.label_smoothing

    def _hf_arguments(self, work_dir: str, has_validation: bool) -> Any:
        from transformers import TrainingArguments

        evaluate = "epoch" if has_validation else "no"
        use_bf16 = self.args.bf16
        if use_bf16 is None:
            use_bf16 = self.device.type == "cuda" and torch.cuda.is_bf16_supported()
        return TrainingArguments(
            output_dir=work_dir,
            num_train_epochs=self.args.epochs,
            learning_rate=self.args.learning_rate,
            per_device_train_batch_size=self.args.batch_size,
            per_device_eval_batch_size=self.args.eval_batch_size,
            warmup_steps=self.args.warmup_ratio,  # a float in [0, 1) is a ratio
            weight_decay=self.args.weight_decay,
            lr_scheduler_type="linear",
            eval_strategy=evaluate,
            save_strategy=evaluate,
            save_total_limit=2,
            save_only_model=True,
            load_best_model_at_end=has_validation,
            metric_for_best_model="macro_f1" if has_validation else None,
            greater_is_better=True,
            train_sampling_strategy="group_by_length",
            bf16=bool(use_bf16),
            use_cpu=self.device.type == "cpu",
            seed=self.args.seed,
            data_seed=self.args.seed,
            logging_steps=50,
            report_to="none",
            remove_unused_columns=False,
            dataloader_num_workers=0,
        )

    def fit(self) -> None:
        """Fine-tunes with Hugging Face's ``Trainer``; keeps the best validation epoch."""
        from transformers import DataCollatorWithPadding, EarlyStoppingCallback, Trainer

        label_ids = {label: i for i, label in enumerate(self.labels)}
        train = TokenizedDataset(self.train_set, self.tokenizer, label_ids, self.args.max_length)
        validation = None
        if len(self.validation_set):
            validation = TokenizedDataset(self.validation_set, self.tokenizer, label_ids,
                                          self.args.max_length)
        callbacks = []
        if validation is not None and self.args.early_stopping_patience:
            callbacks.append(EarlyStoppingCallback(self.args.early_stopping_patience))

        def metrics(prediction: Any) -> dict[str, float]:
            logits = torch.as_tensor(prediction.predictions)
            probabilities = torch.softmax(logits.float(), dim=-1).numpy()
            summary = compute_metrics(prediction.label_ids, probabilities, self.labels)
            return {"accuracy": summary["accuracy"], "macro_f1": summary["macro_f1"]}

        with tempfile.TemporaryDirectory(prefix="checkpoints-") as work_dir:
            trainer = Trainer(
                model=self.model,
                args=self._hf_arguments(work_dir, validation is not None),
                train_dataset=train,
                eval_dataset=validation,
                data_collator=DataCollatorWithPadding(self.tokenizer),
                compute_metrics=metrics if validation is not None else None,
                callbacks=callbacks,
            )
            trainer.train()
            self.is_main_process = trainer.is_world_process_zero()
            self.results["epochs_trained"] = round(float(trainer.state.epoch or 0), 2)
            self.results["best_validation_macro_f1"] = trainer.state.best_metric
        self.model = self.model.to(self.device).eval()

    def evaluate(self) -> None:
        """Full metrics on validation (threshold, calibration) and on the test set."""
        predictor = Predictor(self.model, self.tokenizer, self.info, self.device)
        for name, dataset in (("validation", self.validation_set), ("test", self.test_set)):
            if dataset is None or not len(dataset):
                continue
            probabilities = predictor.predict_proba(list(dataset.texts),
                                                    batch_size=self.args.eval_batch_size)
            label_ids = {label: i for i, label in enumerate(self.labels)}
            y_true = [label_ids[label] for label in dataset.labels]
            self.results[name] = compute_metrics(y_true, probabilities.numpy(), self.labels)
            logger.info("%s accuracy %.4f, macro-F1 %.4f", name,
                        self.results[name]["accuracy"], self.results[name]["macro_f1"])

    def save(self) -> None:
        """Writes the artifact, ``results.json`` and confusion-matrix plots (main process)."""
        if not self.is_main_process:
            return
        output_dir = self.args.output_dir
        if output_dir.exists():
            shutil.rmtree(output_dir) if output_dir.is_dir() else output_dir.unlink()
        save_artifact(self.model, self.tokenizer, output_dir, self.info)
        self.results["timing_seconds"] = dict(self.step_seconds)
        write_results(output_dir, self.results, self.labels, title_prefix=self.args.task)

    # -- derived -----------------------------------------------------------

    @property
    def info(self) -> ArtifactInfo:
        """The artifact metadata as known so far."""
        summary = {}
        for name in ("validation", "test"):
            if name in self.results:
                metrics = self.results[name]
                summary[name] = {key: metrics[key] for key in
                                 ("examples", "accuracy", "macro_f1", "ece", "fallback")}
        return ArtifactInfo(
            task=self.args.task,
            labels=list(self.labels),
            max_length=self.args.max_length,
            pooling=self.args.pooling,
            base_model=str(self.base_model),
            training_arguments=self.args.to_dict() | {"data": _data_summary(self.data_args)},
            data_fingerprint=self.data_fingerprint,
            metrics=summary,
            versions=library_versions(),
        )


def _data_summary(data_args: DataArguments) -> dict[str, Any]:
    return {
        "path": str(data_args.path),
        "format": data_args.data_format,
        "text_column": data_args.text_column,
        "label_column": data_args.label_column,
        "label_map": dict(data_args.label_map),
        "test_path": str(data_args.test_path) if data_args.test_path else None,
        "validation_split": data_args.validation_split,
    }


def write_results(directory: Path, results: dict[str, Any], labels: list[str],
                  title_prefix: str = "") -> Path:
    """Writes ``results.json`` and one confusion-matrix PNG per evaluated split."""
    import json

    for name in ("validation", "test", "evaluation"):
        if name in results and results[name].get("examples"):
            png = plot_confusion_matrix(
                results[name]["confusion_matrix"], labels,
                directory / f"confusion_{name}.png",
                title=f"{title_prefix} {name}: accuracy {results[name]['accuracy']:.4f}".strip(),
            )
            if png is not None:
                results[name]["confusion_matrix_png"] = png.name
    path = directory / RESULTS_FILE
    path.write_text(json.dumps(results, indent=2, default=_json_default) + "\n", encoding="utf-8")
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return str(value)
