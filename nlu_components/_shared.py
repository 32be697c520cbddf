"""Pure helpers shared by the components: config parsing, artifact handling.

No torch or transformers here: they are imported by the components inside
``train()``/``load()``, so that importing a component (which Rasa does for
every ``rasa`` command) stays cheap.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import TEXT

# The artifact's helpers have one owner, training.artifact (torch-free, so cheap
# to import here); the components call them through this module ("as" re-exports).
from training.artifact import (
    BACKENDS,
    WEIGHT_FILES,
    ArtifactInfo,
    check_checkpoint,
    check_task,
    onnx_path,
)
from training.artifact import artifact_fingerprint as artifact_fingerprint
from training.artifact import copy_artifact as copy_artifact
from training.exceptions import TrainingError, WrongTaskError, first_line

ConfigT = TypeVar("ConfigT")
logger = logging.getLogger(__name__)

# Keys Rasa itself may add to a component's config.
_RASA_KEYS = frozenset({"name", "finetuning_epoch_fraction"})


def invalid(component: str, key: str, value: object, fix: str) -> InvalidConfigException:
    """An ``InvalidConfigException`` naming the component, key, value and fix."""
    return InvalidConfigException(f"{component}: '{key}: {value!r}' is invalid; {fix}.")


def parse_config(config_class: type[ConfigT], config: Mapping[str, Any],
                 component: str) -> ConfigT:
    """Turns Rasa's merged config dict into the component's frozen dataclass.

    Unknown keys are refused (they are usually typos that would otherwise be
    ignored silently); values are checked by the dataclass's ``__post_init__``.
    """
    fields = {field.name for field in dataclasses.fields(config_class)}
    unknown = sorted(set(config) - fields - _RASA_KEYS)
    if unknown:
        raise InvalidConfigException(
            f"{component}: unknown option(s) {', '.join(unknown)}; "
            f"the options are: {', '.join(sorted(fields))}."
        )
    return config_class(**{key: value for key, value in config.items() if key in fields})


def default_config(config_class: type) -> dict[str, Any]:
    """``get_default_config()`` from a component's frozen config dataclass.

    The dataclass is the one home of every default; tuples become lists, as
    they are written in ``config.yml``.
    """
    defaults: dict[str, Any] = {}
    for field in dataclasses.fields(config_class):
        value = field.default
        if value is dataclasses.MISSING and field.default_factory is not dataclasses.MISSING:
            value = field.default_factory()
        defaults[field.name] = list(value) if isinstance(value, tuple) else value
    return defaults


def check_type(component: str, key: str, value: object, types: type | tuple[type, ...],
               fix: str) -> None:
    """Raises ``InvalidConfigException`` unless ``value`` is of ``types`` (bools are not ints)."""
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise invalid(component, key, value, fix)
    if not isinstance(value, types):
        raise invalid(component, key, value, fix)


def to_number(component: str, key: str, value: object) -> float:
    """A float from an int, a float or a numeric string (YAML reads ``1e-4`` as a string)."""
    if not isinstance(value, bool):
        try:
            return float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            pass
    raise invalid(component, key, value, "give a number")


def resolve_path(path: str | Path) -> Path:
    """A config path, relative to the directory Rasa runs in (the project root)."""
    return Path(path).expanduser().resolve()


def checked_artifact(component: str, model_path: str, task: str) -> tuple[Path, ArtifactInfo]:
    """Resolves ``model_path`` and reads its ``ArtifactInfo``, refusing other tasks.

    Raises:
        InvalidConfigException: naming ``model_path``, what is wrong and how to train one.
    """
    source = resolve_path(model_path)
    try:
        info = ArtifactInfo.read(source)
        check_checkpoint(source, role="artifact")
        check_task(info, task, source)
    except WrongTaskError as error:
        raise invalid(component, "model_path", model_path,
                      f"it holds a {error.found} model; train one with "
                      f"`python -m training {task}`") from None
    except TrainingError as error:
        raise InvalidConfigException(
            f"{component}: 'model_path: {model_path}' cannot be used: {error}. "
            f"Train one with `python -m training {task}`."
        ) from None
    return source, info


def include_shared_weights(component: str, model_path: str, copy: Path, source: Path) -> None:
    """Makes the stored copy of an artifact that shares its word embeddings stand alone.

    Raises:
        InvalidConfigException: the base checkpoint it shares them with is missing or
            is not the one it was trained with.
    """
    from training.model import include_shared_weights  # torch: at training time only

    try:
        include_shared_weights(copy, source)
    except TrainingError as error:
        raise InvalidConfigException(
            f"{component}: 'model_path: {model_path}' cannot be used: {error}.") from None


def check_serving(component: str, backend: object, num_threads: object) -> None:
    """Validates the ``backend`` and ``num_threads`` options shared by the components."""
    if backend not in BACKENDS:
        raise invalid(component, "backend", backend, f"use one of {', '.join(BACKENDS)}")
    if num_threads is not None:
        check_type(component, "num_threads", num_threads, int,
                   "give a whole number of threads, or null for the library's default")
        if num_threads < 1:
            raise invalid(component, "num_threads", num_threads, "use 1 or more")


def prepare_serving(component: str, directory: Path, backend: str) -> None:
    """Adds the int8 ONNX model to a stored artifact unless the backend is ``torch``.

    With ``auto`` a failed export is logged and serving falls back to torch; with
    ``onnx`` it is an error, and the stored artifact then keeps no PyTorch weights:
    ``onnx`` never reads them, and Rasa gzips the model archive on every ``rasa
    train`` and unpacks it on every start (the multilingual encoder's weights are
    225 MB in float16, against 113 MB for its int8 ONNX model).
    """
    if backend == "torch":
        return
    from training.export import export_onnx  # torch: only when serving with ONNX

    if not onnx_path(directory).is_file():
        try:
            export_onnx(directory)
        except TrainingError as error:
            if backend == "onnx":
                raise invalid(component, "backend", backend,
                              f"the ONNX export failed ({error}); use torch or auto") from None
            logger.warning("%s: serving with torch, the ONNX export failed: %s", component,
                           error)
            return
    if backend == "onnx":
        for name in WEIGHT_FILES:
            (directory / name).unlink(missing_ok=True)


class ModelRefused(SystemExit):
    """A stored model that cannot be served: ``rasa run`` stops, naming the file.

    A ``SystemExit`` on purpose: Rasa 3.6's ``load_agent`` catches every
    ``Exception`` while loading a model, logs it and serves on without one,
    which would answer customers with nothing or with wrong intents.
    """


def load_predictor(component: str, model_storage: Any, resource: Any, device: str,
                   task: str, backend: str = "torch", num_threads: int | None = None) -> Any:
    """Loads the artifact stored in Rasa's model by ``train()``, once per server start.

    Raises:
        ModelRefused: the artifact is missing, truncated or of another task; its
            message names the file and says to run ``rasa train`` again.
    """
    from training.predict import Predictor

    try:
        with model_storage.read_from(resource) as directory:
            return Predictor.load(directory, device=device, expected_task=task,
                                  backend=backend, num_threads=num_threads)
    except Exception as error:  # noqa: BLE001 - any unreadable file refuses the model
        message = (f"{component}: refusing to serve; the {task} model stored in the Rasa "
                   f"model (components/{resource.name}) cannot be loaded: "
                   f"{first_line(error)}. Run `rasa train` again.")
        logger.critical(message)
        raise ModelRefused(message) from error


def message_texts(messages: list[Any]) -> list[str]:
    """The texts to classify; a message without text is classified as empty."""
    return [message.get(TEXT) or "" for message in messages]


_hook_warning_given = False


def warn_if_not_installed(component: str) -> None:
    """One warning per process when Rasa was started without the start-up hook
    (``nlu_components.startup.install``); called when a model is loaded."""
    global _hook_warning_given
    from cs_core.privacy import masks_all_records

    if _hook_warning_given or masks_all_records():
        return
    _hook_warning_given = True
    logger.warning("%s: Rasa was started without the start-up hook, so personal data is "
                   "not masked in its log and the action timeout is Rasa's 300 s; start it "
                   "with `python -m bot.serve` (same options as `rasa run`)", component)
