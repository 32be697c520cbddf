"""Fine-tuning as a recipe of named steps, on Hugging Face's ``Trainer``.

``ClassifierTrainer(data_args, train_args).run()`` goes through::

    load_data -> split -> build_model -> fit -> calibrate -> fit_out_of_scope
    -> evaluate -> save

``calibrate`` fits the logit temperature, the fallback threshold and the
intensity map on the validation data; ``fit_out_of_scope`` fits the intent
model's out-of-scope detector on the training embeddings and sets its
threshold on the validation ones.

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
from training.augment import add_typos
from training.arguments import SENTIMENT_LABELS, DataArguments, TrainArguments
from training.calibration import fit_isotonic, fit_temperature, softmax
from training.data import LabelledTexts
from training.evaluation import compute_metrics, plot_confusion_matrix, suggest_fallback_threshold
from training.exceptions import DataError, OutputExistsError
from training.ood import OutOfScopeDetector
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
    """Texts tokenized once (unpadded; the collator pads each batch).

    Args:
        intensities: Intensity target by text (``training.data.load_scores``);
            when given, every item carries one (``NaN`` where the text has none).
        typo_rate: Probability that an item is served with fresh typos instead
            (tokenized on the fly), so each epoch sees other misspellings.
        seed: Seed of the typos.
    """

    def __init__(self, dataset: LabelledTexts, tokenizer: Any, label_ids: dict[str, int],
                 max_length: int, *, intensities: dict[str, float] | None = None,
                 typo_rate: float = 0.0, seed: int = 0) -> None:
        import random

        encoded = tokenizer(list(dataset.texts), truncation=True, max_length=max_length)
        self.texts = dataset.texts
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.typo_rate = typo_rate
        self.rng = random.Random(seed)
        self.features = []
        for i, (text, label) in enumerate(zip(dataset.texts, dataset.labels)):
            item = {key: encoded[key][i] for key in encoded} | {"labels": label_ids[label]}
            if intensities is not None:
                item["intensity"] = intensities.get(text, float("nan"))
            self.features.append(item)

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.features[index]
        if self.typo_rate and self.rng.random() < self.typo_rate:
            noisy = add_typos(self.texts[index], self.rng)
            encoded = self.tokenizer(noisy, truncation=True, max_length=self.max_length)
            item = item | {key: encoded[key] for key in encoded}
        return item


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

    steps: tuple[str, ...] = ("load_data", "split", "build_model", "fit", "calibrate",
                              "fit_out_of_scope", "evaluate", "save")

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
        self.given_validation: LabelledTexts | None = None
        self.intensities: dict[str, float] | None = None
        self.calibration: dict[str, Any] = {}
        self.detector: OutOfScopeDetector | None = None
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
        for name, path in (("test", self.data_args.test_path),
                           ("validation", self.data_args.validation_path)):
            if path is None:
                continue
            extra = load_labelled(path, self.data_args, f"{name} data")
            unseen = sorted(set(extra.labels) - set(self.labels))
            if unseen:
                raise DataError(
                    f"{name} data has labels absent from training: {', '.join(unseen[:10])}"
                )
            if name == "test":
                self.test_set = extra
            else:
                self.given_validation = extra
        if self.data_args.intensity_column:
            self.intensities = {}
            for path in (self.data_args.path, self.data_args.validation_path):
                if path is not None and not Path(path).is_dir():
                    self.intensities.update(data_module.load_scores(
                        path, data_format=self.data_args.data_format,
                        text_column=self.data_args.text_column,
                        score_column=self.data_args.intensity_column))
            logger.info("%d texts with an intensity target", len(self.intensities))
        logger.info("%d examples, %d labels", len(self.dataset), len(self.labels))

    def split(self) -> None:
        """Holds out a stratified, seeded validation set (or takes the given one)."""
        if self.given_validation is not None:
            self.train_set, self.validation_set = self.dataset, self.given_validation
            logger.info("train %d, validation %d (given)", len(self.train_set),
                        len(self.validation_set))
            return
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
            dropout=self.args.dropout, intensity=bool(self.intensities),
        )
        if self.args.class_weights:
            self.model.set_class_weights(class_weights(self.train_set, self.labels))
        self.model.label_smoothing = self.args.label_smoothing
        self.model.intensity_weight = self.args.intensity_weight

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
        intensities = self.intensities or None
        train = TokenizedDataset(self.train_set, self.tokenizer, label_ids, self.args.max_length,
                                 intensities=intensities, typo_rate=self.args.typo_augmentation,
                                 seed=self.args.seed)
        validation = None
        if len(self.validation_set):
            validation = TokenizedDataset(self.validation_set, self.tokenizer, label_ids,
                                          self.args.max_length, intensities=intensities)
        callbacks = []
        if validation is not None and self.args.early_stopping_patience:
            callbacks.append(EarlyStoppingCallback(self.args.early_stopping_patience))

        def metrics(prediction: Any) -> dict[str, float]:
            predictions = prediction.predictions
            # With the intensity head the model returns (logits, intensity).
            logits = torch.as_tensor(predictions[0] if isinstance(predictions, tuple)
                                     else predictions)
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

    def predictor(self) -> Predictor:
        """A ``Predictor`` over the model as trained so far (calibration, detector)."""
        return Predictor(self.model, self.tokenizer, self.info, self.device,
                         detector=self.detector)

    def label_ids(self, dataset: LabelledTexts) -> np.ndarray:
        """The label id of every example of ``dataset``."""
        label_ids = {label: i for i, label in enumerate(self.labels)}
        return np.asarray([label_ids[label] for label in dataset.labels], dtype=np.int64)

    def calibrate(self) -> None:
        """Temperature, fallback threshold and intensity map, fitted on validation data.

        Without validation data nothing is fitted: temperature 1, no threshold.
        """
        if not self.args.calibrate or not len(self.validation_set):
            return
        outputs = self.predictor().outputs(list(self.validation_set.texts),
                                            batch_size=self.args.eval_batch_size)
        y_true = self.label_ids(self.validation_set)
        temperature = fit_temperature(outputs["logits"], y_true)
        probabilities = softmax(outputs["logits"], temperature)
        fallback = suggest_fallback_threshold(probabilities.max(axis=1),
                                              probabilities.argmax(axis=1) == y_true)
        self.calibration = {"temperature": temperature,
                            "fallback_threshold": fallback["threshold"],
                            "fallback": fallback, "examples": len(y_true)}
        if "intensity" in outputs and self.intensities:
            pairs = [(raw, self.intensities[text]) for raw, text in
                     zip(outputs["intensity"].tolist(), self.validation_set.texts)
                     if text in self.intensities]
            if pairs:
                xs, ys = fit_isotonic([p[0] for p in pairs], [p[1] for p in pairs])
                self.calibration["intensity"] = {"xs": xs, "ys": ys, "examples": len(pairs)}
        logger.info("calibration: temperature %.3f, fallback threshold %.3f", temperature,
                    fallback["threshold"])

    def fit_out_of_scope(self) -> None:
        """The intent model's out-of-scope detector: fitted on the training embeddings,
        its threshold on the validation ones (which hold no unknown intent)."""
        if (self.args.task != "intent" or self.args.out_of_scope == "none"
                or not len(self.validation_set)):
            if self.args.task == "intent" and self.args.out_of_scope != "none":
                logger.warning("no validation data: the out-of-scope detector is not fitted")
            return
        predictor = self.predictor()
        train = predictor.outputs(list(self.train_set.texts), batch_size=self.args.eval_batch_size)
        detector = OutOfScopeDetector.fit(
            self.args.out_of_scope, train.get("features"), self.label_ids(self.train_set),
            len(self.labels), temperature=self.calibration.get("temperature", 1.0),
            k=self.args.out_of_scope_k)
        validation = predictor.outputs(list(self.validation_set.texts),
                                       batch_size=self.args.eval_batch_size)
        scores = detector.scores(validation.get("features"), validation["logits"])
        detector.set_threshold(scores, self.args.out_of_scope_known_recall)
        self.detector = detector
        logger.info("out-of-scope detector %s: threshold %.4f", detector.method,
                    detector.threshold)

    def evaluate(self) -> None:
        """Full metrics on validation (threshold, calibration) and on the test set."""
        predictor = self.predictor()
        for name, dataset in (("validation", self.validation_set), ("test", self.test_set)):
            if dataset is None or not len(dataset):
                continue
            outputs = predictor.outputs(list(dataset.texts), batch_size=self.args.eval_batch_size)
            probabilities = predictor.calibrated(outputs["logits"])
            y_true = self.label_ids(dataset)
            self.results[name] = compute_metrics(y_true, probabilities, self.labels)
            if self.detector is not None:
                unknown = self.detector.is_unknown(
                    self.detector.scores(outputs.get("features"), outputs["logits"]))
                self.results[name]["out_of_scope_rate"] = float(unknown.mean())
            logger.info("%s accuracy %.4f, macro-F1 %.4f, ECE %.4f", name,
                        self.results[name]["accuracy"], self.results[name]["macro_f1"],
                        self.results[name]["ece"])

    def save(self) -> None:
        """Writes the artifact, ``results.json`` and confusion-matrix plots (main process)."""
        if not self.is_main_process:
            return
        output_dir = self.args.output_dir
        if output_dir.exists():
            shutil.rmtree(output_dir) if output_dir.is_dir() else output_dir.unlink()
        save_artifact(self.model, self.tokenizer, output_dir, self.info,
                      ood_tensors=self.detector.tensors if self.detector else None,
                      half=self.args.half_precision)
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
            calibration={key: value for key, value in self.calibration.items()
                         if key != "fallback"},
            out_of_scope=self.detector.to_json() if self.detector else {},
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
        "validation_path": str(data_args.validation_path) if data_args.validation_path else None,
        "intensity_column": data_args.intensity_column,
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
