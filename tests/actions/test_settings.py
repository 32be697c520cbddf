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
        "RASA_URL": "http://rasa:5005", "RASA_JWT_SECRET": "s" * 32, "FAQ_THRESHOLD": "0.7",
        "RASA_PARSE_TIMEOUT": "2.5", "SHOP_SEED_DEMO_DATA": "false"})

    assert (settings.rasa_url, settings.rasa_jwt_secret, settings.faq_threshold,
            settings.parse_timeout_s, settings.seed_demo_data) == (
        "http://rasa:5005", "s" * 32, 0.7, 2.5, False)
    shown = settings.redacted()
    assert shown["database_url"] == "postgresql+asyncpg://shop:***@db/shop"
    assert shown["rasa_jwt_secret"] == "***"
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


def test_escalation_rules_come_from_the_rasa_config(tmp_path, make_tracker) -> None:
    # One source: the escalation policy's options in config.yml also set how
    # urgent the hand-over ticket is.
    from actions.handoff import ticket_for
    from tests.actions.conftest import user_event

    config = tmp_path / "config.yml"
    config.write_text("policies:\n  - name: nlu_components.policies.SentimentEscalationPolicy\n"
                      "    negative_score: 0.9\n    negative_turns: 2\n", encoding="utf-8")
    tracker = make_tracker(events=[user_event("this is not ok", label="negative",
                                              negative=0.8)])

    strict = Settings.from_env({"RASA_CONFIG": str(config)})
    shipped = Settings.from_env({})

    assert (strict.escalation.negative_score, strict.escalation.negative_turns) == (0.9, 2)
    assert ticket_for(tracker, "requested", strict.escalation).priority == "normal"
    assert ticket_for(tracker, "requested", shipped.escalation).priority == "high"


def test_the_projects_config_and_the_policy_agree() -> None:
    import yaml

    from actions.settings import ROOT

    [policy] = [p for p in yaml.safe_load((ROOT / "config.yml").read_text())["policies"]
                if p["name"].endswith("SentimentEscalationPolicy")]

    assert Settings.from_env({}).escalation.strong_intensity == policy["strong_intensity"]


def test_a_bad_escalation_value_in_the_rasa_config_is_named(tmp_path) -> None:
    config = tmp_path / "config.yml"
    config.write_text("policies:\n  - name: nlu_components.SentimentEscalationPolicy\n"
                      "    strong_intensity: 3\n", encoding="utf-8")

    with pytest.raises(SettingsError, match="RASA_CONFIG.*strong_intensity=3"):
        Settings.from_env({"RASA_CONFIG": str(config)})


def test_a_short_rasa_jwt_secret_is_refused_at_start() -> None:
    with pytest.raises(SettingsError, match="RASA_JWT_SECRET must be at least 32 bytes"):
        Settings.from_env({"RASA_JWT_SECRET": "short"})
