"""Chinese FAQ answers: the knowledge base's Chinese texts, multilingual-e5, the fallback.

The retrieval logic runs with a small deterministic encoder; the real
multilingual-e5-small (``make multilingual-encoder``) answers a few new Chinese
questions when it is built, and is skipped otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.answers import ActionAnswerFaq
from actions.exceptions import SettingsError
from actions.faq import (
    FaqRetriever,
    LazyFaqRetriever,
    chinese_retriever,
    load_knowledge_base,
)
from actions.services import Services
from actions.settings import DEFAULT_FAQ_MODEL_ZH, DEFAULT_FAQ_THRESHOLD_ZH, Settings
from tests.actions.conftest import texts

KNOWLEDGE_BASE = Settings().knowledge_base


class CharEncoder:
    """Bag of characters, hashed into 256 dimensions and normalised: texts that share
    characters are similar. Records which texts it embedded as passages."""

    def __init__(self) -> None:
        self.passages: list[str] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        rows = np.zeros((len(texts), 256), dtype=np.float32)
        for row, text in zip(rows, texts):
            for char in text:
                row[ord(char) % 256] += 1.0
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return rows / np.where(norms == 0, 1.0, norms)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        self.passages += texts
        return self.encode(texts)


@pytest.fixture(scope="module")
def entries():
    return load_knowledge_base(KNOWLEDGE_BASE)


def test_every_entry_has_its_chinese(entries) -> None:
    chinese = [entry.in_chinese() for entry in entries]

    assert all(chinese)
    shipping = next(zh for zh in chinese if zh.id == "shipping_cost")
    assert shipping.question == "运费是多少？"
    assert shipping.answer.startswith("标准配送运费4.95")
    assert "你们包不包邮？" in shipping.paraphrases


def test_the_english_index_holds_no_chinese(entries) -> None:
    english = FaqRetriever(entries, CharEncoder(), threshold=0.5)

    assert len(english._owners) == sum(2 + len(e.paraphrases) for e in entries)  # noqa: SLF001


@pytest.mark.parametrize(
    ("content", "problem"),
    [("faqs:\n- {id: x, question: q, answer: a, question_zh: 问}", "both or neither"),
     ("faqs:\n- {id: x, question: q, answer: a, answer_zh: 答}", "both or neither"),
     ("faqs:\n- {id: x, question: q, answer: a, question_zh: [问], answer_zh: 答}",
      "both or neither"),
     ("faqs:\n- {id: x, question: q, answer: a, paraphrases_zh: 问}", "list of texts")])
def test_bad_chinese_entries_are_refused(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "kb.yml"
    path.write_text(content, encoding="utf-8")

    with pytest.raises(SettingsError, match=problem):
        load_knowledge_base(path)


def test_an_entry_without_chinese_stays_english_only(tmp_path: Path) -> None:
    path = tmp_path / "kb.yml"
    path.write_text("faqs:\n- {id: x, question: q, answer: a}\n", encoding="utf-8")

    [entry] = load_knowledge_base(path)

    assert entry.in_chinese() is None
    with pytest.raises(SettingsError, match="question_zh"):
        chinese_retriever([entry], DEFAULT_FAQ_MODEL_ZH, 0.9)


def test_answers_are_embedded_as_passages(entries) -> None:
    encoder = CharEncoder()

    FaqRetriever([e.in_chinese() for e in entries], encoder, threshold=0.5)

    assert encoder.passages == [entry.answer_zh for entry in entries]


async def test_a_chinese_question_gets_the_chinese_answer(entries, backend, dispatcher,
                                                          make_tracker) -> None:
    chinese = FaqRetriever([e.in_chinese() for e in entries], CharEncoder(), threshold=0.9)
    services = Services(backend=backend, faq=None, faq_zh=chinese)
    tracker = make_tracker({"language": "zh"}, intent="faq", text="运费是多少？")

    assert await ActionAnswerFaq(services).run(dispatcher, tracker, {}) == []

    assert texts(dispatcher) == [next(e.answer_zh for e in entries if e.id == "shipping_cost")]


async def test_a_chinese_question_never_reaches_the_english_index(entries, backend, dispatcher,
                                                                  make_tracker) -> None:
    english = FaqRetriever(entries, CharEncoder(), threshold=0.01)
    services = Services(backend=backend, faq=english, faq_zh=None)

    await ActionAnswerFaq(services).run(dispatcher, make_tracker(
        {"language": "zh"}, intent="faq", text="运费是多少？"), {})

    # The domain response, whose Chinese variation Rasa picks by the slot.
    assert texts(dispatcher) == ["utter_faq_unknown"]


async def test_without_the_model_chinese_questions_get_i_dont_know(
        entries, backend, make_tracker, tmp_path, caplog) -> None:
    lazy = LazyFaqRetriever(lambda: chinese_retriever(entries, tmp_path / "missing", 0.88),
                            "Chinese")
    services = Services(backend=backend, faq_zh=lazy)
    said = []

    with caplog.at_level(logging.WARNING):
        for question in ("运费是多少？", "怎么退货？"):
            dispatcher = CollectingDispatcher()
            await ActionAnswerFaq(services).run(dispatcher, make_tracker(
                {"language": "zh"}, intent="faq", text=question), {})
            said += texts(dispatcher)

    assert said == ["utter_faq_unknown", "utter_faq_unknown"]
    warnings = [r for r in caplog.records if "Chinese FAQ answers are off" in r.getMessage()]
    assert len(warnings) == 1 and "make multilingual-encoder" in warnings[0].getMessage()


def test_the_lazy_retriever_builds_once(entries) -> None:
    built = []

    def build() -> FaqRetriever:
        built.append(1)
        return FaqRetriever([e.in_chinese() for e in entries], CharEncoder(), threshold=0.9)

    lazy = LazyFaqRetriever(build, "Chinese")

    assert not built  # nothing is loaded before the first Chinese question
    assert lazy.match("运费是多少？").entry.id == "shipping_cost"
    assert lazy.match("运费是多少？") is not None and built == [1]


def test_chinese_faq_settings() -> None:
    default = Settings.from_env({})
    custom = Settings.from_env({"FAQ_MODEL_ZH": "/models/e5", "FAQ_THRESHOLD_ZH": "0.9"})

    assert (default.faq_model_zh, default.faq_threshold_zh) == (
        str(DEFAULT_FAQ_MODEL_ZH), DEFAULT_FAQ_THRESHOLD_ZH)
    assert (custom.faq_model_zh, custom.faq_threshold_zh) == ("/models/e5", 0.9)
    with pytest.raises(SettingsError, match="FAQ_THRESHOLD_ZH"):
        Settings.from_env({"FAQ_THRESHOLD_ZH": "1.5"})


# -- the real multilingual-e5-small ----------------------------------------------------------

needs_model = pytest.mark.skipif(
    not (DEFAULT_FAQ_MODEL_ZH / "config.json").is_file(),
    reason="multilingual-e5-small is not built: make multilingual-encoder")


@pytest.fixture(scope="module")
def e5_retriever(entries) -> FaqRetriever:
    return chinese_retriever(entries, DEFAULT_FAQ_MODEL_ZH, DEFAULT_FAQ_THRESHOLD_ZH)


# New wording: none of these is in the knowledge base.
ZH_PARAPHRASES = [
    ("寄到家里要收多少邮费？", "shipping_cost"),
    ("下单后大概几天能收到？", "delivery_time"),
    ("能用Apple Pay付款吗？", "payment_methods"),
    ("衣服不合适，可以退回去吗？", "return_policy"),
    ("退款一般几天能到账？", "refund_time"),
    ("怎么才能不再收到你们的促销邮件？", "newsletter"),
]
ZH_UNRELATED = ["红烧肉怎么做才好吃？", "帮我写一首关于春天的诗", "月球离地球有多远？"]


@needs_model
@pytest.mark.parametrize(("question", "entry"), ZH_PARAPHRASES)
def test_chinese_paraphrases_find_their_entry(e5_retriever, question, entry) -> None:
    match = e5_retriever.match(question)

    assert match is not None, e5_retriever.best(question)
    assert match.entry.id == entry, (match.entry.id, match.score)


@needs_model
@pytest.mark.parametrize("question", ZH_UNRELATED)
def test_unrelated_chinese_questions_get_no_answer(e5_retriever, question) -> None:
    assert e5_retriever.match(question) is None, e5_retriever.best(question)


@needs_model
async def test_the_action_answers_in_chinese_with_the_model(e5_retriever, backend, dispatcher,
                                                            make_tracker) -> None:
    services = Services(backend=backend, faq_zh=e5_retriever)
    tracker = make_tracker({"language": "zh"}, intent="faq", text="寄国际快递到加拿大可以吗？")

    await ActionAnswerFaq(services).run(dispatcher, tracker, {})

    assert texts(dispatcher)[0].startswith("我们配送至英国、爱尔兰、欧盟、加拿大和美国。")
