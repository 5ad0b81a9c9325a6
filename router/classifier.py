"""The embedding classifier: the shipped exemplars' index shared by every tenant,
one small overlay index per tenant that added exemplars, batched classification,
live retraining with an atomic swap, and the low-confidence fallback hook.

Added exemplars live in an :class:`router.store.ExemplarStore` shared by every
replica: AddExemplars writes there first, then applies the store's new rows;
a follower task applies what other replicas wrote. Versions are derived from
the store's sequence numbers, so two replicas that have applied the same rows
report the same version.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from waybill.router.v1 import router_service_pb2 as pb

from embeddings.encoder import Embedder
from embeddings.pooling import FloatArray
from router import exemplars as exemplar_files
from router import metrics
from router.batcher import BatchOptions, MicroBatcher
from router.calibration import Calibration
from router.clarify import question_for
from router.decision import Decision, PriorOptions, Reason, decide
from router.exemplars import Exemplar
from router.fallback import FallbackRequest, RouterFallback, fallback_timeout
from router.index import ExemplarIndex, LabelArray, merge_neighbours
from router.intents import FOLLOW_UP, SERVED, WORKER_OF, I, intent_name, short_name
from router.normalize import dedup_key, for_embedding, word_count
from router.scoring import class_scores
from router.store import (
    ExemplarStore,
    MemoryExemplarStore,
    RequestIdReused,
    StoredConflict,
    StoredExemplar,
    StoreUnavailable,
    by_tenant,
)
from router.vectors import log_progress, vectors_for
from runtime.deadlines import DeadlinePolicy
from runtime.errors import FailedPrecondition, Unavailable

log = logging.getLogger("waybill.router")

EMBED_CHUNK = 16
"""Exemplars per model run when retraining: short runs leave the live batches room."""
FALLBACK_BUDGET_S = 0.3
"""Most time the LLM fallback may take (less when the caller's deadline is nearer)."""
FOLLOW_POLL_S = 2.0
"""How often a replica asks the store for other replicas' additions (a safety net
beside the store's change notifications)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One exemplar set and its index; immutable, replaced whole on retraining."""

    index: ExemplarIndex
    exemplars: tuple[Exemplar, ...]
    labels_by_key: dict[str, int]
    """``dedup_key(text)`` -> label, to find duplicates and conflicts."""
    classes: tuple[int, ...]
    version: str

    @classmethod
    def build(
        cls, items: Sequence[Exemplar], index: ExemplarIndex, *, model_version: str
    ) -> Snapshot:
        """A snapshot of ``items``, whose vectors ``index`` holds in the same order."""
        digest = exemplar_files.digest(items)
        key, _, variant = model_version.partition("-")
        model = f"{key[:8]}-{variant}" if variant else key[:8]
        return cls(
            index=index,
            exemplars=tuple(items),
            labels_by_key={dedup_key(e.text): e.label for e in items},
            classes=tuple(sorted({e.label for e in items})),
            version=f"minilm-{model}.ex-{digest[:10]}",
        )


def tenant_version(base: Snapshot, sequence: int) -> str:
    """The version a tenant sees: the shipped index's, plus its last stored sequence."""
    return f"{base.version}+t{sequence}" if sequence else base.version


@dataclass(frozen=True, slots=True)
class Overlay:
    """One tenant's added exemplars and their index; immutable, replaced whole."""

    index: ExemplarIndex | None
    """None when none of the tenant's rows is usable (all repeat shipped exemplars)."""
    exemplars: tuple[Exemplar, ...]
    labels_by_key: dict[str, int]
    """``dedup_key(text)`` -> label of the tenant's exemplars."""
    classes: tuple[int, ...]
    """The shipped classes and the tenant's, sorted."""
    sequence: int
    """The store sequence of the tenant's last row applied."""
    version: str

    def extended(
        self, new: Sequence[Exemplar], vectors: FloatArray | None, *, base: Snapshot, sequence: int
    ) -> Overlay:
        """This overlay with ``new`` (embedded as ``vectors``) and rows up to ``sequence``."""
        if not new or vectors is None:
            return replace(self, sequence=sequence, version=tenant_version(base, sequence))
        labels = np.array([e.label for e in new], dtype=np.int32)
        index = (
            ExemplarIndex(vectors, labels)
            if self.index is None
            else self.index.extended(vectors, labels)
        )
        exemplars = (*self.exemplars, *new)
        return Overlay(
            index=index,
            exemplars=exemplars,
            labels_by_key={**self.labels_by_key, **{dedup_key(e.text): e.label for e in new}},
            classes=tuple(sorted({*base.classes, *(e.label for e in exemplars)})),
            sequence=sequence,
            version=tenant_version(base, sequence),
        )

    @classmethod
    def empty(cls, base: Snapshot) -> Overlay:
        """A tenant with nothing added yet."""
        return cls(None, (), {}, base.classes, 0, base.version)


@dataclass(frozen=True, slots=True)
class Query:
    """One message to classify."""

    text: str
    previous: int = I.INTENT_UNSPECIFIED
    tenant_id: str = ""
    """Whose overlay to search beside the shipped index (empty: the shipped one only)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """A decision with how it was made and by which classifier version."""

    decision: Decision
    version: str
    method: int = pb.METHOD_EMBEDDING
    clarifying_question: str = ""
    vector: FloatArray | None = field(default=None, repr=False, compare=False)
    """The message's embedding the decision searched with (the caller may reuse it)."""


@dataclass(frozen=True, slots=True)
class AddResult:
    """What AddExemplars did."""

    version: str
    exemplar_count: int
    added: int


@dataclass(frozen=True, slots=True)
class TenantView:
    """What one tenant's classifications use."""

    version: str
    exemplar_count: int
    """Shipped exemplars plus the tenant's own."""
    added: int
    """The tenant's own."""


@dataclass(frozen=True, slots=True)
class ClassifierOptions:
    """How the classifier runs."""

    prior: PriorOptions = field(default_factory=PriorOptions)
    batch: BatchOptions = field(default_factory=BatchOptions)
    max_exemplars: int = 50_000
    """Limit of shipped plus one tenant's added exemplars, for AddExemplars."""
    deadlines: DeadlinePolicy = field(default_factory=DeadlinePolicy)
    """The service's deadline policy: the fallback gets the remaining time minus its margin."""
    fallback_budget_s: float = FALLBACK_BUDGET_S
    """Most time the LLM fallback may take (less when the caller's deadline is nearer)."""
    follow_poll_s: float = FOLLOW_POLL_S
    """Most time between two looks at the store for other replicas' additions."""
    decision_cache: int = 0
    """Decisions kept for messages seen before, by (classifier version, text, previous
    intent); 0 turns it off. The key holds the tenant's classifier version, so new
    exemplars never serve an old decision."""


def embed_texts(embedder: Embedder, texts: Sequence[str], *, chunk: int = 0) -> FloatArray:
    """Vectors of ``texts`` as the index sees them (identifiers normalised)."""
    normalised = [for_embedding(t) for t in texts]
    if not chunk:
        return embedder.embed(normalised)
    parts = [embedder.embed(normalised[i : i + chunk]) for i in range(0, len(normalised), chunk)]
    return np.concatenate(parts) if parts else embedder.embed([])


def classify_with(
    embedder: Embedder,
    snapshot: Snapshot,
    calibration: Calibration,
    queries: Sequence[Query],
    *,
    prior: PriorOptions,
    overlays: Mapping[str, Overlay] | None = None,
) -> list[Outcome]:
    """Classify ``queries`` in one model run (blocking): each against ``snapshot`` and,
    when its tenant has one in ``overlays``, that tenant's overlay."""
    vectors = embed_texts(embedder, [q.text for q in queries])
    return [
        # A copy: a row of the batch would keep the whole batch alive in the decision cache.
        replace(outcome, vector=vectors[i].copy())
        for i, outcome in enumerate(
            _classify_vectors(
                vectors, snapshot, calibration, queries, prior=prior, overlays=overlays
            )
        )
    ]


def _classify_vectors(
    vectors: FloatArray,
    snapshot: Snapshot,
    calibration: Calibration,
    queries: Sequence[Query],
    *,
    prior: PriorOptions,
    overlays: Mapping[str, Overlay] | None,
) -> list[Outcome]:
    k = calibration.neighbours
    sims, labels = snapshot.index.search(vectors, k)
    by_overlay: dict[str, list[int]] = {}
    if overlays:
        for position, query in enumerate(queries):
            if query.tenant_id in overlays:
                by_overlay.setdefault(query.tenant_id, []).append(position)
    if not by_overlay:  # the common case: the shipped index alone, as it always was
        return decide_all(
            queries,
            (sims, labels),
            classes=snapshot.classes,
            version=snapshot.version,
            calibration=calibration,
            prior=prior,
        )
    outcomes: list[Outcome | None] = [None] * len(queries)
    shipped = [i for i, q in enumerate(queries) if q.tenant_id not in by_overlay]
    groups: list[tuple[list[int], FloatArray, LabelArray, tuple[int, ...], str]] = []
    if shipped:
        groups.append((shipped, sims[shipped], labels[shipped], snapshot.classes, snapshot.version))
    assert overlays is not None
    for tenant, rows in by_overlay.items():
        overlay = overlays[tenant]
        found = (sims[rows], labels[rows])
        if overlay.index is not None:
            found = merge_neighbours(found, overlay.index.search(vectors[rows], k), k)
        groups.append((rows, found[0], found[1], overlay.classes, overlay.version))
    for rows, group_sims, group_labels, classes, version in groups:
        decided = decide_all(
            [queries[i] for i in rows],
            (group_sims, group_labels),
            classes=classes,
            version=version,
            calibration=calibration,
            prior=prior,
        )
        for i, outcome in zip(rows, decided, strict=True):
            outcomes[i] = outcome
    return [o for o in outcomes if o is not None]


def decide_all(
    queries: Sequence[Query],
    neighbours: tuple[FloatArray, LabelArray],
    *,
    classes: tuple[int, ...],
    version: str,
    calibration: Calibration,
    prior: PriorOptions,
) -> list[Outcome]:
    """The decision per query from its nearest exemplars (pure: no model run)."""
    scores = class_scores(*neighbours, classes, top_m=calibration.top_m)
    outcomes = []
    for query, row in zip(queries, scores, strict=True):
        decision = decide(
            row,
            classes,
            previous=query.previous,
            words=word_count(query.text),
            calibration=calibration,
            prior=prior,
        )
        outcomes.append(_outcome(decision, version))
    return outcomes


def snapshot_of(
    embedder: Embedder,
    items: Sequence[Exemplar],
    *,
    vectors_dir: Path | None = None,
) -> Snapshot:
    """Embed ``items`` and index them (blocking). With ``vectors_dir`` the vectors are
    loaded from there when built before (milliseconds), else built with progress in
    the log and published there for the next process."""
    texts = [e.text for e in items]
    if vectors_dir is None and len(texts) <= EMBED_CHUNK * 8:
        vectors = embed_texts(embedder, texts)
    else:
        vectors = vectors_for(
            embedder, texts, vectors_dir, progress=log_progress("embedding exemplars")
        )
    labels = np.array([e.label for e in items], dtype=np.int32)
    return Snapshot.build(items, ExemplarIndex(vectors, labels), model_version=embedder.version)


class Classifier:
    """Classifies messages against the shipped snapshot and the caller's tenant overlay;
    swaps overlays atomically.

    Each batch reads the overlay map once, so a swap never mixes two indexes
    in one decision and never fails a request in flight.
    """

    def __init__(
        self,
        embedder: Embedder,
        snapshot: Snapshot,
        calibration: Calibration,
        *,
        options: ClassifierOptions | None = None,
        fallback: RouterFallback | None = None,
        store: ExemplarStore | None = None,
        on_stopped: Callable[[BaseException | None], None] | None = None,
    ) -> None:
        self.embedder = embedder
        self.calibration = calibration
        self.options = options or ClassifierOptions()
        self._snapshot = snapshot
        self._decisions: OrderedDict[tuple[str, str, int], Outcome] = OrderedDict()
        self._overlays: dict[str, Overlay] = {}
        """Replaced whole on each swap, never changed in place."""
        self._fallback = fallback
        self.store: ExemplarStore = store if store is not None else MemoryExemplarStore()
        self._applied = 0
        """The store sequence up to which rows are in the overlays."""
        self._add_lock = asyncio.Lock()
        self._sync_lock = asyncio.Lock()
        self._swapped = asyncio.Condition()
        self._follower: asyncio.Task[None] | None = None
        # Retraining embeds on its own thread, never on the batches' thread.
        self._side = ThreadPoolExecutor(max_workers=1, thread_name_prefix="router-retrain")
        self._batcher: MicroBatcher[Query, Outcome] = MicroBatcher(
            self.classify_batch,
            options=self.options.batch,
            on_batch=_observe_batch,
            on_stopped=on_stopped,
            name="router-batch",
        )
        _publish(snapshot, embedder)

    @classmethod
    def build(
        cls,
        embedder: Embedder,
        base: Sequence[Exemplar],
        calibration: Calibration,
        *,
        options: ClassifierOptions | None = None,
        fallback: RouterFallback | None = None,
        store: ExemplarStore | None = None,
        vectors_dir: Path | None = None,
        on_stopped: Callable[[BaseException | None], None] | None = None,
    ) -> Classifier:
        """Embed the shipped exemplars (seconds) and make a classifier; call from a worker
        thread, then ``await sync()`` to load the tenants' added exemplars from ``store``.

        ``on_stopped`` hears that the batching loop ended unexpectedly (see MicroBatcher).
        """
        return cls(
            embedder,
            snapshot_of(embedder, base, vectors_dir=vectors_dir),
            calibration,
            options=options,
            fallback=fallback,
            store=store,
            on_stopped=on_stopped,
        )

    # -- serving ---------------------------------------------------------------

    @property
    def snapshot(self) -> Snapshot:
        """The shipped exemplars' snapshot (the same for every tenant)."""
        return self._snapshot

    @property
    def applied_sequence(self) -> int:
        """The store sequence up to which added exemplars are served."""
        return self._applied

    async def applied(self, sequence: int) -> None:
        """Return once rows up to store ``sequence`` are served (wrap in a timeout)."""
        async with self._swapped:
            await self._swapped.wait_for(lambda: self._applied >= sequence)

    def _version_of(self, tenant_id: str) -> str:
        overlay = self._overlays.get(tenant_id) if tenant_id else None
        return overlay.version if overlay is not None else self._snapshot.version

    def overlay(self, tenant_id: str) -> Overlay | None:
        """The tenant's overlay, None when it added nothing."""
        return self._overlays.get(tenant_id)

    def view(self, tenant_id: str = "") -> TenantView:
        """What ``tenant_id`` classifies with (empty: the shipped exemplars alone)."""
        snapshot = self._snapshot
        overlay = self._overlays.get(tenant_id) if tenant_id else None
        if overlay is None:
            return TenantView(snapshot.version, len(snapshot.index), 0)
        added = len(overlay.exemplars)
        return TenantView(overlay.version, len(snapshot.index) + added, added)

    @property
    def running(self) -> bool:
        """Whether the classifier still answers (its batching loop is alive)."""
        return self._batcher.running

    def start(self, *, follow: bool = False) -> None:
        """Start micro-batching on the running loop; with ``follow``, also apply what
        other replicas add to the store (see :meth:`sync`)."""
        self._batcher.start()
        if follow and self._follower is None:
            self._follower = asyncio.get_running_loop().create_task(
                self._follow(), name="router-follow-store"
            )

    async def close(self) -> None:
        """Stop following the store, batching and the retraining thread (the store is
        the caller's to close)."""
        if self._follower is not None:
            self._follower.cancel()
            await asyncio.gather(self._follower, return_exceptions=True)
        await self._batcher.close()
        self._side.shutdown(wait=False, cancel_futures=True)

    def classify_batch(self, queries: Sequence[Query]) -> list[Outcome]:
        """Classify a batch in one model run (blocking: runs on the batcher's thread)."""
        return classify_with(
            self.embedder,
            self._snapshot,
            self.calibration,
            queries,
            prior=self.options.prior,
            overlays=self._overlays,
        )

    async def classify(
        self, text: str, previous: int = I.INTENT_UNSPECIFIED, *, tenant_id: str = ""
    ) -> Outcome:
        """Classify one message for ``tenant_id`` (batched with concurrent ones); the
        fallback may decide within the inbound call's remaining time (read from the
        call context)."""
        query = Query(text, previous, tenant_id)
        key = (self._version_of(tenant_id), text, previous)
        outcome = self._decisions.get(key) if self.options.decision_cache else None
        if outcome is not None:
            # Support traffic repeats itself: the same words, the same index, the same
            # decision, without the neighbour search (the bulk of a repeated message's cost).
            self._decisions.move_to_end(key)
            metrics.DECISION_CACHE.labels("hit").inc()
        elif self.embedder.cached(for_embedding(text)):
            # A repeated text needs no model run: the neighbour search and the
            # decision take tens of microseconds, less than a hop to the batcher.
            outcome = self.classify_batch([query])[0]
        else:
            outcome = await self._batcher.submit(query)
        if self.options.decision_cache and key not in self._decisions:
            metrics.DECISION_CACHE.labels("miss").inc()
            self._decisions[key] = outcome
            while len(self._decisions) > self.options.decision_cache:
                self._decisions.popitem(last=False)
        decision = outcome.decision
        if (
            self._fallback is not None
            and decision.low_confidence
            and decision.reason != Reason.NEEDS_CONTEXT
        ):
            outcome = await self._ask_fallback(text, previous, outcome)
        _observe(outcome)
        return outcome

    async def _ask_fallback(self, text: str, previous: int, outcome: Outcome) -> Outcome:
        assert self._fallback is not None
        budget = fallback_timeout(self.options.deadlines, budget_s=self.options.fallback_budget_s)
        if budget is None:  # the clarifying question now beats a better answer too late
            metrics.FALLBACK_CALLS.labels("no_time").inc()
            return outcome
        decision = outcome.decision
        candidates = ((decision.intent, decision.confidence), *decision.alternatives)
        try:
            choice = await self._fallback.choose(
                FallbackRequest(text, previous, candidates, timeout_s=budget)
            )
        except Exception:  # a broken fallback must not break the turn
            log.exception("router fallback failed")
            metrics.FALLBACK_CALLS.labels("error").inc()
            return outcome
        if choice is None or choice.intent not in SERVED:
            metrics.FALLBACK_CALLS.labels("declined").inc()
            return outcome
        metrics.FALLBACK_CALLS.labels("decided").inc()
        chosen = Decision(
            intent=choice.intent,
            confidence=choice.confidence,
            worker=WORKER_OF[choice.intent],
            low_confidence=False,
            reason=Reason.NONE,
            alternatives=candidates[:3],
            top=decision.top,
            gap=decision.gap,
            used_previous=False,
        )
        return Outcome(
            chosen, outcome.version, method=pb.METHOD_LLM_FALLBACK, vector=outcome.vector
        )

    # -- retraining ------------------------------------------------------------

    async def add_exemplars(
        self, items: Sequence[Exemplar], request_id: str, *, tenant_id: str
    ) -> AddResult:
        """Add exemplars for ``tenant_id``: store them, then swap in the tenant's new
        overlay; the classify path never waits for it, other tenants never see it.

        Exemplars already present (shipped, or the tenant's) with the same intent
        are skipped; one present with another intent is a conflict
        (FAILED_PRECONDITION). A retry with the same ``request_id`` and exemplars
        returns the first answer, on any replica; the id with other exemplars is
        REQUEST_ID_REUSED. Request ids are the tenant's own: two tenants may use one.
        """
        fingerprint = hashlib.sha256(
            "\n".join(f"{e.label}\t{dedup_key(e.text)}" for e in items).encode()
        ).hexdigest()
        async with self._add_lock:
            snapshot = self._snapshot
            candidates, positions = _not_shipped(items, snapshot)
            overlay = self._overlays.get(tenant_id) or Overlay.empty(snapshot)
            fresh = sum(1 for e in candidates if dedup_key(e.text) not in overlay.labels_by_key)
            total = len(snapshot.index) + len(overlay.exemplars) + fresh
            if fresh and total > self.options.max_exemplars:
                raise FailedPrecondition(
                    f"the index would exceed {self.options.max_exemplars} exemplars",
                    reason="EXEMPLAR_LIMIT",
                    metadata={"limit": str(self.options.max_exemplars)},
                )
            try:
                stored = await self.store.append(
                    tenant_id, candidates, request_id=request_id, fingerprint=fingerprint
                )
            except RequestIdReused:
                raise FailedPrecondition(
                    "request_id was already used with other exemplars",
                    reason="REQUEST_ID_REUSED",
                    metadata={"request_id": request_id},
                ) from None
            except StoredConflict as conflict:
                raise _conflict(positions[conflict.position], conflict.existing) from None
            except StoreUnavailable as exc:
                raise Unavailable(
                    "could not store the new exemplars; nothing was changed",
                    reason="EXEMPLAR_STORE_FAILED",
                    metadata={"error": str(exc)},
                    retry_after_s=1.0,
                ) from exc
            # Our own rows are served before we answer (a retry would find them stored).
            try:
                await self.sync()
            except StoreUnavailable as exc:
                raise Unavailable(
                    "the exemplars are stored but not serving yet; retry the same request",
                    reason="EXEMPLAR_STORE_FAILED",
                    metadata={"error": str(exc)},
                    retry_after_s=1.0,
                ) from exc
            return AddResult(
                version=tenant_version(snapshot, stored.last_sequence),
                exemplar_count=len(snapshot.index) + stored.tenant_count,
                added=stored.added,
            )

    async def sync(self) -> None:
        """Apply the store's rows not yet applied: embed them on the retraining thread and
        swap each changed tenant's overlay (all in one reference assignment)."""
        async with self._sync_lock:
            rows = await self.store.changes_since(self._applied)
            if not rows:
                return
            loop = asyncio.get_running_loop()
            overlays = dict(self._overlays)
            for tenant, group in by_tenant(rows).items():
                current = overlays.get(tenant) or Overlay.empty(self._snapshot)
                overlays[tenant] = await loop.run_in_executor(
                    self._side, self._overlay_with, current, group
                )
            self._overlays = overlays  # the swap: one reference assignment
            self._applied = rows[-1].sequence
            async with self._swapped:
                self._swapped.notify_all()
            metrics.INDEX_SWAPS.inc()
            log.info(
                "tenant exemplar overlays swapped",
                extra={"sequence": self._applied, "tenants": len(by_tenant(rows))},
            )

    def _overlay_with(self, overlay: Overlay, rows: Sequence[StoredExemplar]) -> Overlay:
        """``overlay`` with ``rows`` (one tenant's, in sequence order) applied (blocking)."""
        base = self._snapshot
        known = dict(overlay.labels_by_key)
        new: list[Exemplar] = []
        for row in rows:
            key = dedup_key(row.exemplar.text)
            shipped = base.labels_by_key.get(key)
            if shipped is not None:
                if shipped != row.exemplar.label:
                    # The shipped data changed under a stored row: the shipped data wins.
                    log.warning(
                        "a tenant's exemplar conflicts with the shipped ones; not served",
                        extra={"sequence": row.sequence},
                    )
                continue
            if key not in known:
                known[key] = row.exemplar.label
                new.append(row.exemplar)
        vectors = (
            embed_texts(self.embedder, [e.text for e in new], chunk=EMBED_CHUNK) if new else None
        )
        return overlay.extended(new, vectors, base=base, sequence=rows[-1].sequence)

    async def _follow(self) -> None:
        """Apply other replicas' additions: on the store's notice, or every poll period."""
        poll_s = self.options.follow_poll_s
        while True:
            try:
                await self.store.wait_for_change(poll_s)
                await self.sync()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a store outage must not stop serving what we have
                log.warning(
                    "could not follow the exemplar store; retrying",
                    extra={"error": str(exc) or type(exc).__name__},
                )
                await asyncio.sleep(poll_s)


def _not_shipped(items: Sequence[Exemplar], snapshot: Snapshot) -> tuple[list[Exemplar], list[int]]:
    """The exemplars not among the shipped ones, with their positions in ``items``;
    FAILED_PRECONDITION on a conflict with a shipped exemplar or within ``items``."""
    new: list[Exemplar] = []
    positions: list[int] = []
    pending: dict[str, int] = {}
    for position, item in enumerate(items):
        key = dedup_key(item.text)
        known = snapshot.labels_by_key.get(key, pending.get(key))
        if known is None:
            pending[key] = item.label
            new.append(Exemplar(text=item.text.strip(), label=item.label))
            positions.append(position)
        elif known != item.label:
            raise _conflict(position, known)
    return new, positions


def _conflict(position: int, existing: int) -> FailedPrecondition:
    return FailedPrecondition(
        f"exemplars[{position}] is already an exemplar of {intent_name(existing)}",
        reason="EXEMPLAR_LABEL_CONFLICT",
        metadata={"index": str(position), "existing_intent": intent_name(existing)},
    )


def _outcome(decision: Decision, version: str) -> Outcome:
    question = ""
    if decision.low_confidence:
        candidates = (decision.intent, *(i for i, _ in decision.alternatives))
        question = question_for(
            needs_context=decision.reason == Reason.NEEDS_CONTEXT, candidates=candidates
        )
    return Outcome(decision, version, clarifying_question=question)


def _observe(outcome: Outcome) -> None:
    decision = outcome.decision
    method = pb.Method.Name(outcome.method).removeprefix("METHOD_").lower()
    metrics.CLASSIFICATIONS.labels(short_name(decision.intent).lower(), method).inc()
    metrics.CONFIDENCE.observe(decision.confidence)
    if decision.low_confidence:
        metrics.LOW_CONFIDENCE.labels(decision.reason.value).inc()


def _observe_batch(size: int, seconds: float) -> None:
    metrics.BATCH_SIZE.observe(size)
    metrics.BATCH_SECONDS.observe(seconds)


def _publish(snapshot: Snapshot, embedder: Embedder) -> None:
    metrics.EXEMPLARS.set(len(snapshot.index))
    metrics.CLASSIFIER.info(
        {
            "version": snapshot.version,
            "model": f"all-MiniLM-L6-v2 onnx {embedder.version}",
            "exemplars": str(len(snapshot.index)),
            "follow_ups": str(sum(1 for e in snapshot.exemplars if e.label == FOLLOW_UP)),
        }
    )
