"""The bot's replies to WeChat users: rendering, and sending through the send API.

Customer-service messages have no buttons. :class:`WeChatOutput` writes a reply's
buttons as numbered lines ("1. Yes, cancel it"), and :class:`ButtonChoices`
remembers their payloads, so that a user who answers with the bare number ("1",
also full-width "１") gets the button's payload sent to Rasa, as a click would.
"""

from __future__ import annotations

import logging
import unicodedata
from collections import OrderedDict
from typing import Any

from rasa.core.channels.channel import OutputChannel

from bot.wechat.api import WeChatApi
from bot.wechat.message import CHANNEL

logger = logging.getLogger("bot.wechat")

DEFAULT_CHOICES_CACHE_SIZE = 10_000


class ButtonChoices:
    """The payloads of the buttons each conversation was shown last (bounded).

    Only the latest reply's buttons count, and only for the user's next message.
    """

    def __init__(self, max_size: int = DEFAULT_CHOICES_CACHE_SIZE) -> None:
        """Creates an empty store.

        Args:
            max_size: Of how many conversations the buttons are remembered.
        """
        self.max_size = max_size
        self._payloads: OrderedDict[str, list[str]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._payloads)

    def remember(self, sender_id: str, buttons: list[dict[str, Any]]) -> None:
        """Keeps the payloads of the buttons just shown to ``sender_id``."""
        payloads = [str(button.get("payload") or button.get("title") or "")
                    for button in buttons if isinstance(button, dict)]
        self._payloads.pop(sender_id, None)
        self._payloads[sender_id] = payloads
        while len(self._payloads) > self.max_size:
            self._payloads.popitem(last=False)

    def resolve(self, sender_id: str, text: str) -> str:
        """What the user's message means: a shown button's payload for its number.

        Forgets the conversation's buttons either way: they answered this message.

        Args:
            sender_id: The Rasa sender id.
            text: The user's text.

        Returns:
            The payload of the button numbered ``text``, else ``text`` unchanged.
        """
        payloads = self._payloads.pop(sender_id, None) or []
        # NFKC: the Chinese keyboard's full-width digits (１２) are digits 1, 2.
        number = unicodedata.normalize("NFKC", text).strip().rstrip(".")
        if number.isascii() and number.isdigit() and 1 <= int(number) <= len(payloads):
            return payloads[int(number) - 1] or text
        return text


def numbered(text: str, buttons: list[dict[str, Any]]) -> str:
    """The text and one numbered line per button title.

    >>> numbered("Cancel order 48213?", [{"title": "Yes"}, {"title": "No"}])
    'Cancel order 48213?\\n1. Yes\\n2. No'
    """
    lines = [text] if text else []
    lines += [f"{index}. {button.get('title', '')}"
              for index, button in enumerate(buttons, start=1)]
    return "\n".join(lines)


def openid_of(recipient_id: str) -> str:
    """The OpenID in a Rasa sender id ``wechat:<openid>`` (the id itself otherwise)."""
    prefix = f"{CHANNEL}:"
    return recipient_id[len(prefix):] if recipient_id.startswith(prefix) else recipient_id


class WeChatOutput(OutputChannel):
    """Sends Rasa's responses to WeChat users as customer-service messages.

    The recipient is the Rasa sender id, so one instance serves every conversation:
    the replies to a message, and agent replies pushed through Rasa's HTTP API.
    """

    def __init__(self, api: WeChatApi, choices: ButtonChoices | None = None) -> None:
        """Creates the output channel.

        Args:
            api: The send API's client (it keeps the access token).
            choices: Where buttons' payloads are remembered for numbered answers.
        """
        self.api = api
        self.choices = choices if choices is not None else ButtonChoices()

    @classmethod
    def name(cls) -> str:
        """The channel name."""
        return CHANNEL

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        """Sends a text message."""
        await self.api.send_text(openid_of(recipient_id), text)

    async def send_text_with_buttons(self, recipient_id: str, text: str,
                                     buttons: list[dict[str, Any]], **kwargs: Any) -> None:
        """Sends the text and the buttons as numbered lines; the user types a number."""
        self.choices.remember(recipient_id, buttons)
        await self.send_text_message(recipient_id, numbered(text, buttons))

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        """Sends the image's URL as text (an image message needs an uploaded media id)."""
        await self.send_text_message(recipient_id, image)

    async def send_custom_json(self, recipient_id: str, json_message: dict[str, Any],
                               **kwargs: Any) -> None:
        """Sends ``custom`` as a send-API message when it names a ``msgtype``, else as text."""
        if isinstance(json_message, dict) and isinstance(json_message.get("msgtype"), str):
            await self.api.send({**json_message, "touser": openid_of(recipient_id)})
        else:
            await super().send_custom_json(recipient_id, json_message, **kwargs)
