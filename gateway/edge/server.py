"""Running the edge: uvicorn with uvloop and httptools, JSON logs, graceful stop."""

from __future__ import annotations

import logging
import signal
import sys

import uvicorn

from gateway.demo_tokens import DemoTokenSigner
from gateway.edge.app import create_app
from gateway.edge.demo import DemoCredentials
from gateway.edge.settings import EdgeSettings
from runtime import logs, telemetry
from runtime.server import run
from runtime.settings import SettingsError

EXIT_CONFIG = 1

log = logging.getLogger("waybill.edge")


class _PlainRecords(logging.Filter):
    """Drops uvicorn's ANSI-colored duplicate of each message from the JSON lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.__dict__.pop("color_message", None)
        return True


def config(
    settings: EdgeSettings, demo: DemoCredentials | None, signer: DemoTokenSigner | None = None
) -> uvicorn.Config:
    """The uvicorn configuration of the edge (call inside the running loop: the
    gateway channel binds to it)."""
    app = create_app(settings, demo=demo, signer=signer, tracer=telemetry.configure("edge"))
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        # The loop is ours (runtime.server.run: uvloop); httptools parses HTTP/1.1.
        loop="none",
        http="httptools",
        ws="none",
        lifespan="on",
        # Our own JSON access log replaces uvicorn's (which would print paths with ids).
        access_log=False,
        log_config=None,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=int(max(settings.grace_s, 1)),
        server_header=False,
    )


async def serve(
    settings: EdgeSettings, demo: DemoCredentials | None, signer: DemoTokenSigner | None = None
) -> None:
    """Serve until SIGTERM or SIGINT (uvicorn handles both, draining open requests)."""
    if demo is not None:
        log.warning(
            "demo credentials on: requests without a credential act for a demo tenant",
            extra={"tenants": demo.tenants},
        )
    server = uvicorn.Server(config(settings, demo, signer))
    log.info("serving", extra={"address": settings.address, "gateway": settings.gateway})
    try:
        await server.serve()
    finally:
        log.info("stopped")


def demo_signer(settings: EdgeSettings) -> DemoTokenSigner | None:
    """The demo token signer the settings name, if any; SettingsError when unusable."""
    if settings.demo_signing_key is None:
        return None
    try:
        return DemoTokenSigner.load(
            settings.demo_signing_key,
            issuer=settings.demo_issuer,
            audience=settings.demo_audience,
        )
    except (OSError, ValueError) as exc:
        raise SettingsError(f"demo token key {settings.demo_signing_key}: {exc}") from None


def _exit_cleanly(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def main() -> None:
    """``python -m gateway.edge``; exits 1 with one line naming the problem on bad settings."""
    try:
        settings = EdgeSettings.from_env()
        demo = (
            DemoCredentials.load(settings.demo_credentials)
            if settings.demo_credentials is not None
            else None
        )
        signer = demo_signer(settings)
    except SettingsError as exc:
        # Before serving: the launcher shows this line as the reason the start failed.
        print(f"edge: cannot start: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_CONFIG) from None
    logs.configure("edge", settings.log_level)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_PlainRecords())
    # uvicorn drains on SIGTERM/SIGINT, restores the handlers it found and raises the
    # signal again. With this one found, that ends the process with status 0, as
    # every service of the mesh does; a signal before uvicorn listens stops it too.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_cleanly)

    async def _main() -> None:
        await serve(settings, demo, signer)

    run(_main)
