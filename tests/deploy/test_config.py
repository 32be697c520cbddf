"""deploy.config: the scale stack's files and secrets, rendered and refused without
starting anything (``make scale-check`` runs the stack itself)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from deploy.config import (
    JWT_SECRET,
    POSTGRES_PASSWORD,
    REDIS_PASSWORD,
    ROOT,
    SCALE_DIR,
    SECRET_FILES,
    WEBCHAT_SECRET,
    MissingSecret,
    Ports,
    ScaleError,
    StackConfig,
    actions_env,
    load_secrets,
    render_endpoints,
    render_haproxy,
    render_pg_hba,
    render_postgresql_conf,
    render_redis_conf,
    scram_verifier,
    server_env,
    shop_database_url,
    taken_ports,
)

SECRETS = {POSTGRES_PASSWORD: "p" * 40, REDIS_PASSWORD: "r" * 40, JWT_SECRET: "j" * 40,
           WEBCHAT_SECRET: "w" * 40}
PORTS = Ports.from_base(18005, 3, 2)


def test_ports_from_base_are_distinct_and_predictable() -> None:
    assert PORTS.balancer == 18005 and PORTS.rasa == (18015, 18016, 18017)
    assert PORTS.actions == (18035, 18036)
    assert len(set(PORTS.all())) == len(PORTS.all()) == 10


def test_free_ports_never_repeat_one() -> None:
    picks = iter([20000, 20000, 20001, 20002, 20001, 20003, 20004, 20005, 20006])
    ports = Ports.free(1, 1, pick=lambda: next(picks))
    assert ports.all() == [20000, 20001, 20002, 20003, 20004, 20005, 20006]


@pytest.mark.parametrize("ports", [
    dict(balancer=8000, stats=8000, actions_balancer=8002, postgres=8003, redis=8004,
         rasa=(8010,), actions=(8030,)),
    dict(balancer=80, stats=8001, actions_balancer=8002, postgres=8003, redis=8004,
         rasa=(8010,), actions=(8030,)),
])
def test_clashing_or_privileged_ports_are_refused(ports: dict) -> None:
    with pytest.raises(ScaleError):
        Ports(**ports)


def test_taken_ports_are_found() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        ports = Ports(balancer=port, stats=port + 1 if port < 65535 else 1025,
                      actions_balancer=1026, postgres=1027, redis=1028, rasa=(), actions=())
        assert port in taken_ports(ports)


@pytest.mark.parametrize(("changes", "message"), [
    ({"rasa_instances": 0}, "rasa_instances"),
    ({"action_servers": 17}, "action_servers"),
    ({"socketio_stickiness": "ip"}, "socketio_stickiness"),
    ({"lock_lifetime_s": 1}, "lock_lifetime_s"),
    ({"health_timeout_s": 0}, "health_timeout_s"),
    ({"base_port": 80}, "base_port"),
    ({"database_user": "x; DROP"}, "names"),
    ({"shop_database": "1shop"}, "names"),
    ({"work_dir": ROOT / "actions"}, "work_dir"),
])
def test_a_config_that_cannot_work_is_refused(changes: dict, message: str) -> None:
    with pytest.raises(ScaleError, match=message):
        StackConfig(**changes)


def test_the_default_config_is_the_two_by_two_stack_under_scale_dir() -> None:
    config = StackConfig()
    assert (config.rasa_instances, config.action_servers) == (2, 2)
    assert config.work_dir.is_relative_to(SCALE_DIR)
    assert config.ports() == Ports.from_base(8005, 2, 2)
    assert len(set(StackConfig(base_port=0).ports().all())) == 9


# -- secrets ------------------------------------------------------------------------------


def test_missing_secrets_are_generated_private(tmp_path: Path) -> None:
    found = load_secrets(tmp_path / "secrets", {})
    assert set(found) == set(SECRET_FILES)
    for name, filename in SECRET_FILES.items():
        path = tmp_path / "secrets" / filename
        assert path.stat().st_mode & 0o777 == 0o600
        assert path.read_text().strip() == found[name] and len(found[name]) >= 32
    assert load_secrets(tmp_path / "secrets", {}) == found  # read back, not regenerated


def test_the_environment_wins_over_the_files(tmp_path: Path) -> None:
    found = load_secrets(tmp_path, {POSTGRES_PASSWORD: "e" * 32})
    assert found[POSTGRES_PASSWORD] == "e" * 32
    assert not (tmp_path / SECRET_FILES[POSTGRES_PASSWORD]).exists()


def test_a_secret_that_must_exist_is_not_invented(tmp_path: Path) -> None:
    # The cluster's data was made with a password that is gone: a new one would
    # lock the stack out of it.
    with pytest.raises(MissingSecret, match="scale_postgres_password"):
        load_secrets(tmp_path, {}, must_exist=[POSTGRES_PASSWORD])
    assert not (tmp_path / SECRET_FILES[POSTGRES_PASSWORD]).exists()


def test_a_readable_or_short_secret_is_refused(tmp_path: Path) -> None:
    load_secrets(tmp_path, {})
    path = tmp_path / SECRET_FILES[REDIS_PASSWORD]
    path.chmod(0o644)
    with pytest.raises(ScaleError, match="chmod 600"):
        load_secrets(tmp_path, {})
    path.chmod(0o600)
    path.write_text("short\n")
    with pytest.raises(ScaleError, match="shorter than 32"):
        load_secrets(tmp_path, {})
    with pytest.raises(ScaleError, match="spaces"):
        load_secrets(tmp_path, {REDIS_PASSWORD: "a b" * 20})


def test_the_scram_verifier_answers_rfc_7677s_exchange() -> None:
    # RFC 7677, section 3: user "user", password "pencil".
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    verifier = scram_verifier("pencil", salt)
    method, _, rest = verifier.partition("$")
    iterations_salt, _, keys = rest.partition("$")
    stored_key, server_key = (base64.b64decode(k) for k in keys.split(":"))
    assert (method, iterations_salt) == ("SCRAM-SHA-256", "4096:W22ZaJ0SNY7soEsUEjb6gQ==")
    nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    auth = (f"n=user,r=rOprNGfwEbeRWgbNEkqO,r={nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
            f"c=biws,r={nonce}").encode()
    server_signature = hmac.new(server_key, auth, hashlib.sha256).digest()
    assert base64.b64encode(server_signature) == b"6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    proof = base64.b64decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    client_key = bytes(a ^ b for a, b in zip(proof, hmac.new(stored_key, auth,
                                                              hashlib.sha256).digest()))
    assert hashlib.sha256(client_key).digest() == stored_key
    assert "pencil" not in verifier


# -- generated files ----------------------------------------------------------------------


def test_endpoints_keep_the_passwords_as_variables_rasa_fills_in(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rasa.utils.endpoints import read_endpoint_config

    text = render_endpoints(StackConfig(), PORTS)
    assert all(secret not in text for secret in SECRETS.values())
    path = tmp_path / "endpoints.yml"
    path.write_text(text)
    monkeypatch.setenv(POSTGRES_PASSWORD, SECRETS[POSTGRES_PASSWORD])
    monkeypatch.setenv(REDIS_PASSWORD, SECRETS[REDIS_PASSWORD])

    tracker = read_endpoint_config(str(path), "tracker_store")
    locks = read_endpoint_config(str(path), "lock_store")
    actions = read_endpoint_config(str(path), "action_endpoint")

    assert tracker.type == "bot.tracker_store.StrictSQLTrackerStore"
    assert tracker.kwargs["dialect"] == "postgresql"
    assert (tracker.url, tracker.kwargs["port"]) == ("127.0.0.1", PORTS.postgres)
    assert tracker.kwargs["password"] == SECRETS[POSTGRES_PASSWORD]
    assert locks.type == "bot.lock_store.AtomicRedisLockStore"
    assert locks.kwargs["password"] == SECRETS[REDIS_PASSWORD]
    assert actions.url == f"http://127.0.0.1:{PORTS.actions_balancer}/webhook"


def haproxy_sections(text: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        if line and not line.startswith((" ", "#")):
            current = line.strip()
            sections[current] = []
        elif line.strip() and not line.strip().startswith("#"):
            sections.setdefault(current, []).append(line.strip())
    return sections


def test_haproxy_spreads_rest_and_keeps_socketio_sessions_on_their_instance(
        tmp_path: Path) -> None:
    sections = haproxy_sections(render_haproxy(StackConfig(rasa_instances=3), PORTS,
                                               tmp_path / "admin.sock"))

    rest = sections["backend rasa"]
    assert "balance leastconn" in rest and "retry-on conn-failure" in rest
    assert [line.split()[2] for line in rest if line.startswith("server")] == [
        f"127.0.0.1:{port}" for port in PORTS.rasa]
    sticky = sections["backend rasa_socketio"]
    assert any(line.startswith("cookie SCALE_RASA insert") for line in sticky)
    assert all(line.endswith(f"cookie rasa{i + 1}") for i, line in
               enumerate(line for line in sticky if line.startswith("server")))
    assert "use_backend rasa_socketio if socketio" in sections["frontend chat"]
    assert any("/webhooks/webchat/socket.io" in line for line in sections["frontend chat"])


def test_a_busy_instance_is_not_taken_out_of_rotation(tmp_path: Path) -> None:
    # A killed instance refuses checks at once; a busy one answers late (measured: over
    # 5 s at 128 customers), so the check timeout is long.
    text = render_haproxy(StackConfig(), PORTS, tmp_path / "a.sock")
    assert "timeout check 30s" in text
    assert "inter 1000 fastinter 500 downinter 1000 fall 3 rise 2" in text


def test_a_turn_is_retried_by_haproxy_only_when_it_was_never_sent(tmp_path: Path) -> None:
    # A Rasa turn is not idempotent: HAProxy resends it only on a refused connection;
    # an action call is resent when the action server died before answering.
    sections = haproxy_sections(render_haproxy(StackConfig(), PORTS, tmp_path / "a.sock"))
    assert [line for line in sections["backend rasa"] if line.startswith("retry-on")] == [
        "retry-on conn-failure"]
    assert "retry-on conn-failure empty-response" in sections["backend actions"]
    assert [line.split()[2] for line in sections["backend actions"]
            if line.startswith("server")] == [f"127.0.0.1:{port}" for port in PORTS.actions]


def test_haproxy_by_source_address_for_clients_without_cookies(tmp_path: Path) -> None:
    text = render_haproxy(StackConfig(socketio_stickiness="source"), PORTS, tmp_path / "a.sock")
    sticky = haproxy_sections(text)["backend rasa_socketio"]
    assert "balance source" in sticky and not any("cookie" in line for line in sticky)


def test_everything_listens_on_loopback_only(tmp_path: Path) -> None:
    text = render_haproxy(StackConfig(), PORTS, tmp_path / "a.sock")
    binds = [line.split()[1] for line in text.splitlines() if line.strip().startswith("bind ")]
    assert binds and all(bind.startswith("127.0.0.1:") for bind in binds)
    assert "bind 127.0.0.1\n" in render_redis_conf(PORTS, tmp_path, SECRETS[REDIS_PASSWORD])
    assert "listen_addresses = '127.0.0.1'" in render_postgresql_conf(PORTS.postgres, tmp_path)
    hba = [line for line in render_pg_hba().splitlines() if line and not line.startswith("#")]
    assert hba == ["local   all       all                 peer",
                   "host    all       all   127.0.0.1/32  scram-sha-256"]


@pytest.mark.skipif(shutil.which("haproxy") is None and not os.path.exists("/usr/sbin/haproxy"),
                    reason="HAProxy is not installed (make scale-packages)")
@pytest.mark.parametrize("stickiness", ["cookie", "source"])
def test_haproxy_accepts_the_configuration(tmp_path: Path, stickiness: str) -> None:
    path = tmp_path / "haproxy.cfg"
    path.write_text(render_haproxy(StackConfig(socketio_stickiness=stickiness), PORTS,
                                   tmp_path / "admin.sock"))
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    checked = subprocess.run([binary, "-c", "-f", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_servers_get_their_secrets_by_environment_only_what_they_need() -> None:
    config = StackConfig()
    rasa, actions = server_env(config, PORTS, SECRETS), actions_env(config, PORTS, SECRETS)
    assert rasa[POSTGRES_PASSWORD] == SECRETS[POSTGRES_PASSWORD]
    assert rasa["TICKET_LOCK_LIFETIME"] == "20"
    assert REDIS_PASSWORD not in actions and WEBCHAT_SECRET not in actions
    assert actions["SHOP_DATABASE_URL"].startswith("postgresql+asyncpg://assistant:")
    assert actions["RASA_URL"] == f"http://127.0.0.1:{PORTS.balancer}"


def test_the_shop_url_quotes_the_password_and_the_settings_hide_it() -> None:
    from actions.settings import Settings

    url = shop_database_url(StackConfig(), PORTS, "p@ss:w/rd" + "x" * 30)
    assert "p%40ss%3Aw%2Frd" in url
    settings = Settings.from_env({"SHOP_DATABASE_URL": url})
    assert "p%40ss" not in str(settings.redacted()) and "***" in str(settings.redacted())


def test_generated_files_name_the_stack_and_nothing_secret(tmp_path: Path) -> None:
    parsed = yaml.safe_load(render_endpoints(StackConfig(), PORTS))
    assert parsed["tracker_store"]["db"] == "rasa_tracker"
    haproxy = render_haproxy(StackConfig(), PORTS, tmp_path / "a.sock")
    assert all(secret not in haproxy for secret in SECRETS.values())
    assert f"stats socket {tmp_path / 'a.sock'} mode 600 level admin" in haproxy
