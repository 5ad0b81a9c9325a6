"""Checks shared by the tests of services whose contract is served but not built."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import descriptor_pool, message_factory

from runtime.errors import Unimplemented


async def _call(handler: Any, request: Any, *, streaming: bool) -> None:
    """Run a handler to its end (no context: an unbuilt handler must not need one)."""
    if streaming:
        async for _ in handler(request, None):
            pass
    else:
        await handler(request, None)


async def every_method_is_unimplemented(servicer: Any, service: str) -> list[str]:
    """Call each method of the contract directly; each must refuse, none may answer.
    Returns the names of the methods that refused."""
    descriptor = descriptor_pool.Default().FindServiceByName(service)
    refused = []
    for method in descriptor.methods:
        request = message_factory.GetMessageClass(method.input_type)()
        handler = getattr(servicer, method.name)
        with pytest.raises(Unimplemented) as raised:
            await _call(handler, request, streaming=method.server_streaming)
        assert raised.value.reason == "NOT_IMPLEMENTED"
        assert method.name in raised.value.message
        refused.append(method.name)
    return refused
