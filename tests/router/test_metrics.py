"""Router metrics: classifications by intent and method, the drift signal, the version."""

from __future__ import annotations

from prometheus_client import REGISTRY

from router.exemplars import Exemplar
from router.intents import I
from tests.router.conftest import MakeClassifier


def _value(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _versions() -> set[str]:
    """Versions the classifier info metric reports (exactly one: the one in use)."""
    return {
        sample.labels["version"]
        for metric in REGISTRY.collect()
        if metric.name == "waybill_router_classifier"
        for sample in metric.samples
    }


async def test_classifications_and_low_confidence_are_counted(
    make_classifier: MakeClassifier,
) -> None:
    classifier = make_classifier()
    tracking = {"intent": "tracking_status", "method": "embedding"}
    before = _value("waybill_router_classifications_total", tracking)
    low_before = _value("waybill_router_low_confidence_total", {"reason": "out_of_scope"})
    await classifier.classify("where is my order?")
    await classifier.classify("what's the weather on Mars")
    assert _value("waybill_router_classifications_total", tracking) == before + 1
    assert (
        _value("waybill_router_low_confidence_total", {"reason": "out_of_scope"}) == low_before + 1
    )
    assert (_value("waybill_router_batch_size_count", {})) > 0


async def test_the_shipped_version_is_published_and_swaps_are_counted(
    make_classifier: MakeClassifier,
) -> None:
    """Tenants' versions are per call (ClassifyResponse, GetClassifierInfo), not metric
    labels: one series per tenant would grow without bound."""
    classifier = make_classifier()
    assert _versions() == {classifier.snapshot.version}
    swaps = _value("waybill_router_index_swaps_total", {})
    await classifier.add_exemplars(
        [Exemplar("my crate is stuck at customs", I.INTENT_TRACKING_STATUS)],
        "metrics-0001",
        tenant_id="acme-retail",
    )
    assert _versions() == {classifier.snapshot.version}
    assert _value("waybill_router_index_swaps_total", {}) == swaps + 1
    assert _value("waybill_router_exemplars", {}) == len(classifier.snapshot.index)
