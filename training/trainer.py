"""Fine-tuning as a recipe of named steps, on Hugging Face's ``Trainer``.

``ClassifierTrainer(data_args, train_args).run()`` goes through::

    load_data -> split -> build_model -> fit -> calibrate -> fit_out_of_scope
    -> evaluate -> save

Each step is a function of the arguments (``training.arguments``) and of what
the steps before it returned (``TrainingData``, ``Split``, ``Fitted``,
``TrainedClassifier``: small frozen values), so a step cannot run before what
it needs exists. ``fit`` (in ``training.fitting``) runs Hugging Face's
``Trainer``; ``calibrate`` fits the logit temperature, the fallback threshold
and the intensity map on the validation data; ``fit_out_of_scope`` fits the
intent model's out-of-scope detector on the training embeddings and sets its
threshold on the validation ones. Each step logs its wall time.

Under ``torchrun`` every rank loads, splits and fits (``training.distributed``);
rank 0 alone runs the steps after ``fit`` and writes the artifact while the
others wait for it. ``fit`` saves resumable checkpoints beside the output
(``training.checkpoints``), which a finished run deletes.

The modules follow setfit's split: ``arguments`` says how to train, ``model``
is the network, this module (with ``fitting``) trains it.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training import checkpoints as checkpoints_module
from training import data as data_module
from training import distributed
from training import model as model_module
from training.arguments import (
    SENTIMENT_LABELS,
    CheckpointArguments,
    DataArguments,
    TrainArguments,
)
from training.artifact import ArtifactInfo
from training.calibration import fit_isotonic, fit_temperature, softmax
from training.data import LabelledTexts, load_labelled
from training.evaluation import compute_metrics, suggest_fallback_threshold, write_results
from training.exceptions import DataError, OutputExistsError
from training.fitting import class_weights, fit
from training.model import EncoderClassifier
from training.ood import OutOfScopeDetector
from training.predict import Predictor, configure_threads, resolve_device
from training.spelling import SpellingNormaliser

logger = logging.getLogger(__name__)

STEPS = ("load_data", "split", "build_model", "fit", "calibrate", "fit_out_of_scope",
         "evaluate", "save")
# What the artifact's metrics keep of each evaluation; the rest is in results.json.
_SUMMARY_KEYS = ("examples", "accuracy", "macro_f1", "ece", "fallback")


def check_output_dir(path: Path, overwrite: bool) -> None:
    """Refuses an existing, non-empty output directory unless ``overwrite``."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())) and not overwrite:
        raise OutputExistsError(
            f"output directory '{path}' already exists; pass --overwrite to replace it"
        )


def label_ids(labels: Sequence[str], dataset: LabelledTexts) -> np.ndarray:
    """The label id (index in ``labels``) of every example of ``dataset``."""
    ids = {label: i for i, label in enumerate(labels)}
    return np.asarray([ids[label] for label in dataset.labels], dtype=np.int64)


def check_sentiment_labels(labels: list[str]) -> None:
    """Sentiment artifacts speak a fixed vocabulary the components rely on."""
    unknown = sorted(set(labels) - set(SENTIMENT_LABELS))
    if unknown:
        raise DataError(
            f"sentiment labels must be {', '.join(SENTIMENT_LABELS)}; found {', '.join(unknown)} "
            "(rename them with --label-map, e.g. --label-map 0=negative,1=positive)"
        )


# -- what passes between the steps ----------------------------------------------


@dataclass(frozen=True)
class TrainingData:
    """What ``load_data`` read, cleaned and checked.

    Attributes:
        dataset: The training examples.
        labels: Label names by id (sorted, so that ids are stable across runs).
        fingerprint: SHA-256 of ``dataset``.
        test: The test set, when one was given.
        validation: The given validation set, which replaces the split.
        intensities: Intensity target by text, with an intensity column; else ``None``.
    """

    dataset: LabelledTexts
    labels: tuple[str, ...]
    fingerprint: str
    test: LabelledTexts | None = None
    validation: LabelledTexts | None = None
    intensities: Mapping[str, float] | None = None


@dataclass(frozen=True)
class Split:
    """The training and validation sets (the latter may be empty)."""

    train: LabelledTexts
    validation: LabelledTexts


@dataclass(frozen=True)
class TrainedClassifier:
    """The fitted model and what the later steps measured on it.

    Attributes:
        model: The classifier in eval mode.
        tokenizer: Its tokenizer.
        info: The artifact metadata as known so far.
        device: Where the model is.
        detector: The out-of-scope detector, once fitted.
    """

    model: EncoderClassifier
    tokenizer: Any
    info: ArtifactInfo
    device: torch.device
    detector: OutOfScopeDetector | None = None

    def predictor(self) -> Predictor:
        """A ``Predictor`` over the model with the calibration and detector so far."""
        return Predictor(self.model, self.tokenizer, self.info, self.device,
                         detector=self.detector)


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


# -- the steps ----------------------------------------------------------------


def load_data(data_args: DataArguments, args: TrainArguments,
              dataset: LabelledTexts | None = None) -> TrainingData:
    """Reads, cleans and checks the training (and test, validation) data.

    Args:
        data_args: Where the data is.
        args: The run's arguments (the task decides the label vocabulary).
        dataset: Labelled texts already in memory, used instead of ``data_args.path``.
    """
    if dataset is not None:
        dataset = data_module.clean(dataset, source="training data")
    else:
        dataset = load_labelled(data_args.path, data_args, "training data")
    data_module.require_labels(dataset, source=str(data_args.path))
    labels = dataset.label_names
    if args.task == "sentiment":
        check_sentiment_labels(labels)
    extra: dict[str, LabelledTexts] = {}
    for name, path in (("test", data_args.test_path), ("validation", data_args.validation_path)):
        if path is None:
            continue
        extra[name] = load_labelled(path, data_args, f"{name} data")
        unseen = sorted(set(extra[name].labels) - set(labels))
        if unseen:
            raise DataError(
                f"{name} data has labels absent from training: {', '.join(unseen[:10])}"
            )
    intensities = None
    if data_args.intensity_column:
        intensities = {}
        for path in (data_args.path, data_args.validation_path):
            if path is not None and not Path(path).is_dir():
                intensities.update(data_module.load_scores(
                    path, data_format=data_args.data_format, text_column=data_args.text_column,
                    score_column=data_args.intensity_column))
        logger.info("%d texts with an intensity target", len(intensities))
    logger.info("%d examples, %d labels", len(dataset), len(labels))
    return TrainingData(dataset, tuple(labels), dataset.fingerprint(), test=extra.get("test"),
                        validation=extra.get("validation"), intensities=intensities)


def split(data: TrainingData, *, validation_split: float, seed: int) -> Split:
    """Holds out a stratified, seeded validation set (or takes the given one)."""
    if data.validation is not None:
        logger.info("train %d, validation %d (given)", len(data.dataset), len(data.validation))
        return Split(data.dataset, data.validation)
    train, validation = data_module.stratified_split(
        data.dataset, validation_fraction=validation_split, seed=seed)
    logger.info("train %d, validation %d", len(train), len(validation))
    return Split(train, validation)


def build_model(base_model: str | Path, data: TrainingData, train: LabelledTexts,
                args: TrainArguments) -> tuple[EncoderClassifier, Any]:
    """Loads the pretrained encoder and adds a seeded head (and the intensity head
    when there are intensity targets); ``train`` sets the class weights."""
    from transformers import set_seed

    set_seed(args.seed)
    model, tokenizer = model_module.build_model(
        base_model, len(data.labels), pooling=args.pooling, dropout=args.dropout,
        intensity=bool(data.intensities),
    )
    if args.freeze_word_embeddings:
        logger.info("word embeddings frozen: %d weights", model.freeze_word_embeddings())
    if args.class_weights:
        model.set_class_weights(class_weights(train, list(data.labels)))
    model.label_smoothing = args.label_smoothing
    model.intensity_weight = args.intensity_weight
    return model, tokenizer


def calibrate(predictor: Predictor, validation: LabelledTexts, args: TrainArguments,
              intensities: Mapping[str, float] | None = None) -> dict[str, Any]:
    """Temperature, fallback threshold and intensity map, fitted on validation data.

    Returns:
        ``temperature``, ``fallback_threshold``, the full ``fallback`` report and
        the number of ``examples`` (plus ``intensity`` knots with an intensity
        head); ``{}`` when asked not to or without validation data (temperature
        1, no threshold).
    """
    if not args.calibrate or not len(validation):
        return {}
    outputs = predictor.outputs(list(validation.texts), batch_size=args.eval_batch_size)
    y_true = label_ids(predictor.labels, validation)
    temperature = fit_temperature(outputs["logits"], y_true)
    probabilities = softmax(outputs["logits"], temperature)
    fallback = suggest_fallback_threshold(probabilities.max(axis=1),
                                          probabilities.argmax(axis=1) == y_true,
                                          calibrated=True)
    calibration = {"temperature": temperature, "fallback_threshold": fallback["threshold"],
                   "fallback": fallback, "examples": len(y_true)}
    if "intensity" in outputs and intensities:
        pairs = [(raw, intensities[text]) for raw, text in
                 zip(outputs["intensity"].tolist(), validation.texts) if text in intensities]
        if pairs:
            xs, ys = fit_isotonic([p[0] for p in pairs], [p[1] for p in pairs])
            calibration["intensity"] = {"xs": xs, "ys": ys, "examples": len(pairs)}
    logger.info("calibration: temperature %.3f, fallback threshold %.3f", temperature,
                fallback["threshold"])
    return calibration


def fit_out_of_scope(predictor: Predictor, sets: Split,
                     args: TrainArguments) -> OutOfScopeDetector | None:
    """The intent model's out-of-scope detector: fitted on the training embeddings,
    its threshold on the validation ones (which hold no unknown intent).

    Returns:
        The detector; ``None`` for sentiment, when asked not to, or without
        validation data.
    """
    wanted = args.task == "intent" and args.out_of_scope != "none"
    if not wanted or not len(sets.validation):
        if wanted:
            logger.warning("no validation data: the out-of-scope detector is not fitted")
        return None
    train = predictor.outputs(list(sets.train.texts), batch_size=args.eval_batch_size)
    detector = OutOfScopeDetector.fit(
        args.out_of_scope, train.get("features"), label_ids(predictor.labels, sets.train),
        len(predictor.labels), temperature=predictor.temperature, k=args.out_of_scope_k)
    validation = predictor.outputs(list(sets.validation.texts),
                                   batch_size=args.eval_batch_size)
    detector.set_threshold(detector.scores(validation.get("features"), validation["logits"]),
                           args.out_of_scope_known_recall)
    logger.info("out-of-scope detector %s: threshold %.4f", detector.method, detector.threshold)
    return detector


def evaluate(predictor: Predictor, datasets: Mapping[str, LabelledTexts | None],
             batch_size: int) -> dict[str, dict[str, Any]]:
    """Full metrics (calibration, threshold, out-of-scope rate) of each non-empty set.

    Args:
        predictor: The calibrated classifier, with its detector if any.
        datasets: Sets by name (``validation``, ``test``); ``None`` or empty ones are skipped.
        batch_size: Texts per forward pass.
    """
    results = {}
    for name, dataset in datasets.items():
        if dataset is None or not len(dataset):
            continue
        outputs = predictor.outputs(list(dataset.texts), batch_size=batch_size)
        metrics = compute_metrics(label_ids(predictor.labels, dataset),
                                  predictor.calibrated(outputs["logits"]), predictor.labels)
        if predictor.detector is not None:
            unknown = predictor.detector.is_unknown(
                predictor.detector.scores(outputs.get("features"), outputs["logits"]))
            metrics["out_of_scope_rate"] = float(unknown.mean())
        logger.info("%s accuracy %.4f, macro-F1 %.4f, ECE %.4f", name, metrics["accuracy"],
                    metrics["macro_f1"], metrics["ece"])
        results[name] = metrics
    return results


def save(classifier: TrainedClassifier, results: dict[str, Any], args: TrainArguments) -> None:
    """Writes the artifact, ``results.json`` and confusion-matrix plots, replacing
    ``args.output_dir``."""
    output_dir = args.output_dir
    if output_dir.exists():
        shutil.rmtree(output_dir) if output_dir.is_dir() else output_dir.unlink()
    detector = classifier.detector
    model_module.save_artifact(classifier.model, classifier.tokenizer, output_dir,
                               classifier.info,
                               ood_tensors=detector.tensors if detector else None,
                               half=args.half_precision)
    write_results(output_dir, results, list(classifier.info.labels), title_prefix=args.task)


# -- the artifact metadata ------------------------------------------------------


def describe(data_args: DataArguments, args: TrainArguments, base_model: str | Path,
             data: TrainingData) -> ArtifactInfo:
    """The artifact metadata known before training; the steps add the rest."""
    return ArtifactInfo(
        task=args.task,
        labels=list(data.labels),
        max_length=args.max_length,
        pooling=args.pooling,
        base_model=str(base_model),
        training_arguments=args.to_dict() | {"data": data_args.to_dict()},
        data_fingerprint=data.fingerprint,
        spelling=(SpellingNormaliser.from_texts(data.dataset.texts).to_json()
                  if args.spelling_correction else {}),
        versions=model_module.library_versions(),
    )


def with_calibration(info: ArtifactInfo, calibration: Mapping[str, Any]) -> ArtifactInfo:
    """``info`` with the calibration (its full fallback report stays in results.json)."""
    return replace(info, calibration={key: value for key, value in calibration.items()
                                      if key != "fallback"})


def with_metrics(info: ArtifactInfo, evaluation: Mapping[str, Mapping[str, Any]]
                 ) -> ArtifactInfo:
    """``info`` with a summary of each evaluation."""
    return replace(info, metrics={name: {key: metrics[key] for key in _SUMMARY_KEYS}
                                  for name, metrics in evaluation.items()})


# -- the recipe ---------------------------------------------------------------


class _StepTimer:
    """Times and logs each step, in the order run."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - started, 2)
        logger.info("step %s done in %.1f s", name, self.seconds[name])


@dataclass(frozen=True)
class _Run:
    """Everything a finished run produced, for ``ClassifierTrainer``'s accessors."""

    data: TrainingData
    split: Split
    calibration: dict[str, Any]
    classifier: TrainedClassifier
    result: TrainResult


class ClassifierTrainer:
    """Fine-tunes an encoder into an intent or sentiment classifier.

    After ``run()`` the trainer also exposes what the run produced (``labels``,
    ``train_set``, ``validation_set``, ``model``, ``info``, ``predictor()``, ...),
    for benchmarks and tests that inspect the model in memory.

    Args:
        data_args: Where the data comes from.
        train_args: How to train, and where the artifact goes.
        dataset: Labelled texts already in memory (the Rasa component passes
            Rasa's training data); ``data_args.path`` is then only recorded.
        checkpoints: Where resumable checkpoints go, how often, and whether to
            resume; ``None`` takes ``CheckpointArguments()``'s defaults.
    """

    steps: tuple[str, ...] = STEPS

    def __init__(self, data_args: DataArguments, train_args: TrainArguments,
                 dataset: LabelledTexts | None = None,
                 checkpoints: CheckpointArguments | None = None) -> None:
        self.data_args = data_args
        self.given_dataset = dataset
        self.args = train_args
        self.checkpoint_args = checkpoints or CheckpointArguments()
        self.device = resolve_device(train_args.device)
        self.base_model = train_args.base_model or model_module.default_base_model()
        self._run: _Run | None = None

    def run(self) -> TrainResult:
        """Runs every step in order and returns what was written.

        Under ``torchrun`` it joins the process group first and leaves it at
        the end, also when a step fails.

        Raises:
            TrainingStopped: ``stop_after_steps`` was reached (no artifact).
        """
        check_output_dir(self.args.output_dir, self.args.overwrite)
        configure_threads(self.args.num_threads)
        context = distributed.setup(self.device)
        try:
            self.device = distributed.training_device(self.device, context)
            return self._run_steps(context)
        finally:
            distributed.teardown(context)

    def _plan_checkpoints(self, data: TrainingData, sets: Split,
                          context: distributed.DistributedContext
                          ) -> checkpoints_module.CheckpointPlan:
        """Decides on resuming (every rank, reading only), then rank 0 prepares
        the directory while the others wait."""
        identity = checkpoints_module.identify(
            self.args, self.data_args, training=data.fingerprint,
            validation=sets.validation.fingerprint(), intensities=data.intensities,
            world_size=context.world_size)
        plan = checkpoints_module.plan(self.checkpoint_args, self.args.output_dir, identity,
                                       overwrite=self.args.overwrite)
        distributed.barrier(context)  # every rank has read it before rank 0 changes it
        if context.is_main:
            checkpoints_module.prepare(plan)
        distributed.barrier(context)
        return plan

    def _run_steps(self, context: distributed.DistributedContext) -> TrainResult:
        args, data_args = self.args, self.data_args
        step = _StepTimer()
        with step("load_data"):
            data = load_data(data_args, args, self.given_dataset)
        with step("split"):
            sets = split(data, validation_split=data_args.validation_split, seed=args.seed)
        plan = self._plan_checkpoints(data, sets, context)
        with step("build_model"):
            model, tokenizer = build_model(self.base_model, data, sets.train, args)
        with step("fit"):
            fitted = fit(model, tokenizer, data.labels, sets.train, sets.validation, args,
                         self.device, intensities=data.intensities, checkpoints=plan,
                         context=context)
        classifier = TrainedClassifier(fitted.model, fitted.tokenizer,
                                       describe(data_args, args, self.base_model, data),
                                       self.device)
        results: dict[str, Any] = {"epochs_trained": fitted.epochs_trained,
                                   "best_validation_macro_f1": fitted.best_validation_macro_f1}
        if fitted.resumed_from_step is not None:
            results["resumed_from_step"] = fitted.resumed_from_step
        if not context.is_main:
            # Rank 0 alone calibrates, evaluates and writes; this rank waits for it.
            distributed.barrier(context)
            result = TrainResult(args.output_dir, classifier.info, results, step.seconds)
            self._run = _Run(data, sets, {}, classifier, result)
            return result
        with step("calibrate"):
            calibration = calibrate(classifier.predictor(), sets.validation, args,
                                    data.intensities)
        classifier = replace(classifier, info=with_calibration(classifier.info, calibration))
        with step("fit_out_of_scope"):
            detector = fit_out_of_scope(classifier.predictor(), sets, args)
        classifier = replace(classifier, detector=detector, info=replace(
            classifier.info, out_of_scope=detector.to_json() if detector else {}))
        with step("evaluate"):
            evaluation = evaluate(classifier.predictor(),
                                  {"validation": sets.validation, "test": data.test},
                                  args.eval_batch_size)
        classifier = replace(classifier, info=with_metrics(classifier.info, evaluation))
        results.update(evaluation)
        with step("save"):
            results["timing_seconds"] = dict(step.seconds)
            save(classifier, results, args)
        checkpoints_module.remove(plan)
        distributed.barrier(context)  # the other ranks leave once the artifact is written
        result = TrainResult(args.output_dir, classifier.info, results, step.seconds)
        self._run = _Run(data, sets, calibration, classifier, result)
        return result

    # -- what the run produced ------------------------------------------------

    def _finished(self) -> _Run:
        # All that a run produced exists once it has finished, never in part.
        if self._run is None:
            raise RuntimeError("ClassifierTrainer.run() has not finished yet")
        return self._run

    def predictor(self) -> Predictor:
        """A ``Predictor`` over the trained model (calibration, detector), in memory."""
        return self._finished().classifier.predictor()

    def label_ids(self, dataset: LabelledTexts) -> np.ndarray:
        """The label id of every example of ``dataset``."""
        return label_ids(self.labels, dataset)

    @property
    def labels(self) -> list[str]:
        """Label names by id."""
        return list(self._finished().data.labels)

    @property
    def train_set(self) -> LabelledTexts:
        """The examples the model was fitted on."""
        return self._finished().split.train

    @property
    def validation_set(self) -> LabelledTexts:
        """The validation examples (empty with ``validation_split`` 0)."""
        return self._finished().split.validation

    @property
    def intensities(self) -> Mapping[str, float] | None:
        """Intensity target by text, with an intensity column."""
        return self._finished().data.intensities

    @property
    def calibration(self) -> dict[str, Any]:
        """What ``calibrate`` fitted, with the full fallback report."""
        return self._finished().calibration

    @property
    def model(self) -> EncoderClassifier:
        """The trained classifier, in eval mode."""
        return self._finished().classifier.model

    @property
    def tokenizer(self) -> Any:
        """Its tokenizer."""
        return self._finished().classifier.tokenizer

    @property
    def detector(self) -> OutOfScopeDetector | None:
        """The out-of-scope detector, if one was fitted."""
        return self._finished().classifier.detector

    @property
    def info(self) -> ArtifactInfo:
        """The artifact metadata (``classifier.json``)."""
        return self._finished().classifier.info
