"""Serve the CPU test model repository with the Triton server nvidia-pytriton bundles.

Runs in ``.venv-triton`` (nvidia-pytriton 0.7 wants numpy<2, the platform runs
numpy 2), started by ``cli/triton.py``. Binds loopback only. The model
repository endpoints (load/unload) and statistics stay restricted to callers
presenting ``WAYBILL_TRITON_ACCESS_TOKEN``; SIGTERM stops the server cleanly.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType

HERE = Path(__file__).resolve().parent


def _stop(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--metrics-port", type=int, required=True)
    parser.add_argument("--repository", type=Path, default=HERE, help="model repository")
    parser.add_argument("--workspace", type=Path, help="scratch folder (default: a temp dir)")
    args = parser.parse_args()

    from pytriton.triton import Triton, TritonConfig, TritonSecurityConfig

    signal.signal(signal.SIGTERM, _stop)
    token = os.environ.get("WAYBILL_TRITON_ACCESS_TOKEN") or secrets.token_urlsafe(24)
    config = TritonConfig(
        model_repository=args.repository,
        grpc_address=args.host,
        grpc_port=args.grpc_port,
        http_address=args.host,
        http_port=args.http_port,
        metrics_address=args.host,
        metrics_port=args.metrics_port,
        exit_timeout_secs=5,
        log_verbose=0,
    )
    workspace = args.workspace or Path(tempfile.mkdtemp(prefix="waybill-triton-"))
    print(f"waybill-triton: starting on {args.host}:{args.grpc_port}", flush=True)
    with Triton(
        config=config, workspace=workspace, security_config=TritonSecurityConfig(access_token=token)
    ) as triton:
        print(f"waybill-triton: serving grpc={args.host}:{args.grpc_port}", flush=True)
        triton.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
