from __future__ import annotations

import pytest

from actions.exceptions import SettingsError
from actions.settings import Settings


def test_defaults_work_on_a_fresh_clone() -> None:
    settings = Settings.from_env({})

    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.database_url.endswith("/shop.db")
    assert settings.knowledge_base.is_file()
    assert settings.rasa_url == "http://127.0.0.1:5005"


def test_environment_overrides() -> None:
    settings = Settings.from_env({
        "SHOP_DATABASE_URL": "postgresql+asyncpg://shop:s3cret@db/shop",
        "RASA_URL": "http://rasa:5005", "RASA_TOKEN": "tok", "FAQ_THRESHOLD": "0.7",
        "RASA_PARSE_TIMEOUT": "2.5", "SHOP_SEED_DEMO_DATA": "false"})

    assert (settings.rasa_url, settings.rasa_token, settings.faq_threshold,
            settings.parse_timeout_s, settings.seed_demo_data) == (
        "http://rasa:5005", "tok", 0.7, 2.5, False)
    shown = settings.redacted()
    assert shown["database_url"] == "postgresql+asyncpg://shop:***@db/shop"
    assert shown["rasa_token"] == "***"
    assert "s3cret" not in str(shown)


@pytest.mark.parametrize(
    ("env", "named"),
    [({"SHOP_DATABASE_URL": "shop.db"}, "SHOP_DATABASE_URL"),
     ({"RASA_URL": "localhost:5005"}, "RASA_URL"),
     ({"FAQ_THRESHOLD": "high"}, "FAQ_THRESHOLD"),
     ({"FAQ_THRESHOLD": "1.5"}, "FAQ_THRESHOLD"),
     ({"RASA_PARSE_TIMEOUT": "0"}, "RASA_PARSE_TIMEOUT")])
def test_bad_settings_name_the_variable(env, named) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(env)
