"""scrypt password hashes (console/passwords.py)."""

from __future__ import annotations

import pytest

from console.passwords import WeakPassword, dummy_hash, hash_password, verify_password


def test_a_hash_verifies_its_password_only() -> None:
    stored = hash_password("correct horse battery")

    assert stored.startswith("scrypt$32768$8$1$")
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batterx", stored)


def test_the_same_password_hashes_differently_each_time() -> None:
    assert hash_password("correct horse battery") != hash_password("correct horse battery")


@pytest.mark.parametrize("password", ["short", "x" * 1025])
def test_weak_passwords_are_refused(password: str) -> None:
    with pytest.raises(WeakPassword, match="10 to 1024 characters"):
        hash_password(password)


@pytest.mark.parametrize("stored", ["", "md5$abc", "scrypt$1$2$3$!!$!!", "plain-password"])
def test_a_malformed_hash_matches_nothing(stored: str) -> None:
    assert not verify_password("plain-password", stored)


def test_the_dummy_hash_matches_no_password() -> None:
    assert dummy_hash() == dummy_hash()
    assert not verify_password("", dummy_hash())
