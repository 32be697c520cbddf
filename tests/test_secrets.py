"""No secret is committed: credentials come from the environment only."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

# Shapes of real credentials (private keys, Slack, Telegram, AWS, GitHub, JWT-like).
SECRET_SHAPES = {
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "Slack token": re.compile(r"\bxox[abposr]-[0-9A-Za-z-]{10,}"),
    "Telegram bot token": re.compile(r"\b\d{8,10}:[A-Za-z0-9_-]{35}\b"),
    "AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36}\b"),
}
CREDENTIAL_KEYS = re.compile(r"(secret|token|password|key|verify|url)$")


def tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    files = []
    for name in names:
        path = ROOT / name
        if path.is_file() and path.suffix not in {".png", ".ico", ".gz", ".onnx"}:
            files.append(path)
    return files


def test_no_tracked_file_holds_a_credential() -> None:
    found = []
    for path in tracked_text_files():
        text = path.read_text(encoding="utf-8", errors="ignore")
        found += [f"{path.relative_to(ROOT)}: {kind}" for kind, shape in SECRET_SHAPES.items()
                  if shape.search(text)]

    assert found == []


@pytest.mark.parametrize("name", ["credentials.yml", "credentials.im.yml"])
def test_channel_credentials_come_from_the_environment(name: str) -> None:
    channels = yaml.safe_load((ROOT / name).read_text()) or {}
    literal = [f"{channel}.{key}" for channel, options in channels.items()
               for key, value in (options or {}).items()
               if CREDENTIAL_KEYS.search(key) and isinstance(value, str)
               and not re.fullmatch(r"\$\{[A-Z0-9_]+\}", value)]

    assert literal == []


def test_generated_secrets_are_ignored_by_git() -> None:
    ignored = subprocess.run(["git", "check-ignore", ".secrets/rasa_jwt_secret", "shop.db",
                              "tracker.db"], cwd=ROOT, capture_output=True, text=True)

    assert ignored.stdout.split() == [".secrets/rasa_jwt_secret", "shop.db", "tracker.db"]
