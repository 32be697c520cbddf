"""The one exception of ``cs_core``: a rule or setting with an unusable value."""

from __future__ import annotations


class InvalidRule(ValueError):
    """A threshold or rule value that cannot be used.

    Each server turns it into its own configuration error (Rasa's
    ``InvalidConfigException``, the action server's ``SettingsError``); the
    attributes let them name the key, the value and the fix without parsing text.

    Attributes:
        key: The option's name, as written in ``config.yml``.
        value: The value given.
        fix: What to write instead.
    """

    def __init__(self, key: str, value: object, fix: str) -> None:
        self.key, self.value, self.fix = key, value, fix
        super().__init__(f"{key}={value!r}: {fix}")
