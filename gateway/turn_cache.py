"""Which turns the answer cache may serve and keep, and what a cached turn replays.

Only answers that are the same for every customer of a tenant are shared. Today that
is the policy worker's answers, and only when all of these hold:

- the guardrails ran their PII check on the message and found nothing (a turn that
  carried personal data is neither served nor kept);
- the question does not point at one of the customer's own orders (the policy worker's
  own rule, ``workers.policy.query.order_to_read``, so the two cannot drift apart);
- the published knowledge-base version is known (it is part of the partition);
- when kept: the worker called no tool but the knowledge-base search (no order read, no
  write tool, no customer-specific return window), asked for no confirmation, handed
  nothing to a person and was not stopped by the output checks, and the answer names no
  order id or air waybill (a model backend sees the customer's orders in the context
  block and could mention them; a policy answer never needs to).

Tracking and negotiation answers are built from the customer's own orders and are never
cached. The partition holds the tenant, the intent, the knowledge-base version and the
customer's region and tier (the search filters and the window rules use them).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from google.protobuf.message import DecodeError
from opentelemetry import trace
from waybill.common.v1 import conversation_pb2, customer_pb2, intent_pb2
from waybill.gateway.v1 import gateway_service_pb2 as pb
from waybill.guardrails.v1 import guardrails_service_pb2 as guard
from waybill.router.v1 import router_service_pb2 as router
from waybill.worker.v1 import worker_service_pb2 as worker

from gateway.cache.core import AnswerCache, Embedded, Lookup, Partition
from gateway.cache.kb_version import KbVersion
from runtime import telemetry
from runtime.identifiers import find_awbs, find_order_ids
from runtime.metrics import CACHE_BYPASSED
from workers.policy.query import order_to_read

USE_CASE_OF_WORKER = {intent_pb2.WORKER_POLICY: "policy"}
"""The workers whose answers may be shared, and the use case each is cached under."""
TOOLS_OF_USE_CASE = {"policy": frozenset({"search_policy_kb"})}
"""The only tools a turn of each use case may have called to be kept."""
_KEPT_EVENTS = frozenset({"delta", "citation", "tool_call"})
_LENGTH = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class CachedTurn:
    """A turn as the cache replays it."""

    events: tuple[pb.TurnEvent, ...]
    """Citations and text, in the order the worker sent them."""
    answer: str

    @property
    def cited(self) -> list[str]:
        """Chunk ids of the citations."""
        return [e.citation.chunk_id for e in self.events if e.WhichOneof("kind") == "citation"]


def encode(turn: CachedTurn) -> bytes:
    """The payload of an entry: length-prefixed events, the answer last."""
    out = bytearray()
    for event in (*turn.events, pb.TurnEvent(final=pb.Final(answer=turn.answer))):
        data = event.SerializeToString()
        out += _LENGTH.pack(len(data)) + data
    return bytes(out)


def decode(payload: bytes) -> CachedTurn | None:
    """The turn of a payload; None for one this code cannot read (it is treated as a miss)."""
    events: list[pb.TurnEvent] = []
    at = 0
    try:
        while at < len(payload):
            (size,) = _LENGTH.unpack_from(payload, at)
            at += _LENGTH.size
            event = pb.TurnEvent.FromString(payload[at : at + size])
            at += size
            events.append(event)
    except (struct.error, DecodeError):
        return None
    if not events or events[-1].WhichOneof("kind") != "final":
        return None
    body = events[:-1]
    if any(e.WhichOneof("kind") not in {"delta", "citation"} for e in body):
        return None
    return CachedTurn(tuple(body), events[-1].final.answer)


def state_after(
    state: conversation_pb2.ConversationState, turn: CachedTurn
) -> conversation_pb2.ConversationState:
    """The session state a served turn leaves: what the worker would have changed (the
    cited chunks), nothing else."""
    new = conversation_pb2.ConversationState()
    new.CopyFrom(state)
    del new.policy.cited_chunk_ids[:]
    new.policy.cited_chunk_ids.extend(turn.cited)
    return new


def embedded_of(embedding: router.Embedding | None) -> Embedded | None:
    """The router's vector of a message as the cache takes it (None when it sent none)."""
    if embedding is None or not embedding.values:
        return None
    return Embedded(embedding.model_version, np.asarray(embedding.values, dtype=np.float32))


def _bypass(use_case: str, reason: str) -> None:
    CACHE_BYPASSED.labels(use_case, reason).inc()


class TurnCache:
    """The gateway's side of the answer cache."""

    def __init__(self, cache: AnswerCache, versions: KbVersion) -> None:
        self._cache = cache
        self._versions = versions
        self.embedding_for: tuple[intent_pb2.Worker, ...] = tuple(
            kind
            for kind, name in USE_CASE_OF_WORKER.items()
            if (use_case := cache.use_case(name)) is not None
            and use_case.semantic
            and cache.semantic
        )
        """The workers whose turns may look up near-duplicates: the router is asked for
        the message's embedding when it picks one of them."""

    def partition(
        self,
        *,
        tenant_id: str,
        kind: intent_pb2.Worker,
        intent: intent_pb2.Intent,
        check: guard.CheckInputResponse,
        context: customer_pb2.HydratedContext,
        state: conversation_pb2.ConversationState,
    ) -> Partition | None:
        """Where this turn's answer is looked up and kept; None when it is not shareable."""
        use_case = USE_CASE_OF_WORKER.get(kind)
        if use_case is None or self._cache.use_case(use_case) is None:
            return None
        if "pii" not in check.checks:
            _bypass(use_case, "pii_unchecked")
            return None
        if check.findings:
            _bypass(use_case, "personal_data")
            return None
        if order_to_read(check.redacted_text, state, context.active_orders):
            _bypass(use_case, "own_order")
            return None
        version = self._versions.current()
        if version is None:
            _bypass(use_case, "no_policy_version")
            return None
        return Partition(
            tenant=tenant_id,
            use_case=use_case,
            intent=intent_pb2.Intent.Name(intent),
            version=version,
            scope=(
                f"region={context.region}",
                f"tier={customer_pb2.CustomerTier.Name(context.tier)}",
            ),
        )

    async def lookup(
        self, partition: Partition, text: str, embedding: router.Embedding | None = None
    ) -> tuple[Lookup, CachedTurn | None]:
        """The lookup (kept for :meth:`keep`) and the cached turn on a hit; ``embedding``
        is the router's vector of the message, if it sent one."""
        lookup = await self._cache.lookup(partition, text, embedded=embedded_of(embedding))
        turn = decode(lookup.found.payload) if lookup.found is not None else None
        if lookup.found is not None and turn is None:
            lookup.found = None  # unreadable (written by other code): answered afresh
        trace.get_current_span().set_attribute(telemetry.ATTR_CACHE_HIT, turn is not None)
        return lookup, turn

    async def keep(
        self, lookup: Lookup, events: Sequence[worker.RunTurnResponse], result: worker.TurnResult
    ) -> bool:
        """Keep a worker's answer when it is shareable (module doc); whether it was kept."""
        use_case = lookup.partition.use_case
        tools = TOOLS_OF_USE_CASE.get(use_case, frozenset())
        kept: list[pb.TurnEvent] = []
        for event in events:
            which = event.WhichOneof("event")
            if which not in _KEPT_EVENTS:
                _bypass(use_case, str(which))
                return False
            if which == "tool_call":
                if event.tool_call.name not in tools:
                    _bypass(use_case, "customer_tool")
                    return False
                continue  # a served turn calls no tool
            kept.append(pb.TurnEvent(**{which: getattr(event, which)}))
        if find_awbs(result.answer) or find_order_ids(result.answer):
            _bypass(use_case, "customer_reference")
            return False
        return await self._cache.store(lookup, encode(CachedTurn(tuple(kept), result.answer)))

    async def aclose(self) -> None:
        """Close the cache's store."""
        await self._cache.aclose()
