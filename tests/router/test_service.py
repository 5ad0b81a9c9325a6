"""RouterService on a real aio server with the production interceptors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2
from waybill.common.v1.intent_pb2 import Intent, Worker
from waybill.router.v1 import router_service_pb2 as pb
from waybill.router.v1 import router_service_pb2_grpc as pb_grpc

from router.admin_keys import AdminKey, AdminKeys, digest
from router.classifier import Classifier, ClassifierOptions, embed_texts
from router.intents import I
from router.service import RouterServicer
from runtime.errors import details_of, error_info_of, violations_of
from runtime.server import Registration
from tests.conftest import StartServer
from tests.router.conftest import MakeClassifier

Stub = pb_grpc.RouterServiceStub
TENANT = "acme-retail"
OTHER = "globex-home"
KEY = "wbra_test_acme_key"
OTHER_KEY = "wbra_test_globex_key"
ADMIN_KEYS = AdminKeys(
    [AdminKey(TENANT, digest(KEY), "acme admin"), AdminKey(OTHER, digest(OTHER_KEY), "globex")]
)
AUTH = (("authorization", f"Bearer {KEY}"),)


async def _stub(
    serve: StartServer,
    channels: Callable[[str], grpc.aio.Channel],
    servicer: RouterServicer,
) -> Stub:
    address = await serve(
        "router",
        [
            Registration(
                "waybill.router.v1.RouterService",
                pb_grpc.add_RouterServiceServicer_to_server,
                servicer,
            )
        ],
    )
    return Stub(channels(address))


@pytest.fixture
async def served(
    serve: StartServer,
    channels: Callable[[str], grpc.aio.Channel],
    make_classifier: MakeClassifier,
) -> tuple[Stub, Classifier]:
    classifier = make_classifier()
    servicer = RouterServicer(classifier, admin_keys=ADMIN_KEYS)
    return await _stub(serve, channels, servicer), classifier


async def test_classify_answers_with_the_embedding_classifier(
    served: tuple[Stub, Classifier],
) -> None:
    stub, classifier = served
    reply = await stub.Classify(
        pb.ClassifyRequest(tenant_id=TENANT, text="where is WB 4536 762 395?"), timeout=5
    )
    assert reply.method == pb.METHOD_EMBEDDING
    assert reply.intent == I.INTENT_TRACKING_STATUS
    assert reply.worker == I.WORKER_TRACKING
    assert not reply.low_confidence
    assert 0.0 < reply.confidence <= 1.0
    assert reply.classifier_version == classifier.snapshot.version
    assert len(reply.alternatives) == 3
    assert all(a.confidence < reply.confidence for a in reply.alternatives)


async def test_the_embedding_comes_back_only_for_the_workers_asked_for(
    serve: StartServer,
    channels: Callable[[str], grpc.aio.Channel],
    make_classifier: MakeClassifier,
) -> None:
    classifier = make_classifier(options=ClassifierOptions(decision_cache=100))
    stub = await _stub(serve, channels, RouterServicer(classifier, admin_keys=ADMIN_KEYS))
    policy = "how many days do I have to return something?"
    wanted = [I.WORKER_POLICY]
    reply = await stub.Classify(
        pb.ClassifyRequest(tenant_id=TENANT, text=policy, embedding_for=wanted), timeout=5
    )
    assert reply.worker == I.WORKER_POLICY
    assert reply.embedding.model_version == classifier.embedder.version
    # The very vector the classifier searched with: the message as the index embeds it.
    expected = embed_texts(classifier.embedder, [policy])[0]
    np.testing.assert_allclose(np.asarray(reply.embedding.values), expected, atol=1e-6)
    # A decision served from the decision cache carries it too.
    again = await stub.Classify(
        pb.ClassifyRequest(tenant_id=TENANT, text=policy, embedding_for=wanted), timeout=5
    )
    assert list(again.embedding.values) == list(reply.embedding.values)
    # Not asked for, or a worker not asked for: no vector on the wire.
    unasked = await stub.Classify(pb.ClassifyRequest(tenant_id=TENANT, text=policy), timeout=5)
    assert not unasked.HasField("embedding")
    tracking = await stub.Classify(
        pb.ClassifyRequest(
            tenant_id=TENANT, text="where is WB 4536 762 395?", embedding_for=wanted
        ),
        timeout=5,
    )
    assert tracking.worker == I.WORKER_TRACKING
    assert not tracking.HasField("embedding")


async def test_low_confidence_carries_the_question_and_no_worker(
    served: tuple[Stub, Classifier],
) -> None:
    stub, _ = served
    reply = await stub.Classify(
        pb.ClassifyRequest(tenant_id=TENANT, text="tell me a joke about cats"), timeout=5
    )
    assert reply.low_confidence
    assert reply.worker == I.WORKER_UNSPECIFIED
    assert reply.clarifying_question


async def test_previous_intent_routes_a_follow_up(served: tuple[Stub, Classifier]) -> None:
    stub, _ = served
    reply = await stub.Classify(
        pb.ClassifyRequest(
            tenant_id=TENANT, text="and the other one?", previous_intent=I.INTENT_TRACKING_ETA
        ),
        timeout=5,
    )
    assert reply.worker == I.WORKER_TRACKING
    assert not reply.low_confidence


@pytest.mark.parametrize(
    ("request_", "rule"),
    [
        (pb.ClassifyRequest(tenant_id=TENANT, text=""), "string.min_len"),
        (pb.ClassifyRequest(tenant_id=TENANT, text="x" * 4001), "string.max_len"),
        (pb.ClassifyRequest(text="hi", tenant_id="Bad Tenant"), "string.pattern"),
        (
            pb.ClassifyRequest(tenant_id=TENANT, text="hi", previous_intent=cast(Intent, 999)),
            "enum.defined_only",
        ),
        (
            pb.ClassifyRequest(tenant_id=TENANT, text="hi", embedding_for=[cast(Worker, 0)]),
            "enum.not_in",
        ),
        (
            pb.ClassifyRequest(tenant_id=TENANT, text="hi", embedding_for=[cast(Worker, 99)]),
            "enum.defined_only",
        ),
        (
            pb.ClassifyRequest(tenant_id=TENANT, text="hi", embedding_for=[I.WORKER_POLICY] * 17),
            "repeated.max_items",
        ),
    ],
)
async def test_bad_classify_requests_name_the_rule(
    served: tuple[Stub, Classifier], request_: pb.ClassifyRequest, rule: str
) -> None:
    stub, _ = served
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Classify(request_, timeout=5)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert rule in {v.reason for v in violations_of(raised.value)}


async def test_add_exemplars_swaps_and_info_reports_it(served: tuple[Stub, Classifier]) -> None:
    stub, classifier = served
    before = await stub.GetClassifierInfo(pb.GetClassifierInfoRequest(tenant_id=TENANT), timeout=5)
    assert before.method == pb.METHOD_EMBEDDING
    assert before.model_version == classifier.embedder.version
    assert before.exemplar_count == len(classifier.snapshot.index)
    assert before.confidence_threshold == pytest.approx(classifier.calibration.threshold)
    added = await stub.AddExemplars(
        pb.AddExemplarsRequest(
            tenant_id=TENANT,
            request_id="add-0000001",
            exemplars=[
                pb.Exemplar(text="my pallet is stuck at the depot", intent=I.INTENT_TRACKING_STATUS)
            ],
        ),
        metadata=AUTH,
        timeout=10,
    )
    assert added.classifier_version != before.classifier_version
    assert added.exemplar_count == before.exemplar_count + 1
    after = await stub.GetClassifierInfo(pb.GetClassifierInfoRequest(tenant_id=TENANT), timeout=5)
    assert after.classifier_version == added.classifier_version
    assert after.added_exemplar_count == 1
    assert after.exemplar_count == added.exemplar_count
    reply = await stub.Classify(pb.ClassifyRequest(tenant_id=TENANT, text="hi there"), timeout=5)
    assert reply.classifier_version == added.classifier_version
    # Another tenant, and the tenant-less view, still see the shipped exemplars alone.
    shipped = await stub.GetClassifierInfo(pb.GetClassifierInfoRequest(), timeout=5)
    other = await stub.GetClassifierInfo(pb.GetClassifierInfoRequest(tenant_id=OTHER), timeout=5)
    for view in (shipped, other):
        assert view.classifier_version == before.classifier_version
        assert view.exemplar_count == before.exemplar_count
        assert view.added_exemplar_count == 0
    reply = await stub.Classify(pb.ClassifyRequest(tenant_id=OTHER, text="hi there"), timeout=5)
    assert reply.classifier_version == before.classifier_version


@pytest.mark.parametrize(
    ("request_", "rule"),
    [
        (pb.AddExemplarsRequest(tenant_id=TENANT, request_id="add-0000002"), "repeated.min_items"),
        (
            pb.AddExemplarsRequest(
                tenant_id=TENANT,
                request_id="short",
                exemplars=[pb.Exemplar(text="hi", intent=I.INTENT_OTHER)],
            ),
            "string.pattern",
        ),
        (
            pb.AddExemplarsRequest(
                tenant_id=TENANT,
                request_id="add-0000003",
                exemplars=[pb.Exemplar(text="hello there")],
            ),
            "enum.not_in",
        ),
    ],
)
async def test_bad_add_requests_name_the_rule(
    served: tuple[Stub, Classifier], request_: pb.AddExemplarsRequest, rule: str
) -> None:
    stub, _ = served
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.AddExemplars(request_, metadata=AUTH, timeout=5)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert rule in {v.reason for v in violations_of(raised.value)}


@pytest.mark.parametrize("tenant", ["", "Acme Retail", "a", "9acme"])
async def test_add_exemplars_without_a_valid_tenant_is_invalid_argument(
    served: tuple[Stub, Classifier], tenant: str
) -> None:
    stub, classifier = served
    request = pb.AddExemplarsRequest(
        tenant_id=tenant,
        request_id="add-0000010",
        exemplars=[pb.Exemplar(text="my crate is lost", intent=I.INTENT_TRACKING_STATUS)],
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.AddExemplars(request, metadata=AUTH, timeout=5)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = violations_of(raised.value)
    assert ("tenant_id", "string.pattern") in {(v.field, v.reason) for v in violations}
    assert classifier.applied_sequence == 0


async def test_info_for_an_invalid_tenant_is_invalid_argument(
    served: tuple[Stub, Classifier],
) -> None:
    stub, _ = served
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.GetClassifierInfo(pb.GetClassifierInfoRequest(tenant_id="Bad!"), timeout=5)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "string.pattern" in {v.reason for v in violations_of(raised.value)}


@pytest.mark.parametrize(
    ("metadata", "code", "reason"),
    [
        ((), grpc.StatusCode.UNAUTHENTICATED, "ADMIN_KEY_MISSING"),
        ((("authorization", KEY),), grpc.StatusCode.UNAUTHENTICATED, "ADMIN_KEY_MISSING"),
        (
            (("authorization", "Bearer wbra_not_a_key"),),
            grpc.StatusCode.UNAUTHENTICATED,
            "ADMIN_KEY_INVALID",
        ),
        (
            (("authorization", f"Bearer {OTHER_KEY}"),),
            grpc.StatusCode.PERMISSION_DENIED,
            "TENANT_NOT_ALLOWED",
        ),
    ],
    ids=["no-key", "not-bearer", "unknown-key", "other-tenants-key"],
)
async def test_add_exemplars_needs_the_tenants_admin_key(
    served: tuple[Stub, Classifier],
    metadata: tuple[tuple[str, str], ...],
    code: grpc.StatusCode,
    reason: str,
) -> None:
    stub, classifier = served
    request = pb.AddExemplarsRequest(
        tenant_id=TENANT,
        request_id="add-0000011",
        exemplars=[pb.Exemplar(text="my crate is lost", intent=I.INTENT_TRACKING_STATUS)],
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.AddExemplars(request, metadata=metadata, timeout=5)
    assert raised.value.code() == code
    info = error_info_of(raised.value)
    assert info is not None
    assert info.reason == reason
    details = raised.value.details() or ""
    assert KEY not in details
    assert OTHER_KEY not in details
    # Nothing was added, to either tenant.
    assert classifier.applied_sequence == 0
    assert classifier.overlay(TENANT) is None
    assert classifier.overlay(OTHER) is None


async def test_an_unknown_tenant_and_a_foreign_one_are_refused_alike(
    served: tuple[Stub, Classifier],
) -> None:
    """PERMISSION_DENIED does not tell whether the tenant asked for exists."""
    stub, _ = served
    replies = []
    for tenant in (OTHER, "no-such-tenant"):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.AddExemplars(
                pb.AddExemplarsRequest(
                    tenant_id=tenant,
                    request_id="add-0000012",
                    exemplars=[pb.Exemplar(text="my crate is lost", intent=I.INTENT_OTHER)],
                ),
                metadata=AUTH,
                timeout=5,
            )
        replies.append((raised.value.code(), raised.value.details()))
    assert replies[0] == replies[1]
    assert replies[0][0] == grpc.StatusCode.PERMISSION_DENIED


async def test_a_label_conflict_is_failed_precondition_with_error_info(
    served: tuple[Stub, Classifier],
) -> None:
    stub, _ = served
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.AddExemplars(
            pb.AddExemplarsRequest(
                tenant_id=TENANT,
                request_id="add-0000004",
                exemplars=[pb.Exemplar(text="where is my order?", intent=I.INTENT_OTHER)],
            ),
            metadata=AUTH,
            timeout=5,
        )
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = error_info_of(raised.value)
    assert info is not None
    assert info.reason == "EXEMPLAR_LABEL_CONFLICT"
    assert info.metadata["existing_intent"] == "INTENT_TRACKING_STATUS"


async def test_no_call_fails_during_a_swap_over_grpc(served: tuple[Stub, Classifier]) -> None:
    stub, _ = served
    stop = asyncio.Event()
    codes: list[grpc.StatusCode] = []
    answered = asyncio.Event()

    async def caller() -> None:
        while not stop.is_set():
            try:
                await stub.Classify(
                    pb.ClassifyRequest(tenant_id=TENANT, text="where is my parcel?"), timeout=5
                )
            except grpc.aio.AioRpcError as exc:
                codes.append(exc.code())
                answered.set()
                return
            codes.append(grpc.StatusCode.OK)
            answered.set()

    async def answers(count: int) -> None:
        """Wait until ``count`` more calls were answered (callers are in flight)."""
        target = len(codes) + count
        async with asyncio.timeout(30):
            while len(codes) < target and set(codes) <= {grpc.StatusCode.OK}:
                answered.clear()
                await answered.wait()

    callers = [asyncio.ensure_future(caller()) for _ in range(8)]
    await answers(8)
    reply = await stub.AddExemplars(
        pb.AddExemplarsRequest(
            tenant_id=TENANT,
            request_id="add-0000005",
            exemplars=[
                pb.Exemplar(text=f"crate {i} has not moved", intent=I.INTENT_TRACKING_STATUS)
                for i in range(64)
            ],
        ),
        metadata=AUTH,
        timeout=30,
    )
    await answers(8)
    stop.set()
    await asyncio.gather(*callers)
    assert reply.exemplar_count > 0
    assert codes
    assert set(codes) == {grpc.StatusCode.OK}


async def test_before_the_model_is_ready_calls_are_unavailable_with_retry(
    serve: StartServer, channels: Callable[[str], grpc.aio.Channel]
) -> None:
    stub = await _stub(serve, channels, RouterServicer())
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Classify(
            pb.ClassifyRequest(tenant_id=TENANT, text="where is my order?"), timeout=5
        )
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    info = error_info_of(raised.value)
    assert info is not None
    assert info.reason == "WARMING_UP"
    status = details_of(raised.value)
    assert status is not None
    assert any(d.Is(error_details_pb2.RetryInfo.DESCRIPTOR) for d in status.details)
