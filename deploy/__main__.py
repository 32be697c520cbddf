"""``python -m deploy`` (``make scale``): the scale stack on this machine until Ctrl+C.

Trains the assistant first when ``models/assistant.tar.gz`` is missing (as
``make run`` does), starts the stack of :mod:`deploy.stack`, prints where
everything is, restarts a Rasa instance or action server that exits (as an
orchestrator would), and stops everything cleanly on Ctrl+C or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

from deploy.config import ROOT, SCALE_DIR, StackConfig
from deploy.stack import BASE_ENV, PYTHON, Stack


def train_if_missing(config: StackConfig) -> None:
    """``rasa train`` as ``make run`` does, only when there is no model yet."""
    if config.model.is_file():
        return
    print(f"no model at {config.model}: training the assistant (rasa train)", flush=True)
    import os

    env = os.environ | BASE_ENV
    subprocess.run([str(PYTHON.parent / "rasa"), "train", "--fixed-model-name",
                    config.model.name.removesuffix(".tar.gz"), "--out", str(config.model.parent)],
                   cwd=ROOT, check=True, env=env)
    # Rasa would serve empty answers from an unreadable archive; refuse instead.
    subprocess.run([str(PYTHON), "-m", "bot.check_model", str(config.model)], cwd=ROOT,
                   check=True, env=env)


def where(stack: Stack) -> str:
    """The addresses a person needs, without any secret."""
    ports, config, secrets = stack.ports, stack.config, stack.config.secrets_dir
    rasa = ", ".join(f"127.0.0.1:{port}" for port in ports.rasa)
    actions = ", ".join(f"127.0.0.1:{port}" for port in ports.actions)
    message = '{"sender": "me", "message": "where is my order 12345?"}'
    lines = [
        "",
        "The scale stack is up (Ctrl+C stops it):",
        f"  web chat:    http://localhost:{ports.balancer}/webhooks/webchat/ (through HAProxy)",
        f"  REST:        curl -s localhost:{ports.balancer}/webhooks/rest/webhook "
        f"-H 'Content-Type: application/json' -d '{message}'",
        f"  HAProxy:     http://127.0.0.1:{ports.stats}/ (statistics); admin socket "
        f"{stack.admin_socket}",
        f"  Rasa:        {config.rasa_instances} instances on {rasa}",
        f"               (HTTP API: JWT signed with {secrets}/rasa_jwt_secret)",
        f"  actions:     {config.action_servers} servers on {actions},",
        f"               behind 127.0.0.1:{ports.actions_balancer}",
        f"  PostgreSQL:  127.0.0.1:{ports.postgres}, role {config.database_user}: "
        f"{config.tracker_database} (tracker store), {config.shop_database} (shop)",
        f"               password in {secrets}/scale_postgres_password",
        f"  Redis:       127.0.0.1:{ports.redis} (lock store); password in "
        f"{secrets}/scale_redis_password",
        f"  files:       {stack.work} (configuration, the cluster, logs/)",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=2, help="Rasa instances (default 2)")
    parser.add_argument("--action-servers", type=int, default=2)
    parser.add_argument("--base-port", type=int, default=8005,
                        help="the balancer's port; the others follow it (default 8005)")
    parser.add_argument("--stickiness", choices=("cookie", "source"), default="cookie",
                        help="how socket.io sessions stay on their instance")
    options = parser.parse_args(argv)
    config = StackConfig(work_dir=SCALE_DIR / "stack", rasa_instances=options.instances,
                         action_servers=options.action_servers, base_port=options.base_port,
                         socketio_stickiness=options.stickiness)
    train_if_missing(config)
    stack = Stack(config, say=lambda line: print(line, flush=True))

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    try:
        stack.start()
        print(where(stack), flush=True)
        while True:
            for server in (*stack.rasa, *stack.actions):
                if not server.alive():
                    # As an orchestrator: the balancer routes around it meanwhile.
                    code = server.process.returncode if server.process else None
                    print(f"{server.name} exited ({code}); restarting it", flush=True)
                    server.start()
            for server in (stack.haproxy, stack.redis):
                if server is not None and not server.alive():
                    print(f"{server.name} exited; see {server.log}", file=sys.stderr)
                    return 1
            time.sleep(2)
    except KeyboardInterrupt:
        print("\nstopping the stack", flush=True)
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
