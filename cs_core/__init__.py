"""Small pure modules that both servers use: escalation rules, log privacy, threads.

The Rasa server (``nlu_components``, ``bot``) and the action server
(``actions``) share only this package. It imports neither rasa nor rasa_sdk,
nor anything heavy (no torch, SQLAlchemy or aiohttp): PyYAML, threadpoolctl and
the standard library only, so that neither server loads the other's dependencies
through it.

- ``cs_core.escalation``: when a conversation goes to a human because of the
  customer's mood, how urgent its ticket is, and the one reader of those
  thresholds from Rasa's ``config.yml``;
- ``cs_core.privacy``: e-mails, phone and card numbers masked in log records;
- ``cs_core.threads``: one compute thread per server process.
"""

from __future__ import annotations
