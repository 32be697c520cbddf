from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from actions.backend import NewTicket
from actions.db import SCHEMA_VERSION, SqlBackend
from actions.exceptions import BackendError, BackendUnavailable


def _path(url: str) -> Path:
    return Path(url.removeprefix("sqlite+aiosqlite:///"))


async def test_new_database_is_created_versioned_and_seeded_once(database_url) -> None:
    for _ in range(2):  # a restart neither migrates again nor seeds twice
        backend = SqlBackend(database_url)
        assert (await backend.get_order("12345", "C-001")).carrier == "DHL"
        await backend.close()

    with sqlite3.connect(_path(database_url)) as connection:
        versions = connection.execute("SELECT version FROM schema_version").fetchall()
        orders = connection.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
    # One row a migration applied, each once.
    assert sorted(versions) == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
    assert orders == 5


async def test_a_newer_schema_is_refused(database_url) -> None:
    await SqlBackend(database_url).start()
    with sqlite3.connect(_path(database_url)) as connection:
        connection.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION + 1,))

    with pytest.raises(BackendError, match="newer than this code"):
        await SqlBackend(database_url).start()


async def test_without_seed_the_shop_is_empty(database_url) -> None:
    backend = SqlBackend(database_url, seed=False)
    assert await backend.get_order("12345", "C-001") is None
    await backend.close()


@pytest.mark.parametrize("hostile", ["12345' OR '1'='1", "1; DROP TABLE orders; --",
                                     "' UNION SELECT * FROM tickets --"])
async def test_queries_are_parameterised(backend, hostile) -> None:
    assert await backend.get_order(hostile, "C-001") is None
    assert await backend.get_order("12345", hostile) is None
    assert await backend.prove_order("12345", email=hostile, postcode=hostile) is None
    assert await backend.stock(hostile) is None
    assert (await backend.get_order("12345", "C-001")).status == "shipped"


async def test_cancel_only_changes_processing_orders(backend) -> None:
    assert (await backend.cancel_order("48213", "C-002")).status == "cancelled"
    assert (await backend.cancel_order("12345", "C-001")).status == "shipped"
    assert (await backend.change_address("12345", "C-001", "1 New Road")).address != \
        "1 New Road"


async def test_ticket_round_trip_with_unicode(backend) -> None:
    draft = NewTicket("王小明", "requested", transcript=({"role": "customer", "text": "你好 😀"},),
                      sentiment_history=({"label": "neutral", "negative": 0.1},))
    saved = await backend.create_ticket(draft)
    await backend.add_ticket_message(saved.reference, {"role": "customer", "text": "مرحبا"})

    loaded = await backend.get_ticket(saved.reference)

    assert loaded.sender_id == "王小明"
    assert [line["text"] for line in loaded.transcript] == ["你好 😀", "مرحبا"]
    assert loaded.sentiment_history == draft.sentiment_history
    assert saved.reference != (await backend.create_ticket(draft)).reference


async def test_locked_database_fails_fast_and_recovers(backend, database_url) -> None:
    locker = sqlite3.connect(_path(database_url))
    locker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(BackendUnavailable, match="locked"):
            await backend.get_order("12345", "C-001")
    finally:
        locker.rollback()
        locker.close()
    assert (await backend.get_order("12345", "C-001")).status == "shipped"


async def test_deleted_file_is_an_error_not_an_empty_shop(backend, database_url) -> None:
    _path(database_url).unlink()

    with pytest.raises(BackendUnavailable):
        await backend.get_order("12345", "C-001")
    assert not _path(database_url).exists()


async def test_missing_folder_is_unavailable(tmp_path) -> None:
    backend = SqlBackend(f"sqlite+aiosqlite:///{tmp_path / 'nowhere' / 'shop.db'}")
    with pytest.raises(BackendUnavailable, match="does not exist"):
        await backend.get_order("12345", "C-001")



# Run in a child process that cannot write the file: as root, without the
# capabilities that let root write read-only files (setpriv drops them).
READ_ONLY_PROBE = """
import asyncio, json, sys
from actions.backend import NewTicket
from actions.db import SqlBackend
from actions.exceptions import BackendUnavailable

async def probe():
    backend = SqlBackend(sys.argv[1], busy_timeout_s=0.2)
    outcome = {"read": (await backend.get_order("12345", "C-001")).status}
    for name, write in [("cancel", backend.cancel_order("48213", "C-002")),
                        ("ticket", backend.create_ticket(NewTicket("c", "requested")))]:
        try:
            await write
            outcome[name] = "written"
        except BackendUnavailable as error:
            outcome[name] = str(error)
    outcome["read_again"] = (await backend.get_order("48213", "C-002")).status
    await backend.close()
    print(json.dumps(outcome))

asyncio.run(probe())
"""


async def test_read_only_database_reads_and_refuses_writes_cleanly(database_url) -> None:
    import json
    import os
    import shutil
    import subprocess
    import sys

    await SqlBackend(database_url).start()  # an existing, seeded shop
    path = _path(database_url)
    path.chmod(0o444)
    prefix = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("as root, a read-only file needs setpriv (util-linux) to be read-only")
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]
    root = Path(__file__).resolve().parents[2]

    probe = subprocess.run([*prefix, sys.executable, "-c", READ_ONLY_PROBE, database_url],
                           cwd=root, capture_output=True, text=True, timeout=120)

    assert probe.returncode == 0, probe.stderr[-2000:]
    outcome = json.loads(probe.stdout.strip().splitlines()[-1])
    assert outcome["read"] == "shipped" and outcome["read_again"] == "processing"
    assert "readonly database" in outcome["cancel"], outcome
    assert "readonly database" in outcome["ticket"], outcome
