"""One Exchange stream to the ledger, shared by every turn of a gateway replica.

A turn's Reserve, Commit and Release each become an operation on the stream: the
operations queued while the event loop was busy leave together in one message, and the
ledger answers each as soon as it is durable. Against one unary call per operation this
saves most of gRPC's per-call cost on both sides (``python -m bench.ledger_exchange``
measures the two side by side).

The stream belongs to no turn. It is opened from an empty context, so no turn's
deadline, trace or principal rides on it; each operation is timed out by its own turn's
deadline instead. When the stream breaks, the operations it left unanswered are sent
again once on a fresh stream (every one is idempotent: Reserve by request id, Commit and
Release by reservation id); when that one breaks too, they fail as UNAVAILABLE, as a
unary call does once its retries are spent. With nothing to send, a broken stream is
reopened by the next operation.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
from dataclasses import dataclass
from typing import Any

import grpc
from google.rpc import status_pb2
from waybill.ledger.v1 import ledger_service_pb2 as ledger

from runtime.deadlines import DeadlinePolicy, outgoing_timeout
from runtime.errors import DeadlineExceeded
from runtime.peer_errors import PeerError, from_peer, from_status

log = logging.getLogger("waybill.gateway")

MAX_OPERATIONS = 1000
"""Operations in one message at most (the contract's limit)."""
ATTEMPTS = 2
"""Streams an operation is sent on before it fails as UNAVAILABLE."""
REOPEN_DELAY_S = 0.05
"""Pause before reopening a stream that broke with operations waiting."""
_METHOD = "/waybill.ledger.v1.LedgerService/Exchange"


@dataclass(slots=True)
class _Pending:
    operation: ledger.LedgerOperation
    future: asyncio.Future[ledger.LedgerOperationResult]
    attempts: int = 0
    """Streams it was written to."""


@dataclass(slots=True)
class _Counts:
    messages: int = 0
    """ExchangeRequest messages written."""
    operations: int = 0
    """Operations written (resent ones again)."""
    streams: int = 0
    """Streams opened."""


class LedgerStream:
    """Operations on the replica's one Exchange stream (see the module's docstring)."""

    def __init__(self, stub: Any, *, policy: DeadlinePolicy, peer: str = "ledger") -> None:
        self._stub = stub
        self._policy = policy
        self._peer = peer
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._outbox: list[int] = []
        self._wake: asyncio.Event | None = None
        self._owner: asyncio.Task[None] | None = None
        self._closed = False
        self.counts = _Counts()
        """What went out so far (operations per message shows the batching)."""

    async def call(self, operation: ledger.LedgerOperation) -> ledger.LedgerOperationResult:
        """Send ``operation`` and return its result; a failed operation raises the
        PeerError its unary call would have."""
        if self._closed:
            raise PeerError(
                grpc.StatusCode.UNAVAILABLE,
                "a dependency is not available; try again",
                reason="DEPENDENCY_UNAVAILABLE",
            )
        try:
            timeout = outgoing_timeout(self._policy, target=_METHOD)
        except DeadlineExceeded as exc:
            log.warning("no time left for a call", extra={"peer": self._peer})
            raise PeerError(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                "the request ran out of time",
                reason="DEADLINE_TOO_SHORT",
            ) from exc
        op_id = next(self._ids)
        operation.operation_id = op_id
        future: asyncio.Future[ledger.LedgerOperationResult] = (
            asyncio.get_running_loop().create_future()
        )
        self._pending[op_id] = _Pending(operation, future)
        self._outbox.append(op_id)
        self._send_soon()
        try:
            async with asyncio.timeout(timeout):
                result = await future
        except TimeoutError:
            log.warning("dependency failed", extra={"peer": self._peer, "peer_code": "TIMEOUT"})
            raise PeerError(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                "the request ran out of time",
                reason="DEPENDENCY_DEADLINE_EXCEEDED",
            ) from None
        finally:
            self._pending.pop(op_id, None)
        if result.WhichOneof("result") == "error":
            raise from_status(status_pb2.Status.FromString(result.error), peer=self._peer)
        return result

    async def close(self) -> None:
        """End the stream; operations still waiting fail as UNAVAILABLE."""
        self._closed = True
        if self._owner is not None:
            self._owner.cancel()
            await asyncio.gather(self._owner, return_exceptions=True)
            self._owner = None
        self._fail_all(None, only_sent=False)

    # -- the stream's owner --------------------------------------------------------------

    def _send_soon(self) -> None:
        if self._wake is None:
            self._wake = asyncio.Event()
        self._wake.set()
        if self._owner is None or self._owner.done():
            # An empty context: nothing of the turn that opens it rides on the stream.
            self._owner = asyncio.get_running_loop().create_task(
                self._own(), name="ledger-exchange", context=contextvars.Context()
            )

    async def _own(self) -> None:
        while not self._closed:
            self.counts.streams += 1
            call = self._stub.Exchange()
            reader = asyncio.ensure_future(self._read(call))
            # Whatever is unanswered goes on this stream (again, if it was sent before).
            self._outbox = [i for i, p in self._pending.items() if not p.future.done()]
            error = await self._pump(call, reader)
            reader.cancel()
            call.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            log.warning(
                "ledger stream ended; reopened when needed",
                extra={
                    "peer": self._peer,
                    "peer_code": error.code().name
                    if isinstance(error, grpc.aio.AioRpcError)
                    else "-",
                    "unanswered": len(self._pending),
                },
            )
            self._fail_all(error, only_sent=True)
            if not self._pending:
                return  # the next operation opens a new stream
            await asyncio.sleep(REOPEN_DELAY_S)

    async def _pump(self, call: Any, reader: asyncio.Future[None]) -> BaseException | None:
        """Write operations as they come until the stream ends; why it ended."""
        assert self._wake is not None
        try:
            while True:
                if not self._outbox:
                    self._wake.clear()
                    await self._wake.wait()
                if reader.done():
                    return reader.exception() if not reader.cancelled() else None
                ids, self._outbox = self._outbox, []
                batch = []
                for op_id in ids:
                    pending = self._pending.get(op_id)
                    if pending is not None and not pending.future.done():
                        # (not answered, nor given up on by its turn, meanwhile)
                        pending.attempts += 1
                        batch.append(pending.operation)
                for start in range(0, len(batch), MAX_OPERATIONS):
                    chunk = batch[start : start + MAX_OPERATIONS]
                    await call.write(ledger.ExchangeRequest(operations=chunk))
                    self.counts.messages += 1
                    self.counts.operations += len(chunk)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a write to a broken stream: it ended
            if reader.done() and not reader.cancelled() and reader.exception() is not None:
                return reader.exception()
            return exc

    async def _read(self, call: Any) -> None:
        try:
            async for response in call:
                for result in response.results:
                    pending = self._pending.get(result.operation_id)
                    if pending is not None and not pending.future.done():
                        pending.future.set_result(result)
        finally:
            if self._wake is not None:
                self._wake.set()

    def _fail_all(self, error: BaseException | None, *, only_sent: bool) -> None:
        """Fail the operations that used up their attempts (or all of them)."""
        for pending in list(self._pending.values()):
            if pending.future.done():
                continue
            if only_sent and pending.attempts < ATTEMPTS:
                continue
            if isinstance(error, grpc.aio.AioRpcError):
                pending.future.set_exception(from_peer(error, peer=self._peer))
            else:
                pending.future.set_exception(
                    PeerError(
                        grpc.StatusCode.UNAVAILABLE,
                        "a dependency is not available; try again",
                        reason="DEPENDENCY_UNAVAILABLE",
                    )
                )
