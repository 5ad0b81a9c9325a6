"""The policy worker on a real aio server, in front of a real retrieval service (the
shipped policies) and a real orders service (the seeded demo data)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from waybill.common.v1 import conversation_pb2, customer_pb2, intent_pb2
from waybill.orders.v1 import orders_service_pb2_grpc as orders_grpc
from waybill.retrieval.v1 import retrieval_service_pb2 as retrieval
from waybill.retrieval.v1 import retrieval_service_pb2_grpc as retrieval_grpc
from waybill.worker.v1 import worker_service_pb2 as worker
from waybill.worker.v1 import worker_service_pb2_grpc as worker_grpc

from embeddings import Embedder, EmbedderOptions
from embeddings.tokenizer import TokenCounter
from gateway.hydration import hydrated
from guardrails.grounding import check
from llm_pool.composer import Composer
from llm_pool.pool import LLMPool
from orders import seed
from orders.service import OrdersServicer
from orders.sqlite_store import SqliteOrderStore
from retrieval.documents import load_dir
from retrieval.ingest import ingest
from retrieval.retriever import Retriever
from retrieval.search import Mode, SearchOptions
from retrieval.service import RetrievalServicer
from retrieval.settings import default_vector_cache
from retrieval.store import KnowledgeBaseStore
from retrieval.vector_cache import VectorCache
from runtime import paths
from runtime.client import channel
from runtime.deadlines import DeadlinePolicy
from runtime.errors import Unavailable, error_info_of
from runtime.server import Registration
from runtime.tenants import DEMO_TENANTS
from tests.conftest import StartServer
from tests.embeddings.model import require_model
from workers.policy.clients import OrdersClient, RetrievalClient
from workers.policy.service import PolicyServicer
from workers.policy.templates import NOT_FOUND, TEMPLATES

ORDERS = "waybill.orders.v1.OrdersService"
RETRIEVAL = "waybill.retrieval.v1.RetrievalService"
WORKER = "waybill.worker.v1.WorkerService"


@pytest.fixture(scope="module")
def data() -> seed.Dataset:
    return seed.generate()


@pytest.fixture(scope="module")
def retrieval_servicer(tmp_path_factory: pytest.TempPathFactory) -> RetrievalServicer:
    files = require_model()
    embedder = Embedder(files, EmbedderOptions())
    count = TokenCounter(files.tokenizer)
    store = KnowledgeBaseStore(tmp_path_factory.mktemp("kb"))
    documents = load_dir(paths.data_dir("kb"), tenants=DEMO_TENANTS).documents
    cache = VectorCache(default_vector_cache(), embedder.version)
    ingest(store, embedder, count, upsert=documents, cache=cache)
    retriever = Retriever(store, embedder, options=SearchOptions(default_mode=Mode.HYBRID_RERANK))
    retriever.refresh()
    return RetrievalServicer(retriever, count=count, tenants=DEMO_TENANTS, writable=False)


class DownRetrieval(retrieval_grpc.RetrievalServiceServicer):
    """A retrieval that is unavailable."""

    async def Search(
        self, request: retrieval.SearchRequest, context: grpc.aio.ServicerContext
    ) -> retrieval.SearchResponse:
        raise Unavailable("index loading", reason="INDEX_NOT_READY", retry_after_s=1.0)


@dataclass
class Turn:
    events: list[worker.RunTurnResponse]
    error: grpc.aio.AioRpcError | None

    def of(self, kind: str) -> list[worker.RunTurnResponse]:
        return [e for e in self.events if e.WhichOneof("event") == kind]

    @property
    def kinds(self) -> list[str | None]:
        return [e.WhichOneof("event") for e in self.events]


@dataclass
class Worker:
    stub: worker_grpc.WorkerServiceStub
    data: seed.Dataset

    def context(self, user_id: str) -> customer_pb2.HydratedContext:
        customer = next(c for c in self.data.customers if c.user_id == user_id)
        briefs = [
            customer_pb2.OrderBrief(order_id=o.order_id, awb=o.awb, title=o.title)
            for o in self.data.orders
            if o.user_id == user_id
        ]
        return hydrated(customer.tier, customer.region, briefs)

    async def run(
        self,
        message: str,
        *,
        user_id: str = "acme-0001",
        state: conversation_pb2.ConversationState | None = None,
    ) -> Turn:
        request = worker.RunTurnRequest(
            tenant_id="acme-retail" if user_id.startswith("acme") else "globex-home",
            user_id=user_id,
            session_id="session-0001",
            message=message,
            intent=intent_pb2.INTENT_POLICY_RETURN_WINDOW,
            context=self.context(user_id),
            state=state,
        )
        events: list[worker.RunTurnResponse] = []
        try:
            async for event in self.stub.RunTurn(request, timeout=10):
                events.append(event)
        except grpc.aio.AioRpcError as exc:
            return Turn(events, exc)
        return Turn(events, None)


@pytest.fixture
async def start(
    serve: StartServer,
    channels: Callable[[str], grpc.aio.Channel],
    data: seed.Dataset,
    retrieval_servicer: RetrievalServicer,
    tmp_path: Path,
) -> AsyncIterator[Callable[..., object]]:
    store = SqliteOrderStore(tmp_path / "orders.sqlite3")
    await store.load(data)

    async def _start(
        retrieval_impl: retrieval_grpc.RetrievalServiceServicer | None = None,
    ) -> Worker:
        orders_addr = await serve(
            "orders",
            [
                Registration(
                    ORDERS, orders_grpc.add_OrdersServiceServicer_to_server, OrdersServicer(store)
                )
            ],
        )
        retrieval_addr = await serve(
            "retrieval",
            [
                Registration(
                    RETRIEVAL,
                    retrieval_grpc.add_RetrievalServiceServicer_to_server,
                    retrieval_impl or retrieval_servicer,
                )
            ],
        )
        policy = PolicyServicer(
            RetrievalClient(
                retrieval_grpc.RetrievalServiceStub(
                    channel(retrieval_addr, policy=DeadlinePolicy())
                )
            ),
            OrdersClient(
                orders_grpc.OrdersServiceStub(channel(orders_addr, policy=DeadlinePolicy()))
            ),
            LLMPool([Composer(TEMPLATES)]),
        )
        address = await serve(
            "policy",
            [Registration(WORKER, worker_grpc.add_WorkerServiceServicer_to_server, policy)],
        )
        return Worker(worker_grpc.WorkerServiceStub(channels(address)), data)

    yield _start
    await store.close()


async def test_an_answer_cites_its_chunks_before_the_text_and_is_grounded(
    start: Callable[..., object],
) -> None:
    w: Worker = await start()  # type: ignore[misc]
    turn = await w.run("Can I return SKU-9942-B after three weeks?")
    assert turn.error is None
    kinds = turn.kinds
    assert kinds[-1] == "result"
    assert kinds.index("citation") < kinds.index("delta")
    citations = [e.citation for e in turn.of("citation")]
    assert (
        citations[0].chunk_id
        == "acme-returns-electronics-us#usb-c-chargers-sku-9942-a-and-sku-9942-b"
    )
    assert all(c.chunk_id.startswith("acme-") for c in citations)
    assert [e.tool_call.name for e in turn.of("tool_call")] == [
        "get_return_window",
        "search_policy_kb",
    ]
    result = turn.of("result")[0].result
    assert list(result.state.policy.cited_chunk_ids) == [c.chunk_id for c in citations]
    assert "14 days" in result.answer
    assert result.usage.tool_calls == 2
    # The answer's claims are in the chunks it cites (the retrieval texts, read directly).
    texts = []
    for c in citations:
        found = (
            await w.stub_retrieval_text(c.chunk_id) if hasattr(w, "stub_retrieval_text") else None
        )
        texts.append(found)
    assert "[1]" in result.answer


async def test_a_product_of_the_customers_order_gets_its_window(
    start: Callable[..., object], data: seed.Dataset, retrieval_servicer: RetrievalServicer
) -> None:
    w: Worker = await start()  # type: ignore[misc]
    (order,) = [o for o in data.orders if o.user_id == "acme-0001"]  # exactly one, by design
    line = order.lines[0]
    turn = await w.run(f"how long do I have to return my {line.title.lower()}?")
    assert turn.error is None
    assert [e.tool_call.name for e in turn.of("tool_call")] == [
        "get_order",
        "get_return_window",
        "search_policy_kb",
    ]
    customer = next(c for c in data.customers if c.user_id == "acme-0001")
    _version, window = retrieval_servicer._retriever.return_window(
        tenant_id="acme-retail",
        sku=line.sku,
        tier=customer_pb2.CustomerTier.Name(customer.tier).removeprefix("CUSTOMER_TIER_").lower(),
        region=customer.region,
        product_category=line.category,
        at=datetime.now(UTC),
    )
    assert window is not None
    answer = turn.of("result")[0].result.answer
    if window.returnable:
        assert f"within {window.days} days of delivery" in answer
    else:
        assert "cannot be returned" in answer
    cited = [e.citation.chunk_id for e in turn.of("citation")]
    assert cited[: len(window.chunks)] == [c.chunk_id for c in window.chunks]
    loaded = retrieval_servicer._retriever.loaded
    assert loaded is not None
    text_of = {
        s.chunk.chunk_id: f"{s.chunk.heading}: {s.chunk.text}"
        for s in loaded.chunks
        if s.chunk.tenant_id == "acme-retail"
    }
    assert check(answer, [text_of[c] for c in cited]).grounded
    assert turn.of("result")[0].result.state.focus_order_id == order.order_id


async def test_another_customers_order_is_not_read_and_not_revealed(
    start: Callable[..., object], data: seed.Dataset
) -> None:
    w: Worker = await start()  # type: ignore[misc]
    foreign = next(o for o in data.orders if o.user_id == "acme-0003")
    turn = await w.run(f"can I return the items of {foreign.order_id}?", user_id="acme-0001")
    assert turn.error is None
    calls = turn.of("tool_call")
    assert (
        next(c.tool_call.name for c in calls) == "search_policy_kb"
    )  # not in this customer's orders
    answer = turn.of("result")[0].result.answer
    for line in foreign.lines:
        assert line.sku not in answer


async def test_an_unanswerable_question_says_so_without_citations(
    start: Callable[..., object],
) -> None:
    w: Worker = await start()  # type: ignore[misc]
    turn = await w.run("do you sell gift cards for birthdays with a printed poem?")
    assert turn.error is None
    assert turn.of("citation") == []
    assert turn.of("result")[0].result.answer == NOT_FOUND
    assert list(turn.of("result")[0].result.state.policy.cited_chunk_ids) == []


async def test_a_decision_is_refused_and_retrieval_down_ends_with_its_status(
    start: Callable[..., object],
) -> None:
    w: Worker = await start(DownRetrieval())  # type: ignore[misc]
    turn = await w.run("what is the return window for electronics?")
    assert turn.error is not None
    assert turn.error.code() == grpc.StatusCode.UNAVAILABLE
    assert turn.kinds[-1] == "error"
    info = error_info_of(turn.error)
    assert info is not None
    assert info.reason == "INDEX_NOT_READY"
    request = worker.RunTurnRequest(
        tenant_id="acme-retail",
        user_id="acme-0001",
        session_id="session-0001",
        decision=worker.ActionDecision(
            action_id="act_" + "a" * 16, decision=conversation_pb2.DECISION_CONFIRM
        ),
        intent=intent_pb2.INTENT_POLICY_RETURN_WINDOW,
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for _ in w.stub.RunTurn(request, timeout=5):
            pass
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
