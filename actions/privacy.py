"""Personal data (e-mails, phone numbers, card-like numbers) masked in log records.

Customer messages reach the logs through error messages, sender ids and Rasa's
debug output. ``install()`` puts ``PersonalDataFilter`` on the root logger's
handlers, so every record that is written passes through ``mask_personal_data``.
Order numbers (5 digits), dates and tracking numbers are left alone.
"""

from __future__ import annotations

import logging
import re

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Runs of digits with the separators people type; classified by their digit count.
_NUMBER = re.compile(r"(?<![\w-])\+?\d[\d ()./-]{6,}\d(?![\w-])")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\b")


def _mask_number(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = sum(character.isdigit() for character in text)
    if _DATE.match(text):  # an ISO date, perhaps with the hour after it
        return text
    if 13 <= digits <= 19:
        return "<card>"
    if 8 <= digits <= 15:
        return "<phone>"
    return text


def mask_personal_data(text: str) -> str:
    """``text`` with e-mails, phone numbers and card-like numbers replaced.

    >>> mask_personal_data("mail jo@example.com or call +44 20 7946 0958, order 12345")
    'mail <email> or call <phone>, order 12345'
    """
    return _NUMBER.sub(_mask_number, _EMAIL.sub("<email>", text))


class PersonalDataFilter(logging.Filter):
    """Rewrites a record's message with ``mask_personal_data`` before it is written."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed record is logged as it is
            return True
        masked = mask_personal_data(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Adds the filter to every handler of ``logger`` (the root logger), once each."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, PersonalDataFilter) for f in handler.filters):
            handler.addFilter(PersonalDataFilter())
