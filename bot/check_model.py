"""Checks a trained Rasa model archive before ``make run`` serves it.

Rasa 3.6 answers every message with nothing when its model archive cannot be
read (a truncated download, a full disk during ``rasa train``, a file that is
not a model): it logs the error and serves on. ``bot/run.sh`` runs this first
and refuses to start instead::

    python -m bot.check_model models/assistant.tar.gz

Exit codes: 0 the archive is whole and is a Rasa model, 2 otherwise, with a
one-line message naming the file. The components check their own stored
classifiers when Rasa loads them (``nlu_components._shared.ModelRefused``).
"""

from __future__ import annotations

import argparse
import sys
import tarfile
import zlib
from pathlib import Path

# Every archive `rasa train` writes has these; the metadata names the components.
REQUIRED_MEMBERS = ("metadata.json",)


class ModelArchiveError(Exception):
    """The file is not a whole Rasa model archive."""


def check_model_archive(path: str | Path) -> list[str]:
    """Reads the whole archive (every member's data, so truncation shows).

    Returns:
        The member names.

    Raises:
        ModelArchiveError: naming the file and what is wrong with it.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelArchiveError(f"model '{path}' does not exist; run `rasa train`")
    names = []
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                names.append(member.name.lstrip("./"))
                if member.isfile():
                    extracted = archive.extractfile(member)
                    while extracted is not None and extracted.read(1 << 20):
                        pass
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise ModelArchiveError(
            f"model '{path}' is truncated or not a Rasa model archive ({error}); "
            "run `rasa train` again") from None
    missing = [name for name in REQUIRED_MEMBERS if name not in names]
    if missing:
        raise ModelArchiveError(f"model '{path}' is not a Rasa model: it has no "
                                f"{', '.join(missing)}; run `rasa train` again")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.check_model",
                                     description="Check a Rasa model archive before serving it.")
    parser.add_argument("model", help="the .tar.gz written by `rasa train`")
    args = parser.parse_args(argv)
    try:
        check_model_archive(args.model)
    except ModelArchiveError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
