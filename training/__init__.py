"""Fine-tune BERT-family encoders into intent and sentiment classifiers.

Depends on torch and transformers only (never on Rasa), so it runs on a
training machine without Rasa. Modules:

- ``arguments``: validated dataclasses of a run, and the shared limits
- ``data``: loading Rasa NLU YAML, CSV/TSV and JSONL; cleaning; splitting
- ``artifact``: the artifact contract (layout, ``classifier.json``, checks); torch-free
- ``model``: the pooled classifier, writing and loading its weights
- ``trainer``: the training recipe, step by step; ``fitting``: its Hugging Face ``Trainer`` part
  (``callbacks``: what it adds to ``Trainer``)
- ``distributed``: data-parallel training under ``torchrun`` (rank 0 writes the artifact)
- ``checkpoints``: resumable checkpoints, and refusing to resume another run's
- ``evaluation``: metrics, the fallback threshold, the written report
- ``calibration``, ``ood``, ``augment``: temperature and isotonic maps, the
  out-of-scope detectors, typo augmentation
- ``predict``: batched, thread-safe inference for the Rasa components
- ``export``: the int8 ONNX model for CPU serving
- ``cli``: ``python -m training intent|sentiment|evaluate``
- ``exceptions``: the error hierarchy
"""

from __future__ import annotations

__version__ = "0.2.0"
