"""Rasa NLU components over the classifiers of ``training``.

Import cost is kept low: torch and transformers load inside ``train()`` and
``load()``. One component per module:

- ``TransformerIntentClassifier``: fine-tuned intent classifier
- ``LanguageIdentifier``: adds ``language``; other languages get the fallback
- ``SentimentAnalyzer``: adds ``sentiment`` to every message
- ``SentimentEscalationPolicy``: hands angry customers to a human (a dialogue policy)
- ``ActionFailurePolicy``: answers when the action server failed (a dialogue policy)
"""

from __future__ import annotations

from nlu_components.action_failure_policy import ActionFailurePolicy
from nlu_components.language_identifier import LanguageIdentifier
from nlu_components.sentiment_analyzer import SentimentAnalyzer
from nlu_components.sentiment_escalation_policy import SentimentEscalationPolicy
from nlu_components.transformer_intent_classifier import TransformerIntentClassifier

__all__ = ["ActionFailurePolicy", "LanguageIdentifier", "SentimentAnalyzer",
           "SentimentEscalationPolicy", "TransformerIntentClassifier"]
