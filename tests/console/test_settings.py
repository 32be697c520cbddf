"""The console's settings from the environment (console/settings.py)."""

from __future__ import annotations

import pytest

from console.settings import ConsoleSettings, ConsoleSettingsError

SECRET = "j" * 40


def test_defaults_need_only_the_rasa_secret() -> None:
    settings = ConsoleSettings.from_env({"RASA_JWT_SECRET": SECRET})

    assert (settings.host, settings.port, settings.session_ttl_s) == ("127.0.0.1", 5006,
                                                                      8 * 3600.0)
    assert settings.shop_database_url.endswith("/shop.db")
    assert settings.tracker_database_url.endswith("/tracker.db")


def test_the_environment_overrides() -> None:
    settings = ConsoleSettings.from_env({
        "RASA_JWT_SECRET": SECRET, "CONSOLE_PORT": "7000", "CONSOLE_SESSION_TTL_S": "600",
        "TRACKER_DATABASE_URL": "", "RASA_URL": "http://rasa:5005"})

    assert (settings.port, settings.session_ttl_s, settings.tracker_database_url,
            settings.rasa_url) == (7000, 600.0, "", "http://rasa:5005")


@pytest.mark.parametrize("environ, message", [
    ({}, "RASA_JWT_SECRET must be at least 32 bytes"),
    ({"RASA_JWT_SECRET": "short"}, "RASA_JWT_SECRET must be at least 32 bytes"),
    ({"RASA_JWT_SECRET": SECRET, "CONSOLE_PORT": "web"}, "CONSOLE_PORT='web'"),
    ({"RASA_JWT_SECRET": SECRET, "CONSOLE_SESSION_TTL_S": "5"}, "60 to 604800"),
])
def test_unusable_settings_are_refused_by_name(environ: dict, message: str) -> None:
    with pytest.raises(ConsoleSettingsError, match=message):
        ConsoleSettings.from_env(environ)


def test_creating_an_agent_does_not_need_rasa() -> None:
    assert ConsoleSettings.from_env({}, need_rasa=False).rasa_jwt_secret == ""
