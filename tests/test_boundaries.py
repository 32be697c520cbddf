"""The two servers share only ``cs_core``: what each package may import.

The Rasa server runs ``nlu_components`` (components and policies) and ``bot``
(channels); the action server runs ``actions``. Neither may load the other,
and ``cs_core`` loads neither framework. The agent console (``console``) is a
third process: it may use the shop database through ``actions``, but reaches Rasa
only over its HTTP API, and no server imports it.
"""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from tests.served import ENV, ROOT

RASA_SIDE = ("nlu_components", "bot")
# Rasa's own SQL tracker store is SQLAlchemy: its subclass speaks it too. It reads
# Rasa's events table only, never the shop database.
ALLOWED = {"bot/tracker_cache.py": {"sqlalchemy"}}
ACTION_SIDE = ("actions",)


def imported_packages(package: str) -> dict[str, set[str]]:
    """Top-level packages each module of ``package`` imports, statically (lazy imports too)."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize(("package", "forbidden"), [
    *[(package, {"actions", "rasa_sdk", "sqlalchemy", "console"}) for package in RASA_SIDE],
    *[(package, {"nlu_components", "bot", "rasa", "console"}) for package in ACTION_SIDE],
    ("cs_core", {"rasa", "rasa_sdk", "actions", "nlu_components", "bot", "training", "torch",
                 "sqlalchemy", "aiohttp", "console"}),
    ("console", {"rasa", "rasa_sdk", "nlu_components", "bot", "training", "torch"}),
    ("training", {"rasa", "rasa_sdk", "actions", "nlu_components", "bot", "cs_core"}),
])
def test_no_module_imports_across_the_boundary(package: str, forbidden: set[str]) -> None:
    crossings = {module: sorted((names - ALLOWED.get(module, set())) & forbidden)
                 for module, names in imported_packages(package).items()
                 if (names - ALLOWED.get(module, set())) & forbidden}

    assert crossings == {}


def loaded_after(setup: str, code: str) -> list[str]:
    """Modules that ``code`` loads beyond ``setup``, in a fresh interpreter."""
    program = (f"import sys\n{setup}\nbefore = set(sys.modules)\n{code}\n"
               "print('\\n'.join(sorted(set(sys.modules) - before)))")
    result = subprocess.run([sys.executable, "-c", program], cwd=ROOT, env=ENV,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.split()


def test_importing_the_rasa_components_loads_nothing_of_the_action_server() -> None:
    # Rasa's own component registry (DefaultV1Recipe) imports aiohttp itself, so
    # the baseline is what registering any custom component costs.
    rasa_registry = ("import rasa.engine.recipes.default_recipe, rasa.core.policies.policy, "
                     "rasa.shared.exceptions")
    loaded = loaded_after(rasa_registry, "import nlu_components")

    for heavy in ("sqlalchemy", "rasa_sdk", "aiohttp", "actions", "torch", "transformers"):
        assert not any(m == heavy or m.startswith(heavy + ".") for m in loaded), heavy
    assert {m.split(".")[0] for m in loaded} <= {"nlu_components", "cs_core", "training",
                                                 "rasa", "yaml"}, loaded


def test_importing_the_action_server_loads_nothing_of_the_rasa_server() -> None:
    loaded = loaded_after("", "import actions")

    assert not {m.split(".")[0] for m in loaded} & {"rasa", "nlu_components", "bot", "training"}


@pytest.mark.parametrize("package", ["nlu_components", "actions"])
def test_importing_a_server_package_changes_no_logging(package: str) -> None:
    # Log masking is the start-up hooks' job, not an import side effect.
    loaded = loaded_after("import logging; factory = logging.getLogRecordFactory()",
                          f"import {package}\n"
                          "assert logging.getLogRecordFactory() is factory\n"
                          "assert not any(h.filters for h in logging.getLogger().handlers)")

    assert loaded
