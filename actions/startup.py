"""The action server's start-up hook: every process-wide setting, in one place.

``install()`` runs once, before rasa-sdk loads the actions, from the launcher
``python -m actions`` (``make run`` and the tests use it). It masks e-mails,
phone and card numbers in every log record of the process (``cs_core.privacy``),
and gives every compute library one thread (``cs_core.threads``: the FAQ's
similarity search woke a BLAS thread that spun for longer than the action took).
Importing ``actions`` changes no process-wide state.
"""

from __future__ import annotations

import os

from cs_core.privacy import mask_all_records
from cs_core.threads import limit_compute_threads


def install() -> None:
    """Applies the action server's process-wide settings (idempotent)."""
    mask_all_records()
    limit_compute_threads(os.environ)
