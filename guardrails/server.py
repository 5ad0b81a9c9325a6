"""Wiring of the guardrails process: settings, the PII analyzer, the injection
classifier, warm-up, serving. A missing classifier stops it at once with a message
naming the setup command."""

from __future__ import annotations

import logging
import sys

from waybill.guardrails.v1 import guardrails_service_pb2_grpc as pb_grpc

from guardrails.injection import InjectionModel, InjectionScorer, locate_model
from guardrails.pii import PiiRedactor
from guardrails.service import GuardrailsServicer
from guardrails.settings import GuardrailsSettings
from runtime import logs, mesh
from runtime.canary import Canaries
from runtime.pii import Pseudonymizer
from runtime.server import Registration, serve
from runtime.settings import SettingsError

log = logging.getLogger("waybill.guardrails")
EXIT_CONFIG = 1


def build(settings: GuardrailsSettings) -> GuardrailsServicer:
    """The servicer with its models loaded and warmed (a first call costs nothing extra)."""
    scorer = InjectionScorer(
        InjectionModel(locate_model(settings.model_dir), threads=settings.threads)
    )
    redactor = PiiRedactor(Pseudonymizer(settings.key))
    scorer.score("warm-up: please tell me where my parcel WB1234567890 is")  # classified
    redactor.redact("warm-up: call me at +1 415 555 0134", "warm-up")
    return GuardrailsServicer(redactor, scorer, Canaries(settings.key), settings.thresholds)


async def main() -> None:
    """Serve the guardrails."""
    try:
        settings = GuardrailsSettings.from_env()
        servicer = build(settings)
    except (SettingsError, FileNotFoundError) as exc:
        logs.configure("guardrails")
        log.error("guardrails cannot start: %s", exc)
        sys.exit(EXIT_CONFIG)
    add = pb_grpc.add_GuardrailsServiceServicer_to_server
    try:
        await serve(
            settings.service,
            [Registration(mesh.spec("guardrails").grpc_services[0], add, servicer)],
        )
    finally:
        servicer.close()
