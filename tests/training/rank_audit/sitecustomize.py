"""Records the files each ``torchrun`` rank writes, for ``tests/training/test_distributed.py``.

Python imports ``sitecustomize`` at start-up from the path; the test puts this
folder on ``PYTHONPATH`` of the launch only. When ``TRAINING_TEST_AUDIT_DIR``
is set, an audit hook appends every path the process opens for writing,
creates, renames or removes to ``writes-rank-<RANK>.txt`` there. Files that
native code writes (safetensors, tokenizers) are not seen, but every artifact
write also opens files from Python (``config.json``, ``classifier.json``, ...).
"""

from __future__ import annotations

import os
import sys

_DIRECTORY = os.environ.get("TRAINING_TEST_AUDIT_DIR", "")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND
_EVENTS = {"os.mkdir": 0, "os.rename": 1, "os.remove": 0, "shutil.rmtree": 0}


def _install(directory: str) -> None:
    log_path = os.path.join(directory, f"writes-rank-{os.environ.get('RANK', 'none')}.txt")
    busy = []  # writing the log opens a file too: not recorded, and no recursion

    def written_path(event: str, args: tuple) -> object | None:
        if event == "open" and len(args) >= 3:
            path, mode, flags = args[:3]
            if isinstance(mode, str):
                return path if any(flag in mode for flag in "wax+") else None
            return path if isinstance(flags, int) and flags & _WRITE_FLAGS else None
        if event in _EVENTS and len(args) > _EVENTS[event]:
            return args[_EVENTS[event]]
        return None

    def hook(event: str, args: tuple) -> None:
        if busy:
            return
        path = written_path(event, args)
        if not isinstance(path, (str, bytes, os.PathLike)):
            return
        busy.append(True)
        try:
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(f"{event}\t{os.path.abspath(os.fsdecode(path))}\n")
        finally:
            busy.pop()

    sys.addaudithook(hook)


if _DIRECTORY:
    os.makedirs(_DIRECTORY, exist_ok=True)
    _install(_DIRECTORY)
