"""Wiring of the router process: settings, model, exemplars, warm-up, serving.

The process reports NOT_SERVING until the model has embedded the exemplars and
answered a first query, and again for good if the classifier's batching loop
ever stops (nothing would answer any more; a load balancer or the launcher
must stop sending calls here). Missing model files stop it at once with a
message naming the setup command.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass

from waybill.router.v1 import router_service_pb2_grpc as pb_grpc

from embeddings import Embedder, EmbedderOptions, ModelMissingError
from embeddings.store import ModelFiles, locate
from router import exemplars
from router.admin_keys import AdminKeys
from router.calibration import Calibration
from router.classifier import Classifier, ClassifierOptions
from router.exemplars import Exemplar
from router.service import RouterServicer
from router.settings import RouterSettings
from router.store import ExemplarStore, FileExemplarStore, MemoryExemplarStore, StoreUnavailable
from runtime import logs, mesh, metrics
from runtime.server import Registration, RunningServer, start
from runtime.settings import ServiceSettings, SettingsError

log = logging.getLogger("waybill.router")
EXIT_CONFIG = 1


@dataclass(frozen=True, slots=True)
class Loaded:
    """What the router reads from disk before it starts serving."""

    files: ModelFiles
    """The embedding model export."""
    calibration: Calibration
    """Confidence model and threshold, fitted for the model variant in use."""
    base: list[Exemplar]
    """The shipped exemplars and follow-ups."""


def load(options: RouterSettings) -> Loaded:
    """Read the model, calibration and exemplars; SettingsError/ValueError on a mismatch."""
    files = locate(options.model_dir)
    calibration = Calibration.load(options.calibration)
    if calibration.quantized != options.quantized:
        variant = "int8" if calibration.quantized else "fp32"
        raise SettingsError(
            f"{options.calibration} was fitted for the {variant} model but"
            f" WAYBILL_ROUTER_QUANTIZED={'1' if options.quantized else '0'}: point"
            " WAYBILL_ROUTER_CALIBRATION at a calibration for that variant"
            " (python -m router.calibrate [--fp32] --out FILE)"
        )
    base = base_exemplars(options)
    return Loaded(files=files, calibration=calibration, base=base)


def load_admin_keys(options: RouterSettings) -> AdminKeys:
    """The admin keys file (none configured: no AddExemplars); SettingsError when unusable."""
    if options.admin_keys is None:
        log.warning("no WAYBILL_ROUTER_ADMIN_KEYS: every AddExemplars will be refused")
        return AdminKeys()
    try:
        return AdminKeys.load(options.admin_keys)
    except OSError as exc:
        raise SettingsError(
            f"WAYBILL_ROUTER_ADMIN_KEYS={options.admin_keys}: cannot read"
            f" ({exc.strerror or type(exc).__name__})"
        ) from None


async def open_store(options: RouterSettings) -> ExemplarStore:
    """The added exemplars' store: PostgreSQL with a DSN, else the data dir's file, else
    memory; StoreUnavailable when PostgreSQL cannot be reached."""
    if options.store_dsn:
        from router.pg_store import PostgresExemplarStore  # psycopg only for the fleet

        return await PostgresExemplarStore.open(options.store_dsn, schema=options.store_schema)
    if options.added_exemplars is not None:
        return FileExemplarStore(options.added_exemplars)
    return MemoryExemplarStore()


def base_exemplars(options: RouterSettings) -> list[Exemplar]:
    """The exemplars every tenant shares: the corpus and the referring follow-ups."""
    return exemplars.load(options.exemplars) + exemplars.load_follow_ups(options.follow_ups)


def not_serving_when_stopped(running: RunningServer) -> Callable[[BaseException | None], None]:
    """A batcher ``on_stopped`` hook that turns every health status NOT_SERVING."""
    flips: set[asyncio.Task[None]] = set()

    def stopped(error: BaseException | None) -> None:
        # Called from the loop task's done callback: the health update is a coroutine.
        task = asyncio.get_running_loop().create_task(running.set_serving(False))
        flips.add(task)
        task.add_done_callback(flips.discard)

    return stopped


async def main() -> None:
    """Serve the router."""
    settings = ServiceSettings.from_env("router")
    try:
        options = RouterSettings.from_env()
        loaded = load(options)
        admin_keys = load_admin_keys(options)
        store = await open_store(options)
    except (ModelMissingError, SettingsError, ValueError) as exc:
        # Before serving: the launcher shows this line as the reason the start failed.
        print(f"router: cannot start: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_CONFIG) from None
    except StoreUnavailable as exc:
        print(f"router: cannot start: exemplar store unavailable ({exc})", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None
    try:
        await serve(settings, options, loaded, store=store, admin_keys=admin_keys)
    finally:
        await store.close()


async def serve(
    settings: ServiceSettings,
    options: RouterSettings,
    loaded: Loaded,
    *,
    store: ExemplarStore,
    admin_keys: AdminKeys,
) -> None:
    """Run until SIGTERM or SIGINT: start, warm up, SERVING, then stop gracefully.

    The steps of ``runtime.server.serve``, kept here because the router must
    hold its server's health to report a stopped classifier.
    """
    logs.configure(settings.name, settings.log_level)
    metrics.expose(settings.metrics_port, settings.metrics_host)
    servicer = RouterServicer(admin_keys=admin_keys)
    add = pb_grpc.add_RouterServiceServicer_to_server
    running = await start(
        settings, [Registration(mesh.spec("router").grpc_services[0], add, servicer)]
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    classifiers: list[Classifier] = []
    on_stopped = not_serving_when_stopped(running)

    async def ready() -> None:
        classifier = await loop.run_in_executor(
            None, _build, options, loaded, settings, store, on_stopped
        )
        classifiers.append(classifier)
        # Every tenant's added exemplars before serving: a late replica serves the
        # versions the others serve.
        await classifier.sync()
        classifier.start(follow=True)
        # SERVING only once a query has gone through the whole path.
        await classifier.classify("where is my order?")
        servicer.attach(classifier)
        snapshot = classifier.snapshot
        log.info(
            "classifier ready",
            extra={
                "version": snapshot.version,
                "exemplars": len(snapshot.index),
                "store_sequence": classifier.applied_sequence,
            },
        )

    # A stop signal during warm-up (embedding the exemplars) is honoured at once.
    warm = asyncio.ensure_future(ready())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({warm, stopping}, return_when=asyncio.FIRST_COMPLETED)
    try:
        if not warm.done():
            warm.cancel()
            await asyncio.gather(warm, return_exceptions=True)
        else:
            stopping.cancel()
            warm.result()
            if all(c.running for c in classifiers):
                await running.set_serving(True)
                # The batcher may have stopped while the statuses were being set.
                if not all(c.running for c in classifiers):
                    await running.set_serving(False)
                log.info(
                    "serving",
                    extra={"address": _address(settings, running), "services": list(running.names)},
                )
            await stop.wait()
    finally:
        log.info("stopping", extra={"drain_s": settings.drain_s, "grace_s": settings.grace_s})
        await running.stop(drain_s=settings.drain_s, grace_s=settings.grace_s)
        for classifier in classifiers:
            await classifier.close()
        log.info("stopped")


def _build(
    options: RouterSettings,
    loaded: Loaded,
    settings: ServiceSettings,
    store: ExemplarStore,
    on_stopped: Callable[[BaseException | None], None],
) -> Classifier:
    """The warm classifier (blocking: seconds of embedding; runs on a worker thread)."""
    embedder = Embedder(
        loaded.files,
        EmbedderOptions(
            intra_op_threads=options.threads,
            quantized=options.quantized,
            cache_size=options.embedding_cache,
        ),
    )
    embedder.warm()
    return Classifier.build(
        embedder,
        loaded.base,
        loaded.calibration,
        options=ClassifierOptions(
            batch=options.batch,
            deadlines=settings.deadline_policy(),
            follow_poll_s=options.store_poll_s,
            decision_cache=options.embedding_cache,
        ),
        store=store,
        vectors_dir=options.index_dir,
        on_stopped=on_stopped,
    )


def _address(settings: ServiceSettings, running: RunningServer) -> str:
    return f"{settings.address.rpartition(':')[0]}:{running.port}"
