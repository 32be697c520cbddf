"""Pure helpers shared by the components: config parsing, artifact handling.

No torch or transformers here: they are imported by the components inside
``train()``/``load()``, so that importing a component (which Rasa does for
every ``rasa`` command) stays cheap.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import TEXT

ConfigT = TypeVar("ConfigT")
logger = logging.getLogger(__name__)

# Keys Rasa itself may add to a component's config.
_RASA_KEYS = frozenset({"name", "finetuning_epoch_fraction"})

# The files that make up an artifact (see training.model); enough to detect change.
ARTIFACT_JSON = "classifier.json"


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


def artifact_fingerprint(directory: str | Path) -> str:
    """SHA-256 over every file of an artifact (names and content).

    Used in ``fingerprint_addon`` so that a retrained artifact at the same
    path is not served from Rasa's training cache.
    """
    directory = Path(directory)
    digest = hashlib.sha256()
    if not directory.is_dir():
        return f"missing:{directory}"
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(directory)).encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def copy_artifact(source: Path, target: Path) -> None:
    """Copies an artifact's files into Rasa's model storage directory."""
    for path in source.iterdir():
        if path.is_file():
            shutil.copy2(path, target / path.name)
        elif path.is_dir() and not path.name.startswith("."):
            shutil.copytree(path, target / path.name, dirs_exist_ok=True)


def checked_artifact(component: str, model_path: str, task: str) -> tuple[Path, Any]:
    """Resolves ``model_path`` and reads its ``ArtifactInfo``, refusing other tasks.

    Raises:
        InvalidConfigException: naming ``model_path``, what is wrong and how to train one.
    """
    from training.exceptions import TrainingError
    from training.model import ArtifactInfo, check_checkpoint

    source = resolve_path(model_path)
    try:
        info = ArtifactInfo.read(source)
        check_checkpoint(source, role="artifact")
    except TrainingError as error:
        raise InvalidConfigException(
            f"{component}: 'model_path: {model_path}' cannot be used: {error}. "
            f"Train one with `python -m training {task}`."
        ) from None
    if info.task != task:
        raise invalid(component, "model_path", model_path,
                      f"it holds a {info.task} model; train one with `python -m training {task}`")
    return source, info


BACKENDS = ("auto", "onnx", "torch")


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
    ``onnx`` it is an error.
    """
    if backend == "torch":
        return
    from training.exceptions import TrainingError
    from training.export import export_onnx, onnx_path

    if onnx_path(directory).is_file():
        return
    try:
        export_onnx(directory)
    except TrainingError as error:
        if backend == "onnx":
            raise invalid(component, "backend", backend,
                          f"the ONNX export failed ({error}); use torch or auto") from None
        logger.warning("%s: serving with torch, the ONNX export failed: %s", component, error)


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
                   f"{_first_line(error)}. Run `rasa train` again.")
        logger.critical(message)
        raise ModelRefused(message) from error


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def message_texts(messages: list[Any]) -> list[str]:
    """The texts to classify; a message without text is classified as empty."""
    return [message.get(TEXT) or "" for message in messages]
