"""Personal data (e-mails, phone numbers, card-like numbers) masked in log records.

Customer messages reach the logs through error messages, sender ids and Rasa's
debug output. Each server's start-up hook calls ``mask_all_records()``, which
masks every record when it is created, whichever handlers the server's logging
set-up adds later; ``install()`` puts ``PersonalDataFilter`` on one logger's
existing handlers instead. Order numbers (5 digits), dates and tracking numbers
are left alone.
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


def mask_record(record: logging.LogRecord) -> None:
    """Rewrites a record's message with ``mask_personal_data``, in place."""
    try:
        message = record.getMessage()
    except (TypeError, ValueError):  # a malformed record is logged as it is
        return
    masked = mask_personal_data(message)
    if masked != message:
        record.msg, record.args = masked, None


class PersonalDataFilter(logging.Filter):
    """Rewrites a record's message with ``mask_personal_data`` before it is written."""

    def filter(self, record: logging.LogRecord) -> bool:
        mask_record(record)
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Adds the filter to every handler of ``logger`` (the root logger), once each."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, PersonalDataFilter) for f in handler.filters):
            handler.addFilter(PersonalDataFilter())


def mask_all_records() -> None:
    """Masks personal data in every log record this process creates, once.

    Process-wide (a log record factory), so only the servers' start-up hooks
    call it: it holds whatever handlers Rasa, Sanic or rasa-sdk install later.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "masks_personal_data", False):
        return

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        mask_record(record)
        return record

    factory.masks_personal_data = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def masks_all_records() -> bool:
    """Whether ``mask_all_records`` has run in this process."""
    return bool(getattr(logging.getLogRecordFactory(), "masks_personal_data", False))
