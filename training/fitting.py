"""Fitting on Hugging Face's ``Trainer``: the tokenized data, its arguments, the loop.

The ``fit`` step of ``training.trainer``. ``Trainer`` supplies AdamW with
linear warmup and decay, bf16 autocast on CUDA, data-parallel training under
``torchrun`` (``training.distributed``), early stopping on validation, keeping
the best epoch, resumable checkpoints (``training.checkpoints``) and the
progress bar; this module maps ``TrainArguments`` onto it, and
``training.callbacks`` holds what it adds to ``Trainer``.
"""

from __future__ import annotations

import contextlib
import random
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from training import distributed
from training.arguments import TrainArguments
from training.augment import add_typos
from training.checkpoints import CheckpointPlan
from training.data import LabelledTexts
from training.distributed import DistributedContext
from training.evaluation import compute_metrics
from training.model import EncoderClassifier


@dataclass(frozen=True)
class Fitted:
    """What ``fit`` returned.

    Attributes:
        model: The fine-tuned classifier, in eval mode on the training device.
        tokenizer: Its tokenizer.
        epochs_trained: Epochs run before (early) stopping.
        best_validation_macro_f1: The kept epoch's score; ``None`` without validation.
        is_main_process: False on the other ranks under ``torchrun`` (they write nothing).
        resumed_from_step: The checkpoint's step when the run resumed one; else ``None``.
    """

    model: EncoderClassifier
    tokenizer: Any
    epochs_trained: float
    best_validation_macro_f1: float | None
    is_main_process: bool = True
    resumed_from_step: int | None = None


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
                 max_length: int, *, intensities: Mapping[str, float] | None = None,
                 typo_rate: float = 0.0, seed: int = 0) -> None:
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


def hf_training_arguments(args: TrainArguments, device: torch.device, work_dir: str,
                          has_validation: bool,
                          context: DistributedContext | None = None) -> Any:
    """Hugging Face ``TrainingArguments`` for this run (checkpoints go to ``work_dir``).

    Checkpoints are saved each epoch with the optimizer, schedule and random
    states, so that a run can resume from them (``training.checkpoints``).

    Args:
        context: The ``torchrun`` launch, whose process group ``Trainer`` then uses.
    """
    from transformers import TrainingArguments

    evaluate = "epoch" if has_validation else "no"
    use_bf16 = args.bf16
    if use_bf16 is None:
        use_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    launch: dict[str, Any] = {}
    if context is not None and context.is_distributed:
        # The group training.distributed.setup joined; Trainer only names it.
        launch = {"ddp_backend": context.backend,
                  "ddp_timeout": int(distributed.GROUP_TIMEOUT.total_seconds())}
    return TrainingArguments(
        output_dir=work_dir,
        num_train_epochs=args.epochs,
        learning_rate=args.learning_rate,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.eval_batch_size,
        warmup_steps=args.warmup_ratio,  # a float in [0, 1) is a ratio
        weight_decay=args.weight_decay,
        lr_scheduler_type="linear",
        eval_strategy=evaluate,
        save_strategy="epoch",
        save_total_limit=2,
        save_only_model=False,
        load_best_model_at_end=has_validation,
        metric_for_best_model="macro_f1" if has_validation else None,
        greater_is_better=True,
        train_sampling_strategy="group_by_length",
        bf16=bool(use_bf16),
        use_cpu=device.type == "cpu",
        seed=args.seed,
        data_seed=args.seed,
        logging_steps=50,
        report_to="none",
        remove_unused_columns=False,
        dataloader_num_workers=0,
        **launch,
    )


@contextlib.contextmanager
def _work_dir(checkpoints: CheckpointPlan | None) -> Iterator[str]:
    """The checkpoint directory; a temporary one when the caller plans none."""
    if checkpoints is not None:
        yield str(checkpoints.directory)
        return
    with tempfile.TemporaryDirectory(prefix="checkpoints-") as work_dir:
        yield work_dir


def fit(model: EncoderClassifier, tokenizer: Any, labels: Sequence[str],
        train_set: LabelledTexts, validation_set: LabelledTexts, args: TrainArguments,
        device: torch.device, *, intensities: Mapping[str, float] | None = None,
        checkpoints: CheckpointPlan | None = None,
        context: DistributedContext | None = None) -> Fitted:
    """Fine-tunes with Hugging Face's ``Trainer``; keeps the best validation epoch.

    Args:
        model: The classifier with its fresh head (``training.model.build_model``).
        tokenizer: Its tokenizer.
        labels: Label names by id.
        train_set: What it is fitted on.
        validation_set: What selects the epoch and stops early; may be empty.
        args: The run's arguments.
        device: Where it trains.
        intensities: Intensity target by text, for the intensity head.
        checkpoints: Where checkpoints go, and the one to resume from
            (``training.checkpoints.plan``); ``None`` keeps them in a temporary
            directory, deleted afterwards.
        context: The ``torchrun`` launch (``training.distributed.setup``);
            ``None`` is a single process.

    Raises:
        TrainingStopped: ``checkpoints.stop_after_steps`` steps were trained.
    """
    from transformers import DataCollatorWithPadding, EarlyStoppingCallback

    from training import callbacks as hooks

    labels = list(labels)
    ids = {label: i for i, label in enumerate(labels)}
    intensities = intensities or None
    train = TokenizedDataset(train_set, tokenizer, ids, args.max_length,
                             intensities=intensities, typo_rate=args.typo_augmentation,
                             seed=args.seed)
    validation = None
    if len(validation_set):
        validation = TokenizedDataset(validation_set, tokenizer, ids, args.max_length,
                                      intensities=intensities)
    callbacks = []
    if validation is not None and args.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(args.early_stopping_patience))
    context = context or DistributedContext()
    resume_from = checkpoints.resume_from if checkpoints is not None else None
    if checkpoints is not None and checkpoints.every_steps:
        callbacks.append(hooks.StepCheckpoints(checkpoints.every_steps))
    if checkpoints is not None and checkpoints.stop_after_steps:
        callbacks.append(hooks.StopAfterSteps(checkpoints.stop_after_steps))
    recorder = None
    if distributed.report_dir() is not None:
        train = hooks.RecordingDataset(train)
        recorder = hooks.Recorder(train)
        callbacks.append(recorder)

    def metrics(prediction: Any) -> dict[str, float]:
        predictions = prediction.predictions
        # With the intensity head the model returns (logits, intensity).
        logits = torch.as_tensor(predictions[0] if isinstance(predictions, tuple)
                                 else predictions)
        probabilities = torch.softmax(logits.float(), dim=-1).numpy()
        summary = compute_metrics(prediction.label_ids, probabilities, labels)
        return {"accuracy": summary["accuracy"], "macro_f1": summary["macro_f1"]}

    with _work_dir(checkpoints) as work_dir:
        trainer = hooks.ShardingTrainer(
            model=model,
            args=hf_training_arguments(args, device, work_dir, validation is not None, context),
            train_dataset=train,
            eval_dataset=validation,
            data_collator=DataCollatorWithPadding(tokenizer),
            compute_metrics=metrics if validation is not None else None,
            callbacks=callbacks,
        )
        try:
            trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
        finally:  # a stopped run reports what it trained too
            if recorder is not None:
                distributed.write_report(context, recorder.report(trainer) | {
                    "resumed_from_step": checkpoints.resume_step if checkpoints else None})
    # Trainer trains ``model`` in place (and has reloaded the best epoch into it).
    return Fitted(model.to(device).eval(), tokenizer,
                  epochs_trained=round(float(trainer.state.epoch or 0), 2),
                  best_validation_macro_f1=trainer.state.best_metric,
                  is_main_process=trainer.is_world_process_zero(),
                  resumed_from_step=checkpoints.resume_step if checkpoints else None)
