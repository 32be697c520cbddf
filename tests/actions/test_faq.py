"""FAQ retrieval with the real packaged MiniLM (loaded once per module, no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from actions.answers import ActionAnswerFaq
from actions.exceptions import SettingsError
from actions.faq import FaqRetriever, SentenceTransformerEncoder, load_knowledge_base
from actions.services import Services
from actions.settings import Settings
from tests.actions.conftest import texts

KNOWLEDGE_BASE = Settings().knowledge_base


@pytest.fixture(scope="module")
def retriever() -> FaqRetriever:
    return FaqRetriever(load_knowledge_base(KNOWLEDGE_BASE), SentenceTransformerEncoder(),
                        threshold=Settings().faq_threshold)


# New words for knowledge-base questions: none of these is in the file.
PARAPHRASES = [
    ("what do you charge for postage?", "shipping_cost"),
    ("how many days will the delivery need", "delivery_time"),
    ("can you send my order to France", "international_shipping"),
    ("I don't like the shirt, can I give it back?", "return_policy"),
    ("how long before the refund shows up on my card", "refund_time"),
    ("can I pay using Apple Pay", "payment_methods"),
    ("what time does your support team open on Saturday", "opening_hours"),
    ("my blender stopped working after 8 months, is that covered", "warranty"),
    ("I'd like to buy a present voucher", "gift_cards"),
    ("the coupon I got isn't accepted at checkout", "discount_codes"),
    ("another website sells this for less, can you match that", "price_match"),
    ("which shoe size should I pick", "size_guide"),
    ("please send me a receipt with the tax on it", "invoice"),
    ("remove all the information you hold about me", "account_deletion"),
    ("how can I stop your promotional mails", "newsletter"),
    ("is there a shop I can walk into", "stores"),
]

UNRELATED = [
    "what's the capital of Mongolia?",
    "can you recommend a good pizza recipe",
    "who won the football match last night",
    "explain quantum entanglement to me",
    "asdf qwerty zxcv",
]


@pytest.mark.parametrize(("question", "entry"), PARAPHRASES)
def test_paraphrases_find_their_entry(retriever, question, entry) -> None:
    match = retriever.match(question)

    assert match is not None, retriever.best(question)
    assert match.entry.id == entry, (match.entry.id, match.score)


@pytest.mark.parametrize("question", UNRELATED)
def test_unrelated_questions_get_no_answer(retriever, question) -> None:
    assert retriever.match(question) is None, retriever.best(question)


@pytest.mark.parametrize("question", ["", "   ", "\x00\x01", "?" * 100_000])
def test_awkward_input_does_not_crash(retriever, question) -> None:
    retriever.match(question)


async def test_action_answers_off_the_event_loop(retriever, dispatcher, make_tracker,
                                                 backend) -> None:
    services = Services(backend=backend, faq=retriever)
    tracker = make_tracker(intent="faq", text="how much is delivery to my house")

    assert await ActionAnswerFaq(services).run(dispatcher, tracker, {}) == []

    assert texts(dispatcher)[0].startswith("Standard shipping costs 4.95")


@pytest.mark.parametrize("faq", ["retriever", None])
async def test_action_offers_a_human_when_it_does_not_know(request, dispatcher, make_tracker,
                                                           backend, faq) -> None:
    services = Services(backend=backend, faq=request.getfixturevalue(faq) if faq else None)
    tracker = make_tracker(intent="faq", text="what's the capital of Mongolia?")

    await ActionAnswerFaq(services).run(dispatcher, tracker, {})

    assert texts(dispatcher) == ["utter_faq_unknown"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [("faqs: []", "non-empty"), ("- a\n- b", "non-empty"), ("faqs: [{id: x, question: q}]",
                                                            "needs text"),
     ("faqs:\n- {id: x, question: q, answer: a, paraphrases: p}", "list of texts"),
     ("faqs:\n- {id: x, question: q, answer: a}\n- {id: x, question: r, answer: b}", "unique"),
     ("faqs: [", "knowledge base")])
def test_bad_knowledge_base_is_refused(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "kb.yml"
    path.write_text(content)

    with pytest.raises(SettingsError, match=problem):
        load_knowledge_base(path)


def test_missing_knowledge_base_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="kb.yml"):
        load_knowledge_base(tmp_path / "kb.yml")
