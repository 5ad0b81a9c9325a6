"""The embedding classifier: exemplar index snapshots, batched classification,
live retraining with an atomic swap, and the low-confidence fallback hook."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
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
from router.index import ExemplarIndex
from router.intents import FOLLOW_UP, SERVED, WORKER_OF, I, intent_name, short_name
from router.normalize import dedup_key, for_embedding, word_count
from router.scoring import class_scores
from router.vectors import log_progress, vectors_for
from runtime.deadlines import DeadlinePolicy
from runtime.errors import FailedPrecondition, Unavailable

log = logging.getLogger("waybill.router")

EMBED_CHUNK = 16
"""Exemplars per model run when retraining: short runs leave the live batches room."""
FALLBACK_BUDGET_S = 0.3
"""Most time the LLM fallback may take (less when the caller's deadline is nearer)."""
REMEMBERED_REQUESTS = 1024
"""AddExemplars request ids remembered for idempotent retries."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One exemplar set and its index; immutable, replaced whole on retraining."""

    index: ExemplarIndex
    exemplars: tuple[Exemplar, ...]
    labels_by_key: dict[str, int]
    """``dedup_key(text)`` -> label, to find duplicates and conflicts."""
    classes: tuple[int, ...]
    version: str
    added: int
    """Exemplars added at run time (included in ``exemplars``)."""

    @classmethod
    def build(
        cls, items: Sequence[Exemplar], index: ExemplarIndex, *, model_version: str, added: int
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
            added=added,
        )

    def extended(
        self, new: Sequence[Exemplar], vectors: FloatArray, *, model_version: str
    ) -> Snapshot:
        """A new snapshot with ``new`` added; this one stays as it is for batches using it."""
        labels = np.array([e.label for e in new], dtype=np.int32)
        return Snapshot.build(
            [*self.exemplars, *new],
            self.index.extended(vectors, labels),
            model_version=model_version,
            added=self.added + len(new),
        )


@dataclass(frozen=True, slots=True)
class Query:
    """One message to classify."""

    text: str
    previous: int = I.INTENT_UNSPECIFIED


@dataclass(frozen=True, slots=True)
class Outcome:
    """A decision with how it was made and by which classifier version."""

    decision: Decision
    version: str
    method: int = pb.METHOD_EMBEDDING
    clarifying_question: str = ""


@dataclass(frozen=True, slots=True)
class AddResult:
    """What AddExemplars did."""

    version: str
    exemplar_count: int
    added: int


@dataclass(frozen=True, slots=True)
class ClassifierOptions:
    """How the classifier runs."""

    prior: PriorOptions = field(default_factory=PriorOptions)
    batch: BatchOptions = field(default_factory=BatchOptions)
    max_exemplars: int = 50_000
    """Index size limit for AddExemplars."""
    deadlines: DeadlinePolicy = field(default_factory=DeadlinePolicy)
    """The service's deadline policy: the fallback gets the remaining time minus its margin."""
    fallback_budget_s: float = FALLBACK_BUDGET_S
    """Most time the LLM fallback may take (less when the caller's deadline is nearer)."""


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
) -> list[Outcome]:
    """Classify ``queries`` against ``snapshot`` in one model run (blocking)."""
    vectors = embed_texts(embedder, [q.text for q in queries])
    sims, labels = snapshot.index.search(vectors, calibration.neighbours)
    scores = class_scores(sims, labels, snapshot.classes, top_m=calibration.top_m)
    outcomes = []
    for query, row in zip(queries, scores, strict=True):
        decision = decide(
            row,
            snapshot.classes,
            previous=query.previous,
            words=word_count(query.text),
            calibration=calibration,
            prior=prior,
        )
        outcomes.append(_outcome(decision, snapshot.version))
    return outcomes


def snapshot_of(
    embedder: Embedder,
    items: Sequence[Exemplar],
    *,
    added: int = 0,
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
    return Snapshot.build(
        items, ExemplarIndex(vectors, labels), model_version=embedder.version, added=added
    )


class Classifier:
    """Classifies messages against the current snapshot; swaps snapshots atomically.

    Each batch reads the snapshot reference once, so a swap never mixes two
    indexes in one decision and never fails a request in flight.
    """

    def __init__(
        self,
        embedder: Embedder,
        snapshot: Snapshot,
        calibration: Calibration,
        *,
        options: ClassifierOptions | None = None,
        fallback: RouterFallback | None = None,
        added_path: Path | None = None,
        on_stopped: Callable[[BaseException | None], None] | None = None,
    ) -> None:
        self.embedder = embedder
        self.calibration = calibration
        self.options = options or ClassifierOptions()
        self._snapshot = snapshot
        self._fallback = fallback
        self._added_path = added_path
        self._add_lock = asyncio.Lock()
        self._requests: OrderedDict[str, tuple[str, AddResult]] = OrderedDict()
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
        added: Sequence[Exemplar] = (),
        options: ClassifierOptions | None = None,
        fallback: RouterFallback | None = None,
        added_path: Path | None = None,
        vectors_dir: Path | None = None,
        on_stopped: Callable[[BaseException | None], None] | None = None,
    ) -> Classifier:
        """Embed the exemplars (seconds) and make a classifier; call from a worker thread.

        ``on_stopped`` hears that the batching loop ended unexpectedly (see MicroBatcher).
        """
        items = list(base)
        seen = {dedup_key(e.text): e.label for e in items}
        extra = 0
        for e in added:
            known = seen.get(dedup_key(e.text))
            if known is None:
                items.append(e)
                seen[dedup_key(e.text)] = e.label
                extra += 1
            elif known != e.label:
                log.warning("added exemplar conflicts with the data file; the file wins")
        snapshot = snapshot_of(embedder, items, added=extra, vectors_dir=vectors_dir)
        return cls(
            embedder,
            snapshot,
            calibration,
            options=options,
            fallback=fallback,
            added_path=added_path,
            on_stopped=on_stopped,
        )

    # -- serving ---------------------------------------------------------------

    @property
    def snapshot(self) -> Snapshot:
        """The snapshot in use."""
        return self._snapshot

    @property
    def running(self) -> bool:
        """Whether the classifier still answers (its batching loop is alive)."""
        return self._batcher.running

    def start(self) -> None:
        """Start micro-batching on the running loop."""
        self._batcher.start()

    async def close(self) -> None:
        """Stop batching and the retraining thread."""
        await self._batcher.close()
        self._side.shutdown(wait=False, cancel_futures=True)

    def classify_batch(self, queries: Sequence[Query]) -> list[Outcome]:
        """Classify a batch in one model run (blocking: runs on the batcher's thread)."""
        return classify_with(
            self.embedder, self._snapshot, self.calibration, queries, prior=self.options.prior
        )

    async def classify(self, text: str, previous: int = I.INTENT_UNSPECIFIED) -> Outcome:
        """Classify one message (batched with concurrent ones); the fallback may decide
        within the inbound call's remaining time (read from the call context)."""
        query = Query(text, previous)
        if self.embedder.cached(for_embedding(text)):
            # A repeated text needs no model run: the neighbour search and the
            # decision take tens of microseconds, less than a hop to the batcher.
            outcome = self.classify_batch([query])[0]
        else:
            outcome = await self._batcher.submit(query)
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
        return Outcome(chosen, outcome.version, method=pb.METHOD_LLM_FALLBACK)

    # -- retraining ------------------------------------------------------------

    async def add_exemplars(self, items: Sequence[Exemplar], request_id: str) -> AddResult:
        """Add exemplars and swap in a new index; the classify path never waits for it.

        Exemplars already present with the same intent are skipped; one present
        with another intent is a conflict (FAILED_PRECONDITION). A retry with
        the same ``request_id`` and exemplars returns the first answer.
        """
        fingerprint = hashlib.sha256(
            "\n".join(f"{e.label}\t{dedup_key(e.text)}" for e in items).encode()
        ).hexdigest()
        async with self._add_lock:
            remembered = self._requests.get(request_id)
            if remembered is not None:
                if remembered[0] != fingerprint:
                    raise FailedPrecondition(
                        "request_id was already used with other exemplars",
                        reason="REQUEST_ID_REUSED",
                        metadata={"request_id": request_id},
                    )
                return remembered[1]
            snapshot = self._snapshot
            new = _new_exemplars(items, snapshot)
            if len(snapshot.index) + len(new) > self.options.max_exemplars:
                raise FailedPrecondition(
                    f"the index would exceed {self.options.max_exemplars} exemplars",
                    reason="EXEMPLAR_LIMIT",
                    metadata={"limit": str(self.options.max_exemplars)},
                )
            if new:
                snapshot = await self._extended(snapshot, new)
                self._snapshot = snapshot  # the swap: one reference assignment
                metrics.INDEX_SWAPS.inc()
                _publish(snapshot, self.embedder)
                log.info(
                    "exemplar index swapped",
                    extra={"version": snapshot.version, "exemplars": len(snapshot.index)},
                )
            result = AddResult(snapshot.version, len(snapshot.index), len(new))
            self._requests[request_id] = (fingerprint, result)
            while len(self._requests) > REMEMBERED_REQUESTS:
                self._requests.popitem(last=False)
            return result

    async def _extended(self, snapshot: Snapshot, new: list[Exemplar]) -> Snapshot:
        loop = asyncio.get_running_loop()

        def build() -> Snapshot:
            vectors = embed_texts(self.embedder, [e.text for e in new], chunk=EMBED_CHUNK)
            return snapshot.extended(new, vectors, model_version=self.embedder.version)

        built = await loop.run_in_executor(self._side, build)
        if self._added_path is not None:
            try:
                await loop.run_in_executor(self._side, exemplar_files.append, self._added_path, new)
            except OSError as exc:
                raise Unavailable(
                    "could not store the new exemplars; nothing was changed",
                    reason="EXEMPLAR_STORE_FAILED",
                    metadata={"error": exc.strerror or type(exc).__name__},
                ) from exc
        return built


def _new_exemplars(items: Sequence[Exemplar], snapshot: Snapshot) -> list[Exemplar]:
    """The exemplars not yet in ``snapshot``; FAILED_PRECONDITION on a label conflict."""
    new: list[Exemplar] = []
    pending: dict[str, int] = {}
    for position, item in enumerate(items):
        key = dedup_key(item.text)
        known = snapshot.labels_by_key.get(key, pending.get(key))
        if known is None:
            pending[key] = item.label
            new.append(Exemplar(text=item.text.strip(), label=item.label))
        elif known != item.label:
            raise FailedPrecondition(
                f"exemplars[{position}] is already an exemplar of {intent_name(known)}",
                reason="EXEMPLAR_LABEL_CONFLICT",
                metadata={"index": str(position), "existing_intent": intent_name(known)},
            )
    return new


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
