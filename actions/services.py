"""What the actions are built with, passed in rather than read from globals.

rasa-sdk creates actions without arguments; they then share the default
``Services``, built once per action-server process from ``Settings.from_env()``:
the SQL backend, the FAQ retriever (its embeddings computed here, at start-up)
and the ``/model/parse`` client. Tests construct actions with their own.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache

from actions.backend import OrderBackend
from actions.db import SqlBackend
from actions.exceptions import ActionServerError
from actions.faq import (
    FaqRetriever,
    LazyFaqRetriever,
    SentenceTransformerEncoder,
    chinese_retriever,
    load_knowledge_base,
)
from actions.nlu_client import RasaParseClient, TextClassifier
from actions.settings import Settings

logger = logging.getLogger(__name__)

_ORDER_ID = re.compile(r"(?<!\d)\d{5}(?!\d)")


@dataclass
class Services:
    """The action server's dependencies.

    Attributes:
        settings: The configuration.
        backend: The shop database.
        faq: The FAQ retriever; ``None`` when it could not be built (the FAQ
            action then offers a human).
        faq_zh: The Chinese FAQ retriever, built at the first Chinese question;
            ``None`` (or one that can't be built) answers like ``faq`` = ``None``.
        classifier: Classifies free text through the Rasa server.
    """

    settings: Settings = field(default_factory=Settings)
    backend: OrderBackend | None = None
    faq: FaqRetriever | None = None
    classifier: TextClassifier | None = None
    faq_zh: LazyFaqRetriever | FaqRetriever | None = None

    def __post_init__(self) -> None:
        if self.backend is None:
            self.backend = SqlBackend(self.settings.database_url,
                                      seed=self.settings.seed_demo_data)
        if self.classifier is None:
            self.classifier = RasaParseClient(self.settings.rasa_url,
                                              jwt_secret=self.settings.rasa_jwt_secret,
                                              timeout_s=self.settings.parse_timeout_s)


def build_services(settings: Settings) -> Services:
    """Services for ``settings``, with the English FAQ embeddings computed now (the
    Chinese ones at the first Chinese question)."""
    faq = faq_zh = None
    try:
        entries = load_knowledge_base(settings.knowledge_base)
        faq_zh = LazyFaqRetriever(lambda: chinese_retriever(
            entries, settings.faq_model_zh, settings.faq_threshold_zh), "Chinese")
        faq = FaqRetriever(entries, SentenceTransformerEncoder(settings.faq_model),
                           settings.faq_threshold)
    except (ActionServerError, OSError, ValueError) as error:
        logger.error("FAQ answers are off: %s", error)
    return Services(settings=settings, faq=faq, faq_zh=faq_zh)


@lru_cache(maxsize=1)
def default_services() -> Services:
    """One shared instance per action-server process."""
    settings = Settings.from_env()
    logger.info("action server settings: %s", settings.redacted())
    return build_services(settings)


def parse_order_id(text: object) -> str | None:
    """The single 5-digit order number in ``text``, or ``None``.

    >>> parse_order_id("it's 48213, I think")
    '48213'
    >>> parse_order_id("1234") is None
    True
    """
    if text is None:
        return None
    found = _ORDER_ID.findall(str(text))
    return found[0] if len(set(found)) == 1 else None
