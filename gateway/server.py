"""Wiring of the gateway process."""

from __future__ import annotations

import logging

from waybill.common.v1 import intent_pb2
from waybill.gateway.v1 import gateway_service_pb2_grpc as pb_grpc
from waybill.guardrails.v1 import guardrails_service_pb2_grpc as guard_grpc
from waybill.ledger.v1 import ledger_service_pb2_grpc as ledger_grpc
from waybill.orders.v1 import orders_service_pb2_grpc as orders_grpc
from waybill.router.v1 import router_service_pb2_grpc as router_grpc
from waybill.worker.v1 import worker_service_pb2_grpc as worker_grpc

from embeddings import Embedder, EmbedderOptions, ModelMissingError
from gateway.audit import Auditor
from gateway.auth import Authenticator
from gateway.budgets import Budgets, LedgerClient, TurnEstimate
from gateway.cache.core import AnswerCache, CacheBackend, MemoryBackend, embedder_embed
from gateway.cache.kb_version import KbVersion
from gateway.cache.redis_backend import RedisBackend
from gateway.clients import Clients, GuardrailsClient, OrdersClient, RouterClient, WorkerClient
from gateway.conversation import Conversations, Limits
from gateway.key_ring import KeyRing
from gateway.key_store import KeyStoreError
from gateway.openai_api.app import model_api_app
from gateway.openai_api.calls import EmbeddingModel, ModelCalls
from gateway.openai_api.catalogue import Catalogue
from gateway.openai_api.server import ModelApiServer
from gateway.outcomes import InMemoryOutcomeStore, OutcomeStore
from gateway.ratelimit import BucketStore, InProcessBuckets, RateLimiter
from gateway.redis_outcomes import RedisOutcomeStore
from gateway.redis_ratelimit import RedisBuckets, client_for
from gateway.redis_sessions import RedisSessionStore
from gateway.service import GatewayServicer
from gateway.sessions import InMemorySessionStore, SessionStore
from gateway.settings import API_KEYS_ENV, JWKS_ENV, GatewaySettings
from gateway.tokens import JwksError, TokenVerifier
from gateway.turn_cache import TurnCache
from llm_pool import config as llm_config
from llm_pool import pricing
from llm_pool.build import build_pool
from runtime import mesh
from runtime.audit.trail import AuditTrail
from runtime.audit.writer import AuditBusyError, AuditError
from runtime.client import MeshChannel, channel
from runtime.server import Registration, serve
from runtime.settings import SettingsError

log = logging.getLogger("waybill.gateway")

_PEERS = ("guardrails", "router", "orders", "tracking", "policy", "negotiation", "ledger")


def stores(settings: GatewaySettings) -> tuple[SessionStore, OutcomeStore]:
    """Redis when ``WAYBILL_REDIS_URL`` is set (the fleet), else in-process (embedded)."""
    if settings.redis_url:
        log.info("sessions in redis", extra={"prefix": settings.redis_prefix})
        sessions = RedisSessionStore.from_url(
            settings.redis_url,
            prefix=settings.redis_prefix,
            ttl_s=settings.session_ttl_s,
            turns=settings.session_turns,
        )
        # One connection pool for both: the session store owns and closes it.
        outcomes = RedisOutcomeStore(
            sessions.client, prefix=settings.redis_prefix, ttl_s=settings.session_ttl_s
        )
        return sessions, outcomes
    return (
        InMemorySessionStore(ttl_s=settings.session_ttl_s, turns=settings.session_turns),
        InMemoryOutcomeStore(ttl_s=settings.session_ttl_s),
    )


def rate_limiter(settings: GatewaySettings) -> RateLimiter:
    """Limits shared through Redis when ``WAYBILL_REDIS_URL`` is set, else in-process."""
    store: BucketStore = InProcessBuckets()
    if settings.redis_url:
        store = RedisBuckets(client_for(settings.redis_url), replicas=settings.rate_limits.replicas)
    return RateLimiter(settings.rate_limits, store, prefix=settings.redis_prefix)


def channels(settings: GatewaySettings) -> dict[str, MeshChannel]:
    """One channel per peer; idempotent reads retry UNAVAILABLE."""
    reads: list[tuple[str, str | None]] = [
        ("waybill.orders.v1.OrdersService", "ListActiveOrders"),
        ("waybill.orders.v1.OrdersService", "ListCustomers"),
        ("waybill.orders.v1.OrdersService", "ListEscalationTickets"),
        ("waybill.orders.v1.OrdersService", "GetEscalationTicket"),
        # An agent claiming or resolving again gets the ticket back unchanged.
        ("waybill.orders.v1.OrdersService", "ClaimEscalationTicket"),
        ("waybill.orders.v1.OrdersService", "ResolveEscalationTicket"),
        ("waybill.guardrails.v1.GuardrailsService", None),
        ("waybill.router.v1.RouterService", "Classify"),
        # Idempotent by request id (Reserve) and reservation id (Commit, Release).
        ("waybill.ledger.v1.LedgerService", None),
    ]
    # The tracking worker is read-only by construction, so a turn it never
    # started may be retried on UNAVAILABLE; the other workers write.
    tracking_reads = [*reads, (mesh.WORKER_SERVICE, "RunTurn")]
    policy = settings.service.deadline_policy()
    return {
        name: channel(
            mesh.spec(name).address(),
            policy=policy,
            retry=tracking_reads if name == "tracking" else reads,
        )
        for name in _PEERS
    }


def clients(chans: dict[str, MeshChannel]) -> Clients:
    """Typed clients over the peers' channels."""
    negotiation = WorkerClient(
        worker_grpc.WorkerServiceStub(chans["negotiation"]), peer="negotiation"
    )
    return Clients(
        guardrails=GuardrailsClient(guard_grpc.GuardrailsServiceStub(chans["guardrails"])),
        router=RouterClient(router_grpc.RouterServiceStub(chans["router"])),
        orders=OrdersClient(orders_grpc.OrdersServiceStub(chans["orders"])),
        workers={
            intent_pb2.WORKER_TRACKING: WorkerClient(
                worker_grpc.WorkerServiceStub(chans["tracking"]), peer="tracking"
            ),
            intent_pb2.WORKER_POLICY: WorkerClient(
                worker_grpc.WorkerServiceStub(chans["policy"]), peer="policy"
            ),
            intent_pb2.WORKER_NEGOTIATION: negotiation,
            intent_pb2.WORKER_HUMAN: negotiation,
        },
    )


def budgets(settings: GatewaySettings, chan: MeshChannel) -> Budgets:
    """Reservations in the ledger priced from the price table, or none when turned off."""
    if not settings.budgets:
        log.warning("budgets are off: turns are not reserved or charged")
        return Budgets.off()
    estimate = TurnEstimate(
        generations=settings.turn_generations,
        input_tokens=settings.turn_input_tokens,
        output_tokens=settings.turn_output_tokens,
    )
    client = LedgerClient(ledger_grpc.LedgerServiceStub(chan), policy=chan.policy)
    return Budgets(client, estimate.cost(pricing.load()))


def answer_cache(settings: GatewaySettings) -> tuple[AnswerCache, Embedder | None] | None:
    """The answer cache the settings ask for (None when off) and the embedding model it
    loaded. Without the embedding model it matches exact questions only."""
    cache = settings.cache
    kind = cache.backend_kind(settings.redis_url)
    if kind == "off":
        log.info("answer cache off")
        return None
    embedder = None
    if cache.semantic:
        try:
            embedder = Embedder.load(options=EmbedderOptions(quantized=cache.quantized))
            embedder.warm()
        except ModelMissingError as exc:
            log.warning("answer cache matches exact questions only", extra={"reason": str(exc)})
    dim = embedder.dim if embedder is not None else 1
    backend: CacheBackend
    if kind == "redis":
        backend = RedisBackend(
            client_for(settings.redis_url),
            prefix=settings.redis_prefix,
            dim=dim,
            entries=cache.entries,
            partitions=cache.partitions,
        )
    else:
        backend = MemoryBackend(dim=dim, entries=cache.entries, partitions=cache.partitions)
    log.info("answer cache", extra={"backend": kind, "semantic": embedder is not None})
    answers = AnswerCache(
        backend,
        cache.use_cases,
        embed=None if embedder is None else embedder_embed(embedder.embed),
        model_id="" if embedder is None else embedder.version,
    )
    return answers, embedder


def model_calls(
    settings: GatewaySettings,
    *,
    deps: Clients,
    limiter: RateLimiter,
    money: Budgets,
    audit: Auditor,
    cache: AnswerCache | None,
    embedder: Embedder | None,
) -> ModelCalls:
    """Direct model calls through the LLM pool's chains (one per served model)."""
    config = llm_config.load()
    prices = pricing.load()
    catalogue = Catalogue(config, prices)
    pool = build_pool(config, templates={}, prices=prices, chains=catalogue.chains())
    log.info("model API", extra={"models": list(catalogue.models)})
    return ModelCalls(
        catalogue=catalogue,
        pool=pool,
        limiter=limiter,
        budgets=money,
        auditor=audit,
        guardrails=deps.guardrails if settings.model_api_guardrails else None,
        cache=cache,
        embeddings=EmbeddingModel(embedder if not settings.cache.quantized else None),
        turn_budget_s=settings.turn_budget_s,
        default_max_tokens=settings.model_api_max_tokens,
    )


def limits(settings: GatewaySettings) -> Limits:
    """The conversation limits the settings ask for."""
    return Limits(
        active_orders=settings.active_orders,
        hydration_ttl_s=settings.hydration_ttl_s,
        turn_budget_s=settings.turn_budget_s,
    )


def authenticator(settings: GatewaySettings) -> Authenticator:
    """API keys from the hashed store, bearer tokens when an issuer is configured;
    SettingsError when either cannot be read (fail at start, not at the first call)."""
    try:
        keys = KeyRing.load(settings.api_keys_file, refresh_s=settings.keys_refresh_s)
    except FileNotFoundError:
        raise SettingsError(f"{API_KEYS_ENV}={settings.api_keys_file} does not exist") from None
    except (OSError, KeyStoreError) as exc:
        raise SettingsError(f"{API_KEYS_ENV}: {exc}") from None
    tokens = None
    if settings.tokens is not None:
        try:
            tokens = TokenVerifier.load(settings.tokens, refresh_s=settings.keys_refresh_s)
        except (OSError, JwksError) as exc:
            raise SettingsError(f"{JWKS_ENV}: {exc}") from None
    log.info(
        "authentication",
        extra={"keys_refresh_s": settings.keys_refresh_s, "bearer_tokens": tokens is not None},
    )
    return Authenticator(keys, tokens)


def auditor(settings: GatewaySettings) -> Auditor:
    """The audit log of this replica, or none when turned off."""
    if not settings.audit:
        log.warning("auditing is off: turns leave no audit record")
        return Auditor(None)
    try:
        trail = AuditTrail.open(settings.audit_dir)
    except AuditBusyError:
        raise SettingsError(
            "another gateway writes this audit log: give each replica its own WAYBILL_AUDIT_DIR"
        ) from None
    except AuditError as exc:
        raise SettingsError(f"the audit log cannot be opened: {exc}") from None
    return Auditor(trail)


async def main() -> None:
    """Connect to the mesh and serve the gateway."""
    settings = GatewaySettings.from_env()
    auth = authenticator(settings)
    chans = channels(settings)
    deps = clients(chans)
    sessions, outcomes = stores(settings)
    limiter = rate_limiter(settings)
    audit = auditor(settings)
    money = budgets(settings, chans["ledger"])
    cached = answer_cache(settings)
    answers = (
        None
        if cached is None
        else TurnCache(
            cached[0], KbVersion(settings.cache.kb_dir, poll_s=settings.cache.version_poll_s)
        )
    )
    model_api: ModelApiServer | None = None
    calls: ModelCalls | None = None
    if settings.model_api_address:
        calls = model_calls(
            settings,
            deps=deps,
            limiter=limiter,
            money=money,
            audit=audit,
            cache=None if cached is None else cached[0],
            embedder=None if cached is None else cached[1],
        )
        model_api = ModelApiServer(model_api_app(calls, auth), settings.model_api_address)

    async def ready() -> None:
        if model_api is not None:
            await model_api.start()

    servicer = GatewayServicer(
        auth=auth,
        conversations=Conversations(
            deps,
            sessions,
            outcomes,
            limits(settings),
            budgets=money,
            turn_cache=answers,
        ),
        sessions=sessions,
        orders=deps.orders,
        limiter=limiter,
        auditor=audit,
    )

    async def on_stop() -> None:
        if model_api is not None:
            await model_api.stop()
        if calls is not None:
            await calls.aclose()
        await money.close()
        for ch in chans.values():
            await ch.close()
        await outcomes.close()
        await sessions.close()
        await limiter.close()
        await audit.aclose()
        if answers is not None:
            await answers.aclose()

    await serve(
        settings.service,
        [
            Registration(
                mesh.spec("gateway").grpc_services[0],
                pb_grpc.add_GatewayServiceServicer_to_server,
                servicer,
            )
        ],
        ready=ready,
        on_stop=on_stop,
    )
