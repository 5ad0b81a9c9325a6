"""Helpers for servicers: the UNIMPLEMENTED answer for contracts not built yet."""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import ServiceDescriptor

from runtime.errors import Unimplemented


def not_built(service: str, method: str, planned: str) -> Unimplemented:
    """An UNIMPLEMENTED error naming the missing operation and where it is planned.

    The message may be passed on through every hop to a caller: it names the
    operation (``CreateRefund``) but not the service, which is internal.
    """
    return Unimplemented(
        f"{method} is part of the contract but not implemented yet ({planned})",
        reason="NOT_IMPLEMENTED",
        metadata={"method": method},
    )


def unimplemented_servicer(base: type, service: str, planned: str) -> Any:
    """A servicer for ``base`` whose every method answers UNIMPLEMENTED naming ``planned``.

    Streaming methods are async generators, unary ones coroutines, as the
    server interceptor expects; nothing ever answers with a fake success.
    """
    descriptor = _service_descriptor(service)
    methods: dict[str, Any] = {}
    for method in descriptor.methods:
        args = (service.rsplit(".", 1)[-1], method.name, planned)
        if method.server_streaming:

            async def stream(self: Any, request: Any, context: Any, _a: Any = args) -> Any:
                raise not_built(*_a)
                yield  # pragma: no cover - makes this an async generator

            methods[method.name] = stream
        else:

            async def unary(self: Any, request: Any, context: Any, _a: Any = args) -> Any:
                raise not_built(*_a)

            methods[method.name] = unary
    return type(f"Unimplemented{descriptor.name}", (base,), methods)()


def _service_descriptor(service: str) -> ServiceDescriptor:
    from google.protobuf import descriptor_pool

    return descriptor_pool.Default().FindServiceByName(service)


async def serve_unbuilt(name: str, *, add: Any, base: type, planned: str) -> None:
    """Run service ``name`` whose contract is served but not built: health and
    reflection answer, requests are validated, every method says UNIMPLEMENTED."""
    from runtime import mesh
    from runtime.server import Registration, serve
    from runtime.settings import ServiceSettings

    service = mesh.spec(name).grpc_services[0]
    servicer = unimplemented_servicer(base, service, planned)
    await serve(ServiceSettings.from_env(name), [Registration(service, add, servicer)])
