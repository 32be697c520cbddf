"""FAQ answers from the knowledge base (``actions/knowledge_base.yml``)."""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.base import ServiceAction
from actions.texts import ZH, language

logger = logging.getLogger(__name__)


class ActionAnswerFaq(ServiceAction):
    """Answers with the closest knowledge-base entry, or offers a human below the threshold.

    A Chinese customer's question (the ``language`` slot) is matched against the
    entries' Chinese texts and answered with ``answer_zh``; "I don't know" is the
    domain's ``utter_faq_unknown``, whose variation Rasa picks by the same slot.
    """

    def name(self) -> str:
        return "action_answer_faq"

    async def serve(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                    domain: dict[str, Any]) -> list[EventType]:
        question = tracker.latest_message.get("text") or ""
        retriever = self.services.faq_zh if language(tracker) == ZH else self.services.faq
        if retriever is None:
            dispatcher.utter_message(response="utter_faq_unknown")
            return []
        try:
            match = await retriever.answer(question)
        except (RuntimeError, ValueError, OSError) as error:  # the model failed on this text
            logger.error("FAQ retrieval failed for conversation %s: %s", tracker.sender_id, error)
            match = None
        if match is None:
            dispatcher.utter_message(response="utter_faq_unknown")
            return []
        logger.debug("FAQ %s (similarity %.3f)", match.entry.id, match.score)
        # The Chinese retriever's entries carry answer_zh as their answer.
        dispatcher.utter_message(text=match.entry.answer)
        return []
