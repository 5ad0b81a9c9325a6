"""Wiring of the router process: settings, model, exemplars, warm-up, serving.

The process reports NOT_SERVING until the model has embedded the exemplars and
answered a first query. Missing model files stop it at once with a message
naming the setup command.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from waybill.router.v1 import router_service_pb2_grpc as pb_grpc

from embeddings import Embedder, EmbedderOptions, ModelMissingError
from embeddings.store import locate
from router import exemplars
from router.calibration import Calibration
from router.classifier import Classifier, ClassifierOptions
from router.service import RouterServicer
from router.settings import RouterSettings
from runtime import mesh
from runtime.server import Registration, serve
from runtime.settings import ServiceSettings, SettingsError

log = logging.getLogger("waybill.router")
EXIT_CONFIG = 1


async def main() -> None:
    """Serve the router."""
    settings = ServiceSettings.from_env("router")
    try:
        options = RouterSettings.from_env()
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
        base = exemplars.load(options.exemplars) + exemplars.load_follow_ups(options.follow_ups)
        added = exemplars.load_added(options.added_exemplars) if options.added_exemplars else []
    except (ModelMissingError, SettingsError, ValueError) as exc:
        # Before serving: the launcher shows this line as the reason the start failed.
        print(f"router: cannot start: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_CONFIG) from None
    servicer = RouterServicer()
    running: list[Classifier] = []

    async def ready() -> None:
        loop = asyncio.get_running_loop()

        def build() -> Classifier:
            embedder = Embedder(
                files,
                EmbedderOptions(
                    intra_op_threads=options.threads,
                    quantized=options.quantized,
                    cache_size=options.embedding_cache,
                ),
            )
            embedder.warm()
            return Classifier.build(
                embedder,
                base,
                calibration,
                added=added,
                options=ClassifierOptions(batch=options.batch),
                added_path=options.added_exemplars,
            )

        classifier = await loop.run_in_executor(None, build)
        running.append(classifier)
        classifier.start()
        # SERVING only once a query has gone through the whole path.
        await classifier.classify("where is my order?")
        servicer.attach(classifier)
        snapshot = classifier.snapshot
        log.info(
            "classifier ready",
            extra={"version": snapshot.version, "exemplars": len(snapshot.index)},
        )

    async def on_stop() -> None:
        for classifier in running:
            await classifier.close()

    add = pb_grpc.add_RouterServiceServicer_to_server
    await serve(
        settings,
        [Registration(mesh.spec("router").grpc_services[0], add, servicer)],
        ready=ready,
        on_stop=on_stop,
    )
