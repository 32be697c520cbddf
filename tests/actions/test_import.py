from __future__ import annotations

import subprocess
import sys

from tests.served import ENV, ROOT


def test_importing_the_action_server_loads_neither_torch_nor_transformers() -> None:
    code = ("import sys, actions; "
            "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV,
                            capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
