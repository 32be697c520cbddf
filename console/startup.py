"""The console's start-up hook: its process-wide settings, in one place.

``install()`` runs once from ``python -m console``: log records are masked
(e-mails, phone and card numbers; ``cs_core.privacy``) and logging goes to
stderr at INFO. Importing ``console`` changes nothing process-wide.
"""

from __future__ import annotations

import logging

from cs_core.privacy import mask_all_records


def install() -> None:
    """Applies the console's process-wide settings (idempotent)."""
    mask_all_records()
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
