"""ONNX export of an artifact, with dynamic int8 quantisation, for fast CPU serving.

``export_onnx(artifact)`` traces the fine-tuned encoder and its head into
``<artifact>/onnx/model.int8.onnx`` (``training.artifact.onnx_path``; weights of
the linear layers quantised to int8 by ONNX Runtime's ``quantize_dynamic``).
``training.predict.Predictor`` uses it when asked for the ``onnx`` backend. Needs
the ``onnx`` package (export only; serving needs ``onnxruntime``).
"""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from pathlib import Path

import torch

from training.artifact import ONNX_DIR, ONNX_EXPORT_FILE, ONNX_FP32_FILE, onnx_path
from training.exceptions import ArtifactError
from training.model import load_artifact

logger = logging.getLogger(__name__)

OPSET = 17
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class _Outputs(torch.nn.Module):
    """The classifier with positional inputs and a tuple out (what ONNX traces):
    logits, the pooled features (for the out-of-scope detectors) and, when the
    model has that head, the raw intensity."""

    def __init__(self, model: torch.nn.Module, names: tuple[str, ...]) -> None:
        super().__init__()
        self.model = model
        self.names = names
        self.output_names = ["logits", "features"] + (
            ["intensity"] if model.intensity_head is not None else [])

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        output = self.model(**dict(zip(self.names, tensors)), return_features=True)
        return tuple(output[name] for name in self.output_names)


def export_onnx(directory: str | Path, *, quantize: bool = True) -> Path:
    """Writes the artifact's ONNX model (int8 unless ``quantize`` is False).

    Returns:
        The path of the ONNX file.

    Raises:
        ArtifactError: ``onnx`` is not installed, or the export failed.
    """
    try:
        import onnx  # noqa: F401 (torch.onnx needs it)
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as error:
        raise ArtifactError(f"ONNX export needs the onnx and onnxruntime packages ({error})"
                            ) from None
    directory = Path(directory)
    model, tokenizer, info = load_artifact(directory, device="cpu")
    model.eval()
    sample = tokenizer(["an example sentence", "a second, longer example sentence"],
                       padding=True, return_tensors="pt")
    # Encoders without token types (MPNet, RoBERTa) get no such input.
    names = tuple(name for name in INPUTS if name in sample)
    wrapped = _Outputs(model, names)
    inputs = tuple(sample[name] for name in names)
    out_dir = directory / ONNX_DIR
    out_dir.mkdir(exist_ok=True)
    target = onnx_path(directory, quantized=quantize)
    axes = {0: "batch", 1: "tokens"}
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / ONNX_FP32_FILE if quantize else target
        try:
            with warnings.catch_warnings():
                # torch's exporter notes how it lowers indexing; not ours to fix.
                warnings.filterwarnings("ignore", message="Exporting aten::index",
                                        category=UserWarning)
                # The TorchScript exporter is deliberate (the torch.export one
                # needs onnxscript, not in the pinned stack); its deprecation
                # notices and tracer remarks are torch's own.
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                torch.onnx.export(
                    wrapped, inputs, str(fp32), opset_version=OPSET, dynamo=False,
                    input_names=list(names), output_names=wrapped.output_names,
                    dynamic_axes={**{name: axes for name in names},
                                  **{name: {0: "batch"} for name in wrapped.output_names}})
            if quantize:
                quantize_dynamic(str(fp32), str(target), weight_type=QuantType.QInt8,
                                 per_channel=True)
        except Exception as error:  # torch.onnx raises many kinds; name the step
            raise ArtifactError(f"ONNX export of '{directory}' failed: {error}") from error
    (out_dir / ONNX_EXPORT_FILE).write_text(json.dumps({
        "file": target.name, "quantized": quantize, "opset": OPSET,
        "labels": list(info.labels), "torch": torch.__version__}, indent=2) + "\n")
    logger.info("exported %s (%.1f MB)", target, target.stat().st_size / 2**20)
    return target
