"""The action server's exceptions, in one hierarchy.

::

    ActionServerError
    ├── SettingsError          bad configuration (environment variables)
    ├── BackendError           the shop database failed
    │   └── BackendUnavailable     locked, missing, read-only or unreachable
    └── ParseError             the Rasa server's /model/parse call failed

Actions catch ``BackendError`` and ``ParseError`` and tell the customer something
sensible; the error itself goes to the log.
"""

from __future__ import annotations


class ActionServerError(Exception):
    """Base class of the action server's own errors."""


class SettingsError(ActionServerError, ValueError):
    """A setting has a value the action server cannot use."""


class BackendError(ActionServerError):
    """The shop database failed."""


class BackendUnavailable(BackendError):
    """The database cannot be used right now (locked, missing, read-only, down)."""


class ParseError(ActionServerError):
    """The Rasa server could not classify a text (down, slow or an error)."""
