"""The pool: picks a backend per use case from its chain and streams from it.

This first version serves the head of each chain that is configured; circuit
breakers, retries and fallback across backends arrive with the inference tier.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Protocol

from llm_pool.generation import GenerationEvent, GenerationRequest, StreamFailed


class Backend(Protocol):
    """A generation backend."""

    name: str

    def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        """Stream the events of one generation; the last is Finished or StreamFailed."""
        ...


class LLMPool:
    """One streaming interface over the configured backends."""

    def __init__(
        self, backends: Sequence[Backend], chains: Mapping[str, Sequence[str]] | None = None
    ) -> None:
        self._backends = {b.name: b for b in backends}
        self._chains = {k: tuple(v) for k, v in (chains or {}).items()}
        self._default = tuple(self._backends)

    def chain(self, use_case: str) -> tuple[str, ...]:
        """The backends tried for ``use_case``, in order (only those configured)."""
        names = self._chains.get(use_case, self._default)
        return tuple(n for n in names if n in self._backends)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        """Stream one generation from the first backend of the use case's chain."""
        chain = self.chain(request.use_case)
        if not chain:
            yield StreamFailed(
                backend="",
                code="FAILED_PRECONDITION",
                reason="NO_BACKEND",
                message=f"no backend configured for use case {request.use_case!r}",
            )
            return
        async for event in self._backends[chain[0]].stream(request):
            yield event
