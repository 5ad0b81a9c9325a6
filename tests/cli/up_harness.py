"""``waybill up`` with stand-in services, for the foreground-launcher tests.

``python -m tests.cli.up_harness RUN_DIR BASE_PORT [--no-restart]`` runs
``cli.up.run`` on a mesh of orders and tracking played by
tests/cli/fake_service.py, supervised as ``waybill up`` is unless
``--no-restart``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cli import up
from cli.launcher import RestartPolicy
from tests.cli.fakes import fake_mesh

NAMES = ("orders", "tracking")


def main() -> int:
    """Run the foreground launcher until it is signalled; its exit status."""
    run_dir, base_port = Path(sys.argv[1]), int(sys.argv[2])
    restart = None if "--no-restart" in sys.argv[3:] else RestartPolicy()
    mesh = fake_mesh(run_dir, NAMES, base_port=base_port, restart=restart)
    return up.run(mesh, timeout_s=60.0, out=sys.stdout, err=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
