from __future__ import annotations

import io
import logging

import pytest

from cs_core.privacy import (
    PersonalDataFilter,
    install,
    mask_all_records,
    mask_personal_data,
    masks_all_records,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jo.smith+shop@example.co.uk please", "write to <email> please"),
        ("call me on +44 20 7946 0958", "call me on <phone>"),
        ("my number is 0151-496-0000", "my number is <phone>"),
        ("card 4111 1111 1111 1111 was declined", "card <card> was declined"),
        ("card 4111-1111-1111-1111", "card <card>"),
        ("order 12345 and 48213", "order 12345 and 48213"),
        ("arrives 2026-12-03 or 2026-12-03 10:00", "arrives 2026-12-03 or 2026-12-03 10:00"),
        ("tracking JD014600006281 and 1Z999AA10123456784",
         "tracking JD014600006281 and 1Z999AA10123456784"),
        ("ticket T-4C7F01C1", "ticket T-4C7F01C1"),
        ("", ""),
    ],
)
def test_mask_personal_data(text: str, expected: str) -> None:
    assert mask_personal_data(text) == expected


def test_installed_filter_masks_what_handlers_write() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("privacy-test")
    logger.propagate = False
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        install(logger)
        install(logger)  # idempotent
        logger.info("conversation %s: mail %s", "+49 30 901820", "a@b.example")
        logger.info("bad record %s %s", "only one")  # malformed: still written
    finally:
        logger.removeHandler(handler)

    written = stream.getvalue()
    assert "conversation <phone>: mail <email>" in written
    assert "901820" not in written and "a@b.example" not in written
    assert sum(isinstance(f, PersonalDataFilter) for f in handler.filters) == 1


def test_mask_all_records_masks_handlers_added_later() -> None:
    previous = logging.getLogRecordFactory()
    stream = io.StringIO()
    logger = logging.getLogger("privacy-factory-test")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        logging.setLogRecordFactory(logging.LogRecord)
        mask_all_records()
        mask_all_records()  # idempotent: one wrapper
        assert masks_all_records()
        handler = logging.StreamHandler(stream)  # added after the hook ran
        logger.addHandler(handler)
        logger.info("card %s for %s", "4111 1111 1111 1111", "jo@example.com")
        logger.removeHandler(handler)
    finally:
        logging.setLogRecordFactory(previous)

    assert stream.getvalue().strip() == "card <card> for <email>"
