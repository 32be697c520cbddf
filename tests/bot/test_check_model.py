"""bot.check_model: the archive check `make run` does before serving."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from bot.check_model import ModelArchiveError, check_model_archive, main


def write_model(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


# Random bytes do not compress, so cutting the archive cuts member data.
PAYLOAD = __import__("os").urandom(200_000)
MODEL = {"/metadata.json": b'{"domain": {}}', "/components/x/classifier.json": PAYLOAD}


def test_a_whole_model_passes(tmp_path: Path) -> None:
    names = check_model_archive(write_model(tmp_path / "m.tar.gz", MODEL))

    assert "metadata.json" in names and "components/x/classifier.json" in names
    assert main([str(tmp_path / "m.tar.gz")]) == 0


def _truncated(tmp_path: Path) -> Path:
    model = write_model(tmp_path / "m.tar.gz", MODEL)
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    return model


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "none.tar.gz", "does not exist"),
        (_truncated, "truncated or not a Rasa model"),
        (lambda tmp: (tmp / "m.tar.gz").write_text("hello") and tmp / "m.tar.gz",
         "truncated or not a Rasa model"),
        (lambda tmp: write_model(tmp / "m.tar.gz", {"/components/x/a": b"x"}),
         "has no metadata.json"),
    ],
    ids=["missing", "truncated", "not gzip", "not a Rasa model"],
)
def test_a_broken_model_is_refused_naming_the_file(tmp_path: Path, capsys, make,
                                                   message: str) -> None:
    path = make(tmp_path)

    with pytest.raises(ModelArchiveError, match=message):
        check_model_archive(path)
    assert main([str(path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: model ") and str(path) in error and error.count("\n") == 1
