"""Fine-tune BERT-family encoders into intent and sentiment classifiers.

Depends on torch and transformers only (never on Rasa), so it runs on a
training machine without Rasa. Modules:

- ``arguments``: validated dataclasses of a run
- ``data``: loading Rasa NLU YAML, CSV/TSV and JSONL; cleaning; splitting
- ``model``: the pooled classifier and the artifact contract
- ``trainer``: the training recipe on Hugging Face's ``Trainer``
- ``evaluation``: metrics, calibration, the fallback threshold
- ``predict``: batched, thread-safe inference for the Rasa components
- ``cli``: ``python -m training intent|sentiment|evaluate``
- ``exceptions``: the error hierarchy
"""

from __future__ import annotations

__version__ = "0.1.0"
