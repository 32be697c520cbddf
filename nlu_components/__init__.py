"""Rasa components over the classifiers of ``training``, and dialogue policies.

Import cost is kept low: torch and transformers load inside ``train()`` and
``load()``, and nothing here imports the action server (``actions``): the two
servers share only ``cs_core``. One component per module:

- ``TransformerIntentClassifier``: fine-tuned intent classifier
- ``LanguageIdentifier``: adds ``language``; other languages get the fallback
- ``SentimentAnalyzer``: adds ``sentiment`` to every message
- ``policies.SentimentEscalationPolicy``: hands angry customers to a human
- ``policies.ActionFailurePolicy``: answers when the action server failed

``nlu_components.startup.install`` is the Rasa server's start-up hook.
"""

from __future__ import annotations

from nlu_components.language_identifier import LanguageIdentifier
from nlu_components.policies import ActionFailurePolicy, SentimentEscalationPolicy
from nlu_components.sentiment_analyzer import SentimentAnalyzer
from nlu_components.transformer_intent_classifier import TransformerIntentClassifier

# ActionFailurePolicy and SentimentEscalationPolicy stay importable from here, so
# that config.yml files naming nlu_components.<Policy> keep working.
__all__ = ["ActionFailurePolicy", "LanguageIdentifier", "SentimentAnalyzer",
           "SentimentEscalationPolicy", "TransformerIntentClassifier"]
