"""Command line: ``python -m training intent|sentiment|evaluate``.

Every expected failure (``TrainingError``) is one line on stderr and exit code 2;
a run stopped on purpose by ``--stop-after-steps`` says so and exits with 3.
Under ``torchrun --nproc_per_node N -m training ...`` only rank 0 logs at info
level and prints the summary (``training.distributed``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from training import distributed
from training.arguments import (
    DEVICES,
    MAX_LENGTH_MAX,
    MAX_LENGTH_MIN,
    POOLINGS,
    CheckpointArguments,
    DataArguments,
    TrainArguments,
)
from training.data import FORMATS
from training.exceptions import ArgumentsError, DataError, TrainingError, TrainingStopped
from training.ood import METHODS as OOD_METHODS

logger = logging.getLogger("training")

EXIT_USAGE = 2
# A run stopped by --stop-after-steps: not a failure, but no artifact either.
EXIT_STOPPED = 3

_EPILOG = """examples:
  python -m training intent --data data/nlu.yml --output models/intent
  python -m training intent --data ../shared/datasets/banking77/train.csv \\
      --label-column category --test-data ../shared/datasets/banking77/test.csv \\
      --output models/banking77
  python -m training sentiment --data ../shared/datasets/sst2/train.tsv \\
      --text-column sentence --label-map 0=negative,1=positive \\
      --test-data ../shared/datasets/sst2/dev.tsv --output models/sst2
  python -m training evaluate --model models/banking77 \\
      --data ../shared/datasets/banking77/test.csv --label-column category
  torchrun --nproc_per_node 2 -m training intent --data data/ --output models/intent
  python -m training intent --data data/ --output models/intent --resume
"""


def parse_label_map(value: str) -> dict[str, str]:
    """``0=negative,1=positive`` -> ``{"0": "negative", "1": "positive"}``."""
    mapping = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        source, sep, target = item.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise argparse.ArgumentTypeError(
                f"'{item}' is not OLD=NEW; write e.g. 0=negative,1=positive"
            )
        mapping[source.strip()] = target.strip()
    return mapping


def _add_data_options(parser: argparse.ArgumentParser, *, text_default: str,
                      label_default: str) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--data", required=True, type=Path, metavar="PATH",
                       help="labelled texts: Rasa NLU YAML (a file, or a directory such as "
                            "data/), CSV, TSV or JSONL")
    group.add_argument("--format", dest="data_format", default="auto",
                       choices=FORMATS,
                       help="format of --data and --test-data; auto guesses from the "
                            "extension (default: %(default)s)")
    group.add_argument("--text-column", default=text_default, metavar="NAME",
                       help="CSV/TSV column or JSONL key of the text (default: %(default)s)")
    group.add_argument("--label-column", default=label_default, metavar="NAME",
                       help="CSV/TSV column or JSONL key of the label (default: %(default)s)")
    group.add_argument("--label-map", type=parse_label_map, default={}, metavar="OLD=NEW,...",
                       help="rename labels after loading, e.g. 0=negative,1=positive")
    group.add_argument("--intensity-column", metavar="NAME",
                       help="sentiment: CSV/TSV column or JSONL key with how strongly each text "
                            "expresses its sentiment (0 neutral .. N strongest); trains the "
                            "calibrated intensity output")


def _add_train_options(parser: argparse.ArgumentParser, defaults: TrainArguments) -> None:
    group = parser.add_argument_group("evaluation")
    group.add_argument("--test-data", type=Path, metavar="PATH",
                       help="held-out test set in the same format, evaluated after training")
    group.add_argument("--validation-data", type=Path, metavar="PATH",
                       help="validation set in the same format; replaces --validation-split")
    group.add_argument("--validation-split", type=float, default=0.1, metavar="FRACTION",
                       help="share of --data held out (stratified) for early stopping, model "
                            "selection and the fallback threshold; 0 uses all for training "
                            "(default: %(default)s)")
    group = parser.add_argument_group("model")
    group.add_argument("--base-model", metavar="DIR",
                       help="Hugging Face encoder checkpoint directory (default: the packaged "
                            "all-MiniLM-L6-v2)")
    group.add_argument("--output", required=True, type=Path, metavar="DIR",
                       help="artifact directory to write")
    group.add_argument("--overwrite", action="store_true",
                       help="replace --output when it already exists")
    group.add_argument("--pooling", choices=POOLINGS, default=defaults.pooling,
                       help="how token embeddings become one vector (default: %(default)s)")
    group.add_argument("--max-length", type=int, default=defaults.max_length, metavar="N",
                       help=f"tokens kept per text, {MAX_LENGTH_MIN} to {MAX_LENGTH_MAX} "
                            "(default: %(default)s)")
    group.add_argument("--dropout", type=float, default=defaults.dropout, metavar="P",
                       help="dropout before the head (default: %(default)s)")
    group = parser.add_argument_group("optimisation")
    group.add_argument("--epochs", type=float, default=defaults.epochs, metavar="N",
                       help="passes over the training data (default: %(default)s)")
    group.add_argument("--learning-rate", type=float, default=defaults.learning_rate,
                       metavar="LR", help="peak AdamW learning rate (default: %(default)s)")
    group.add_argument("--batch-size", type=int, default=defaults.batch_size, metavar="N",
                       help="training batch size per device (default: %(default)s)")
    group.add_argument("--eval-batch-size", type=int, default=defaults.eval_batch_size,
                       metavar="N", help="evaluation batch size (default: %(default)s)")
    group.add_argument("--warmup-ratio", type=float, default=defaults.warmup_ratio,
                       metavar="FRACTION",
                       help="share of steps warming the learning rate up, then linear decay "
                            "(default: %(default)s)")
    group.add_argument("--weight-decay", type=float, default=defaults.weight_decay,
                       metavar="W", help="AdamW weight decay (default: %(default)s)")
    group.add_argument("--early-stopping-patience", type=int,
                       default=defaults.early_stopping_patience, metavar="N",
                       help="epochs without validation improvement before stopping; 0 never "
                            "stops early (default: %(default)s)")
    group.add_argument("--class-weights", action="store_true",
                       help="weight the loss by inverse label frequency (imbalanced data)")
    group.add_argument("--label-smoothing", type=float, default=defaults.label_smoothing,
                       metavar="FRACTION",
                       help="spread this share of each target over all labels, a regulariser "
                            "for many labels (default: %(default)s)")
    group.add_argument("--typo-augmentation", type=float, default=defaults.typo_augmentation,
                       metavar="P", help="probability that a training example is drawn with "
                       "fresh typos each epoch (default: %(default)s)")
    group.add_argument("--no-spelling-correction", dest="spelling_correction",
                       action="store_false",
                       help="do not correct unknown words towards the training words before "
                            "the encoder (training.spelling)")
    group.add_argument("--freeze-word-embeddings", action="store_true",
                       help="keep the encoder's word-embedding matrix as pretrained (large "
                            "vocabularies such as multilingual-e5's train much faster)")
    group.add_argument("--seed", type=int, default=defaults.seed,
                       help="seed of the split, the head and the data order (default: %(default)s)")
    group = parser.add_argument_group("calibration and out-of-scope detection")
    group.add_argument("--no-calibrate", dest="calibrate", action="store_false",
                       help="do not fit a logit temperature on the validation data")
    group.add_argument("--out-of-scope", default=defaults.out_of_scope,
                       choices=(*OOD_METHODS, "none"),
                       help="intent: out-of-scope detector fitted on the training embeddings "
                            "(default: %(default)s)")
    group.add_argument("--out-of-scope-known-recall", type=float,
                       default=defaults.out_of_scope_known_recall, metavar="SHARE",
                       help="share of known validation messages the detector accepts "
                            "(default: %(default)s)")
    group.add_argument("--half-precision", action="store_true",
                       help="store the encoder in float16 (half the size; loaded as float32)")
    group = parser.add_argument_group("checkpoints and resuming")
    group.add_argument("--checkpoint-dir", type=Path, metavar="DIR",
                       help="where resumable checkpoints go (default: OUTPUT.checkpoints beside "
                            "--output; deleted once the artifact is written)")
    group.add_argument("--checkpoint-steps", type=int, default=0, metavar="N",
                       help="also save a checkpoint every N optimizer steps (default: each "
                            "epoch only)")
    group.add_argument("--resume", action="store_true",
                       help="continue from the latest checkpoint of an interrupted run with the "
                            "same arguments and data (refused, naming the differences, "
                            "otherwise); without one, train from the start")
    group.add_argument("--keep-checkpoints", action="store_true",
                       help="keep the checkpoints once the artifact is written")
    group.add_argument("--stop-after-steps", type=int, metavar="N",
                       help="testing resumption: save a checkpoint after N optimizer steps and "
                            f"stop as if interrupted (exit code {EXIT_STOPPED}, no artifact)")
    group = parser.add_argument_group("hardware")
    group.add_argument("--device", choices=DEVICES, default="auto",
                       help="auto uses CUDA when a GPU is present (default: %(default)s); "
                            "for several GPUs (or CPU processes) launch with torchrun "
                            "--nproc_per_node N: data-parallel, rank 0 writes the artifact")
    group.add_argument("--bf16", dest="bf16", action="store_true", default=None,
                       help="force bf16 autocast (default: on when the GPU supports it)")
    group.add_argument("--no-bf16", dest="bf16", action="store_false",
                       help="train in float32 on the GPU")
    group.add_argument("--threads", dest="num_threads", type=int, metavar="N",
                       help="CPU threads for torch (default: torch's choice)")


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m training`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Fine-tune BERT-family encoders into intent and sentiment classifiers "
                    "for the Rasa components, and evaluate them. Writes an artifact "
                    "directory: save_pretrained weights and tokenizer, "
                    "classifier_head.safetensors, classifier.json (labels, max length, "
                    "versions) and results.json with confusion-matrix PNGs.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for task, text, label, help_text in (
        ("intent", "text", "label", "train an intent classifier"),
        ("sentiment", "text", "label",
         "train a sentiment classifier (labels negative, neutral, positive)"),
    ):
        sub = commands.add_parser(task, help=help_text, description=help_text + ".")
        _add_data_options(sub, text_default=text, label_default=label)
        _add_train_options(sub, TrainArguments(task=task))
    sub = commands.add_parser(
        "evaluate", help="evaluate an artifact on labelled data",
        description="Evaluate an artifact on labelled data: accuracy, macro-F1, per-label "
                    "report, calibration error, fallback threshold and a confusion matrix.",
    )
    sub.add_argument("--model", required=True, type=Path, metavar="DIR",
                     help="artifact directory written by the intent or sentiment command")
    _add_data_options(sub, text_default="text", label_default="label")
    sub.add_argument("--output", type=Path, metavar="DIR",
                     help="where to write results.json and the PNG "
                          "(default: an evaluation/ folder inside --model)")
    sub.add_argument("--batch-size", type=int, default=64, metavar="N",
                     help="texts per forward pass (default: %(default)s)")
    sub.add_argument("--device", choices=DEVICES, default="auto",
                     help="where to run (default: %(default)s)")
    return parser


def run_training(args: argparse.Namespace) -> dict:
    """Trains as the parsed options say and returns the summary that is printed."""
    from training.trainer import ClassifierTrainer

    data_args = DataArguments(
        path=args.data, data_format=args.data_format, text_column=args.text_column,
        label_column=args.label_column, label_map=args.label_map, test_path=args.test_data,
        validation_split=args.validation_split, validation_path=args.validation_data,
        intensity_column=args.intensity_column,
    )
    train_args = TrainArguments(
        task=args.command, output_dir=args.output, base_model=args.base_model,
        overwrite=args.overwrite, epochs=args.epochs, learning_rate=args.learning_rate,
        batch_size=args.batch_size, eval_batch_size=args.eval_batch_size,
        max_length=args.max_length, warmup_ratio=args.warmup_ratio,
        weight_decay=args.weight_decay, dropout=args.dropout, pooling=args.pooling,
        early_stopping_patience=args.early_stopping_patience,
        class_weights=args.class_weights, label_smoothing=args.label_smoothing,
        seed=args.seed, device=args.device, bf16=args.bf16,
        num_threads=args.num_threads, typo_augmentation=args.typo_augmentation,
        spelling_correction=args.spelling_correction,
        freeze_word_embeddings=args.freeze_word_embeddings,
        calibrate=args.calibrate, out_of_scope=args.out_of_scope,
        out_of_scope_known_recall=args.out_of_scope_known_recall,
        half_precision=args.half_precision,
    )
    checkpoints = CheckpointArguments(
        directory=args.checkpoint_dir, every_steps=args.checkpoint_steps, resume=args.resume,
        keep=args.keep_checkpoints, stop_after_steps=args.stop_after_steps,
    )
    result = ClassifierTrainer(data_args, train_args, checkpoints=checkpoints).run()
    return {"output": str(result.output_dir), **result.info.metrics,
            "timing_seconds": result.step_seconds}


def run_evaluation(args: argparse.Namespace) -> dict:
    """Evaluates an artifact and writes its results; returns the printed summary."""
    from training.data import load_labelled
    from training.evaluation import compute_metrics, write_results
    from training.predict import Predictor

    if args.batch_size < 1:
        raise ArgumentsError(f"batch_size={args.batch_size!r} is invalid: use 1 or more")
    data_args = DataArguments(path=args.data, data_format=args.data_format,
                              text_column=args.text_column, label_column=args.label_column,
                              label_map=args.label_map)
    predictor = Predictor.load(args.model, device=args.device)
    dataset = load_labelled(data_args.path, data_args, "evaluation data")
    label_ids = {label: i for i, label in enumerate(predictor.labels)}
    unknown = sorted(set(dataset.labels) - set(label_ids))
    if unknown:
        raise DataError(f"labels unknown to the model: {', '.join(unknown[:10])} "
                        "(use --label-map to rename them)")
    started = time.perf_counter()
    probabilities = predictor.predict_proba(list(dataset.texts), batch_size=args.batch_size)
    seconds = time.perf_counter() - started
    metrics = compute_metrics([label_ids[label] for label in dataset.labels],
                              probabilities.numpy(), predictor.labels)
    output = args.output or args.model / "evaluation"
    output.mkdir(parents=True, exist_ok=True)
    results = {"model": str(args.model), "data": str(args.data), "evaluation": metrics,
               "prediction_seconds": round(seconds, 3)}
    path = write_results(output, results, predictor.labels, title_prefix=predictor.info.task)
    return {"results": str(path), "examples": metrics["examples"],
            "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
            "ece": metrics["ece"], "fallback": metrics["fallback"]}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        context = distributed.detect()
    except ArgumentsError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    level = logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(
        # The other torchrun ranks repeat rank 0's log: their warnings are enough.
        level=level if context.is_main else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Errors can be one rank's own, so every rank reports them; naming the rank.
    prefix = f"rank {context.rank}: " if context.is_distributed else ""
    if args.command == "evaluate" and not context.is_main:
        return 0  # evaluation is not data-parallel: rank 0 evaluates, writes and prints
    try:
        # stdout carries only the result JSON; Trainer's progress and logs go to stderr.
        with contextlib.redirect_stdout(sys.stderr):
            summary = run_evaluation(args) if args.command == "evaluate" else run_training(args)
    except TrainingStopped as stopped:
        if context.is_main:
            print(f"stopped: {stopped}", file=sys.stderr)
        return EXIT_STOPPED
    except TrainingError as error:
        print(f"{prefix}error: {error}", file=sys.stderr)
        return EXIT_USAGE
    if context.is_main:
        print(json.dumps(summary, indent=2))
    return 0
