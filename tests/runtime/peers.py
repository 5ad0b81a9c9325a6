"""A real aio peer that fails on request: the code, ErrorInfo and RetryInfo are chosen by the text.

``Classify(text="<CODE>")`` aborts with that code, a message naming internals
(as a careless peer's would), an ErrorInfo (reason ``PEER_<CODE>``, domain
``orders.waybill``, metadata with an internal ``target`` and a public ``team``)
and, for RESOURCE_EXHAUSTED and UNAVAILABLE, a RetryInfo of 2.5 s.
``<CODE>:plain`` aborts without any details; ``<CODE>:garbage`` with details
that do not parse; ``<CODE>:retry-only`` with a RetryInfo and no ErrorInfo;
``<CODE>:clean`` with a message that names nothing internal; ``sleep`` never
answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from waybill.router.v1 import router_service_pb2 as pb
from waybill.router.v1 import router_service_pb2_grpc as pb_grpc

from runtime.errors import STATUS_DETAILS_KEY

PEER_MESSAGE = "peer says: /waybill.orders.v1.OrdersService/GetShipment at 127.0.0.1:50051"
CLEAN_MESSAGE = "no such order for this customer"
RETRY_S = 2.5


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def rich_status(code: grpc.StatusCode, *, info: bool = True, retry: bool = False) -> bytes:
    """A serialized google.rpc.Status as a peer would attach it."""
    status = status_pb2.Status(code=code.value[0], message=PEER_MESSAGE)
    if info:
        status.details.append(
            _pack(
                error_details_pb2.ErrorInfo(
                    reason=f"PEER_{code.name}",
                    domain="orders.waybill",
                    metadata={"team": "support", "target": "/waybill.orders.v1.OrdersService/X"},
                )
            )
        )
    if retry:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(RETRY_S * 1e9))
        status.details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    serialized: bytes = status.SerializeToString()
    return serialized


class FailingPeer(pb_grpc.RouterServiceServicer):
    """See the module docstring."""

    async def Classify(
        self, request: pb.ClassifyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClassifyResponse:
        if request.text == "sleep":
            await asyncio.Event().wait()
        name, _, variant = request.text.partition(":")
        code = grpc.StatusCode[name]
        retry = code in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE)
        if variant == "plain":
            await context.abort(code, PEER_MESSAGE)
        if variant == "clean":
            details = rich_status(code, retry=retry)
            await context.abort(
                code, CLEAN_MESSAGE, trailing_metadata=((STATUS_DETAILS_KEY, details),)
            )
        details = {
            "": rich_status(code, retry=retry),
            "garbage": b"\xff\x00not a status",
            "retry-only": rich_status(code, info=False, retry=True),
        }[variant]
        await context.abort(code, PEER_MESSAGE, trailing_metadata=((STATUS_DETAILS_KEY, details),))
        raise AssertionError("abort returned")


@asynccontextmanager
async def failing_peer() -> AsyncIterator[pb_grpc.RouterServiceStub]:
    """A plain aio server (no interceptors: a peer of any make) and a stub to it."""
    server = grpc.aio.server()
    pb_grpc.add_RouterServiceServicer_to_server(FailingPeer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield pb_grpc.RouterServiceStub(channel)
    finally:
        await channel.close()
        await server.stop(0)
