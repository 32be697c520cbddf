"""The Rasa server's start-up hook: every process-wide setting, in one place.

``install()`` runs once, before Rasa loads a model, from the launcher
``python -m bot.serve`` (``make run`` and the tests use it). It

- masks e-mails, phone and card numbers in every log record of the process
  (``cs_core.privacy``), whatever the config's components and policies are;
- bounds Rasa's wait for the action server with ``ActionFailurePolicy``'s
  ``action_timeout`` from ``config.yml`` (Rasa 3.6 offers no other way to set it).

Components and policies never change process-wide state themselves; when the
hook has not run (a plain ``rasa run``), ``_shared.warn_if_not_installed``
says so once, when a model is loaded.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import yaml

from cs_core.privacy import mask_all_records
from nlu_components import _shared
from nlu_components.policies.action_failure import NAME as ACTION_FAILURE
from nlu_components.policies.action_failure import ActionFailureConfig

logger = logging.getLogger(__name__)


def install(config_path: str | Path | None = None) -> None:
    """Applies the Rasa server's process-wide settings (idempotent).

    Args:
        config_path: The Rasa ``config.yml``; default ``$RASA_CONFIG`` or ``config.yml``.

    Raises:
        InvalidConfigException: ``ActionFailurePolicy``'s options are invalid.
    """
    mask_all_records()
    timeout = action_timeout(Path(config_path or os.environ.get("RASA_CONFIG") or "config.yml"))
    if timeout is not None:
        set_action_timeout(timeout)


def action_timeout(config_path: Path) -> float | None:
    """``ActionFailurePolicy``'s ``action_timeout`` in a config file, or ``None``
    when the file or the policy is absent (Rasa's own wait then applies)."""
    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        logger.warning("no action timeout from %s: %s", config_path, error)
        return None
    policies = config.get("policies") if isinstance(config, Mapping) else None
    for policy in policies if isinstance(policies, list) else []:
        name = policy.get("name", "") if isinstance(policy, Mapping) else ""
        if isinstance(name, str) and name.rsplit(".", 1)[-1] == ACTION_FAILURE:
            options = {key: value for key, value in policy.items() if key != "name"}
            return float(_shared.parse_config(ActionFailureConfig, options,
                                              ACTION_FAILURE).action_timeout)
    return None


def set_action_timeout(seconds: float) -> None:
    """Makes Rasa's calls to the action server give up after ``seconds``.

    ``RemoteAction.run`` reads the module constant at call time; this is the
    only place a configured value can reach it in Rasa 3.6.
    """
    import rasa.core.actions.action as rasa_action

    if rasa_action.DEFAULT_REQUEST_TIMEOUT != seconds:
        rasa_action.DEFAULT_REQUEST_TIMEOUT = seconds
        logger.info("calls to the action server time out after %s s", seconds)
