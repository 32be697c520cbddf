"""Pure helpers shared by the components: config parsing, artifact handling.

No torch or transformers here: they are imported by the components inside
``train()``/``load()``, so that importing a component (which Rasa does for
every ``rasa`` command) stays cheap.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from rasa.shared.exceptions import InvalidConfigException

ConfigT = TypeVar("ConfigT")

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


def training_error_to_config_error(component: str, key: str, value: object,
                                   error: Exception) -> InvalidConfigException:
    """Rewords a ``training`` error about a configured path as a config error."""
    return InvalidConfigException(f"{component}: '{key}: {value}' cannot be used: {error}")
