"""The router's wiring: a classifier whose batching loop stops turns the process's
gRPC health NOT_SERVING, observed through the real Health service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from waybill.router.v1 import router_service_pb2 as pb
from waybill.router.v1 import router_service_pb2_grpc as pb_grpc

from router.server import not_serving_when_stopped
from router.service import RouterServicer
from runtime.errors import error_info_of
from runtime.server import Registration, RunningServer, start
from runtime.settings import ServiceSettings
from tests.router.conftest import MakeClassifier

SERVICE = "waybill.router.v1.RouterService"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture
async def router_server() -> AsyncIterator[tuple[RunningServer, RouterServicer]]:
    """A router server as router.server builds it (interceptors, health), stopped after."""
    servicer = RouterServicer()
    settings = ServiceSettings(name="router", address="127.0.0.1:0", drain_s=0.0, grace_s=0.5)
    running = await start(
        settings, [Registration(SERVICE, pb_grpc.add_RouterServiceServicer_to_server, servicer)]
    )
    yield running, servicer
    await running.server.stop(0)


async def test_a_stopped_batching_loop_turns_health_not_serving(
    router_server: tuple[RunningServer, RouterServicer], make_classifier: MakeClassifier
) -> None:
    running, servicer = router_server
    classifier = make_classifier(on_stopped=not_serving_when_stopped(running))
    servicer.attach(classifier)
    await running.set_serving(True)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        stub = pb_grpc.RouterServiceStub(channel)
        watch = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE), timeout=30)
        first = await watch.read()
        assert isinstance(first, health_pb2.HealthCheckResponse)
        assert first.status == SERVING
        # A text no other test sends, so it takes the batcher, not the embedding cache.
        reply = await stub.Classify(
            pb.ClassifyRequest(tenant_id="acme-retail", text="is WB 1234 567 890 moving yet?"),
            timeout=10,
        )
        assert reply.method == pb.METHOD_EMBEDDING

        (loop_task,) = [t for t in asyncio.all_tasks() if t.get_name() == "router-batch-loop"]
        loop_task.cancel()

        second = await watch.read()
        assert isinstance(second, health_pb2.HealthCheckResponse)
        assert second.status == NOT_SERVING
        watch.cancel()
        overall = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert overall.status == NOT_SERVING
        assert not classifier.running
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.Classify(
                pb.ClassifyRequest(tenant_id="acme-retail", text="has WB 9876 543 210 left?"),
                timeout=10,
            )
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        info = error_info_of(raised.value)
        assert info is not None
        assert info.reason == "ROUTER_NOT_RUNNING"


async def test_closing_the_classifier_leaves_health_alone(
    router_server: tuple[RunningServer, RouterServicer], make_classifier: MakeClassifier
) -> None:
    running, _ = router_server
    classifier = make_classifier(on_stopped=not_serving_when_stopped(running))
    await running.set_serving(True)
    await classifier.close()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=SERVICE), timeout=5
        )
    assert reply.status == SERVING
