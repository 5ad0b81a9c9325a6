"""Health and reflection probes over the standard gRPC protocols.

Plain synchronous clients (grpcurl is not available): one short-lived channel
per probe, a deadline on every call, never ``wait_for_ready`` (a probe must
report a dead process, not wait for it).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import grpc
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2

SERVING = "SERVING"

# Probes poll a process that may still be binding its port: the default
# reconnect backoff (1 s and growing) would make readiness look seconds late.
# A local subchannel pool keeps that backoff state out of other channels.
CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 250),
    ("grpc.use_local_subchannel_pool", 1),
)


def channel(address: str) -> grpc.Channel:
    """An insecure channel tuned for probing."""
    return grpc.insecure_channel(address, options=CHANNEL_OPTIONS)


def status_name(status: int) -> str:
    """``SERVING``, ``NOT_SERVING``, ``UNKNOWN`` … for a health status number."""
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(status))


def unreachable(error: grpc.RpcError) -> str:
    """How a failed health call is reported."""
    code = error.code()
    return f"UNREACHABLE: {code.name if code is not None else 'UNKNOWN'}"


def check(stub: Any, service: str, timeout_s: float) -> str:
    """One health Check through an existing stub."""
    try:
        response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
    except grpc.RpcError as error:
        return unreachable(error)
    return status_name(response.status)


def check_health(address: str, services: Sequence[str], timeout_s: float) -> dict[str, str]:
    """Health of each of ``services`` ("" is the server as a whole) at ``address``.

    Values: ``SERVING``, ``NOT_SERVING``, ``UNKNOWN`` or ``UNREACHABLE: <code>``
    (``NOT_FOUND`` there means the server does not know the service).
    ``timeout_s`` bounds the whole probe, not each call.
    """
    deadline = time.monotonic() + timeout_s
    result: dict[str, str] = {}
    with channel(address) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        for service in services:
            remaining = max(deadline - time.monotonic(), 0.001)
            result[service] = check(stub, service, remaining)
    return result


def _requests(services: Sequence[str]) -> Iterator[Any]:
    for name in services:
        yield reflection_pb2.ServerReflectionRequest(file_containing_symbol=name)


def _methods_by_service(files: Sequence[bytes]) -> dict[str, list[str]]:
    """Method names of every service declared in serialized FileDescriptorProtos."""
    found: dict[str, list[str]] = {}
    for blob in files:
        fd = descriptor_pb2.FileDescriptorProto.FromString(blob)
        prefix = f"{fd.package}." if fd.package else ""
        for service in fd.service:
            found[prefix + service.name] = [m.name for m in service.method]
    return found


def _reflection_call(ch: grpc.Channel, version: str) -> Any:
    """The ServerReflectionInfo stream of reflection ``version`` (``v1`` or ``v1alpha``):
    one message set serves both (v1 is v1alpha under a new package name)."""
    return ch.stream_stream(
        f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )


def list_services(address: str, timeout_s: float) -> dict[str, list[str]]:
    """Services a server lists through reflection, each with its method names.

    Asks ``grpc.reflection.v1`` first and ``v1alpha`` when the server does not serve v1
    (UNIMPLEMENTED), as current clients do. A service whose descriptor the server cannot
    provide is listed with no methods rather than failing the whole listing. Raises
    ``grpc.RpcError`` when the server cannot be reached or serves neither.
    """
    deadline = time.monotonic() + timeout_s
    with channel(address) as ch:
        listing = [reflection_pb2.ServerReflectionRequest(list_services="")]
        for version in ("v1", "v1alpha"):
            call = _reflection_call(ch, version)
            try:
                responses = list(
                    call(iter(listing), timeout=max(deadline - time.monotonic(), 0.001))
                )
                break
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.UNIMPLEMENTED or version == "v1alpha":
                    raise
        names = sorted(s.name for r in responses for s in r.list_services_response.service)
        # One stream for every descriptor: responses come back in request order.
        files: list[bytes] = []
        for response in call(_requests(names), timeout=max(deadline - time.monotonic(), 0.001)):
            if response.HasField("file_descriptor_response"):
                files.extend(response.file_descriptor_response.file_descriptor_proto)
    methods = _methods_by_service(files)
    return {name: methods.get(name, []) for name in names}
