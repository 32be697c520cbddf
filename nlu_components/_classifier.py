"""The base of the served classifiers: one lifecycle for every ``training`` artifact.

A subclass names its ``TASK`` (the artifact's task), its ``NAME`` and its
options' frozen dataclass (``CONFIG``, a ``ServingConfig``), and says what a
prediction adds to a message (``annotate``). The base gives it Rasa's
``GraphComponent`` contract:

- ``get_default_config`` derived from ``CONFIG`` (the one home of each default);
- ``create`` / ``load`` that parse the options at once, and ``load`` reads the
  artifact stored in the Rasa model, once per server start;
- ``fingerprint_addon`` over the artifact's content, so a retrained artifact at
  the same path is not taken from Rasa's cache;
- ``store_artifact``: check a ``model_path`` artifact, copy it into the Rasa
  model and add the int8 ONNX model for serving;
- ``process``: one batched prediction for all messages.

torch and transformers stay off import time: ``training.predict`` is imported
when a model is loaded.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.training_data.message import Message

from nlu_components import _shared
from training.arguments import DEVICES

logger = logging.getLogger(__name__)

ClassifierT = TypeVar("ClassifierT", bound="ServedClassifier")


@dataclass(frozen=True)
class ServingConfig:
    """Options every served classifier has.

    Attributes:
        model_path: An artifact of ``python -m training <task>``, relative to the
            project directory.
        predict_batch_size: Messages per forward pass.
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        backend: ``onnx`` runs the int8 ONNX model written at training time (6x
            faster on the CPU; measured -0.13 points on BANKING77), ``torch`` the
            PyTorch one; ``auto`` is onnx on the CPU when the export worked.
        num_threads: CPU threads per forward pass; 1 is fastest for single messages.
    """

    COMPONENT: ClassVar[str] = "ServedClassifier"
    TASK: ClassVar[str] = "intent"

    model_path: str | None = None
    predict_batch_size: int = 64
    device: str = "auto"
    backend: str = "auto"
    num_threads: int | None = 1

    def __post_init__(self) -> None:
        name = self.COMPONENT
        _shared.check_serving(name, self.backend, self.num_threads)
        if self.model_path is not None:
            _shared.check_type(name, "model_path", self.model_path, str,
                               f"give a directory path written by `python -m training {self.TASK}`")
        _shared.check_type(name, "predict_batch_size", self.predict_batch_size, int,
                           "give a whole number")
        if self.predict_batch_size < 1:
            raise _shared.invalid(name, "predict_batch_size", self.predict_batch_size,
                                  "use 1 or more")
        if self.device not in DEVICES:
            raise _shared.invalid(name, "device", self.device,
                                  f"use {', '.join(DEVICES[:-1])} or {DEVICES[-1]}")


class ServedClassifier(GraphComponent):
    """A Rasa component serving a ``training`` artifact (not registered itself)."""

    NAME: ClassVar[str]
    TASK: ClassVar[str]
    CONFIG: ClassVar[type[ServingConfig]]
    # Config keys holding artifact or checkpoint directories: their content is
    # part of the fingerprint.
    ARTIFACT_KEYS: ClassVar[tuple[str, ...]] = ("model_path",)

    @classmethod
    def get_default_config(cls) -> dict[str, Any]:
        """The options and their defaults: those of ``CONFIG`` (see its docstring)."""
        return _shared.default_config(cls.CONFIG)

    @staticmethod
    def required_packages() -> list[str]:
        """Packages imported when training or loading."""
        return ["torch", "transformers"]

    @classmethod
    def fingerprint_addon(cls, config: dict[str, Any]) -> str | None:
        """The configured artifacts' content, so a retrained one is not taken from the cache."""
        import training

        defaults = cls.get_default_config()
        parts = [f"training={training.__version__}"]
        for key in cls.ARTIFACT_KEYS:
            path = config.get(key, defaults.get(key))
            if path:
                parts.append(f"{key}={_shared.artifact_fingerprint(_shared.resolve_path(path))}")
        return ";".join(parts)

    def __init__(self, config: ServingConfig, model_storage: ModelStorage, resource: Resource,
                 predictor: Any = None) -> None:
        self.config = config
        self._model_storage = model_storage
        self._resource = resource
        self._predictor = predictor

    @classmethod
    def create(cls: type[ClassifierT], config: dict[str, Any], model_storage: ModelStorage,
               resource: Resource, execution_context: ExecutionContext) -> ClassifierT:
        """A new component, before its artifact is stored."""
        return cls(_shared.parse_config(cls.CONFIG, config, cls.NAME), model_storage, resource)

    @classmethod
    def load(cls: type[ClassifierT], config: dict[str, Any], model_storage: ModelStorage,
             resource: Resource, execution_context: ExecutionContext,
             **kwargs: Any) -> ClassifierT:
        """Loads the artifact stored in the Rasa model, once, for every message to come."""
        parsed = _shared.parse_config(cls.CONFIG, config, cls.NAME)
        _shared.warn_if_not_installed(cls.NAME)
        predictor = _shared.load_predictor(cls.NAME, model_storage, resource, parsed.device,
                                           cls.TASK, parsed.backend, parsed.num_threads)
        return cls(parsed, model_storage, resource, predictor)

    def store_artifact(self, directory: Path) -> Any:
        """Checks the ``model_path`` artifact and copies it into ``directory``.

        Returns:
            The artifact's ``ArtifactInfo``.
        """
        source, info = _shared.checked_artifact(self.NAME, self.config.model_path, self.TASK)
        _shared.copy_artifact(source, directory)
        if info.shared_weights:
            _shared.include_shared_weights(self.NAME, self.config.model_path, directory, source)
        return info

    def prepare_serving(self, directory: Path) -> None:
        """Adds the int8 ONNX model to the stored artifact (unless serving with torch)."""
        _shared.prepare_serving(self.NAME, directory, self.config.backend)

    def process(self, messages: list[Message]) -> list[Message]:
        """Annotates every message from one batched prediction."""
        if self._predictor is None or not messages:
            return messages
        texts = _shared.message_texts(messages)
        predictions = self.predict(texts)
        if predictions is not None:
            for message, text, prediction in zip(messages, texts, predictions):
                self.annotate(message, text, prediction)
        return messages

    def predict(self, texts: list[str]) -> list[Any] | None:
        """The predictions for ``texts`` (``None``: leave the messages as they are)."""
        return self._predictor.predict(texts, batch_size=self.config.predict_batch_size)

    @abstractmethod
    def annotate(self, message: Message, text: str, prediction: Any) -> None:
        """Sets what one ``training.predict.Prediction`` says on its message."""
