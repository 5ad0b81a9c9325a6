"""Waybill's model API as an anchor-bench target: the gateway (with the guardrails and the
ledger it governs calls with) serving ``/v1`` on ``--port``, the LLM pool's ``openai``
backend pointed at ``--upstream``.

``python -m bench.model_api_target --run-dir DIR --port 18120 --upstream http://127.0.0.1:18000/v1``

Governance is on: API keys, rate limits (set high, so they are checked but do not bind),
a reservation and a commit in the ledger per call, the audit log. The input guardrail is
on unless ``--no-guardrails``. The keys are the run directory's demo keys
(``bench.anchor`` creates them before the target starts, so it can hand one to the load).
Runs until SIGTERM or SIGINT, then stops every service it started.

Exit codes: 0 stopped cleanly; 1 the mesh could not start; 2 usage.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from bench import load_limits
from cli.launcher import Mesh, MeshError
from cli.ports import free_base_port
from runtime import mesh

SERVICES = ("guardrails", "ledger", "gateway")
UPSTREAM_MODEL = "gpt-4o-mini"
"""The model name the upstream is called with and callers ask for (priced in the table)."""


def environment(*, port: int, upstream: str, guardrails: bool) -> dict[str, str]:
    """The mesh's environment for one target."""
    return {
        **load_limits.GATEWAY_ENV,
        "WAYBILL_LLM_OPENAI_URL": upstream,
        "WAYBILL_LLM_OPENAI_MODEL": UPSTREAM_MODEL,
        "WAYBILL_MODEL_API_ADDRESS": f"127.0.0.1:{port}",
        "WAYBILL_MODEL_API_GUARDRAILS": "1" if guardrails else "0",
        "WAYBILL_LOG_LEVEL": "WARNING",
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.model_api_target", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--run-dir", type=Path, required=True, help="the mesh's run directory")
    parser.add_argument("--port", type=int, required=True, help="the model API's port")
    parser.add_argument("--upstream", required=True, help="base URL of the OpenAI-protocol stub")
    parser.add_argument("--no-guardrails", action="store_true", help="skip the input check")
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_signal(_sig: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    env = environment(port=args.port, upstream=args.upstream, guardrails=not args.no_guardrails)
    try:
        with Mesh(
            run_dir=args.run_dir,
            base_port=free_base_port(len(mesh.SERVICES)),
            services=list(SERVICES),
            env=env,
        ):
            print(f"model API on http://127.0.0.1:{args.port}/v1", flush=True)
            stop.wait()
    except MeshError as exc:
        print(f"the mesh did not start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
