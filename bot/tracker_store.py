"""Rasa's SQL tracker store, without Rasa's silent fall-back to memory.

Rasa 3.6 wraps every tracker store in ``FailSafeTrackerStore``, which, when the
database fails, logs an error and goes on: a failed read gives the turn a new,
empty conversation, and a failed write keeps the turn in the process's memory
only. The customer is answered, and the database never holds that turn: measured
with ``make scale-check``, a 5-second PostgreSQL restart under 8 customers lost
50 messages that way (and stored 12 that did not belong where they landed).

With this store the failure fails the turn instead: the REST channel answers 503
(``bot.rest``), the client sends the message again, and the database holds each
turn exactly once. Use it in endpoints.yml::

    tracker_store:
      type: bot.tracker_store.StrictSQLTrackerStore
      dialect: "postgresql"
      ...                        # as Rasa's SQL tracker store

Rasa offers no option for this; the wrapper is created inside ``Agent``, so
creating this store switches the process's ``FailSafeTrackerStore`` to re-raise
(:func:`fail_turns_on_tracker_store_errors`). Only processes configured with it
change.
"""

from __future__ import annotations

import logging
from typing import Any

from rasa.core.tracker_store import FailSafeTrackerStore, SQLTrackerStore

logger = logging.getLogger(__name__)


def _fail_the_turn(self: FailSafeTrackerStore, error: Exception) -> None:
    """In place of the fall-back: log, then let the error end the turn."""
    logger.error("the tracker store failed, so the turn fails (no fall-back to memory; the "
                 "client sends the message again): %s", error)
    raise error


def fail_turns_on_tracker_store_errors() -> None:
    """Makes ``FailSafeTrackerStore`` re-raise its store's errors (idempotent).

    Both of its hooks are called from inside its ``except`` blocks, so raising there
    ends ``retrieve``, ``save`` and ``keys`` with the original error.
    """
    FailSafeTrackerStore.on_tracker_store_error = _fail_the_turn  # type: ignore[method-assign]
    FailSafeTrackerStore.on_tracker_store_retrieve_error = (  # type: ignore[method-assign]
        _fail_the_turn)


class StrictSQLTrackerStore(SQLTrackerStore):
    """``SQLTrackerStore`` whose failures fail the turn (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Creates Rasa's SQL tracker store with Rasa's arguments.

        Args:
            *args: As ``SQLTrackerStore``.
            **kwargs: As ``SQLTrackerStore`` (``dialect``, ``host``, ``port``,
                ``db``, ``username``, ``password``, ...).
        """
        super().__init__(*args, **kwargs)
        fail_turns_on_tracker_store_errors()
