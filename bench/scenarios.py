"""Scenario registry: a name and how to build the stream of turns it sends.

A scenario is an async builder that does its one-off setup against the gateway
(fetch customers, ...) and returns a ``TurnSource``: a function from arrival
index to the turn to send. The load generator only ever calls that function,
so a new scenario is one decorated builder here, with no change to the
generator.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from waybill.gateway.v1 import gateway_service_pb2

from bench import corpus, gateway
from bench.endpoints import SetupError


@dataclass(frozen=True, slots=True)
class Turn:
    """One Converse call: the request and the key it is sent with."""

    api_key: str
    request: gateway_service_pb2.ConverseRequest


TurnSource = Callable[[int], Turn]
"""Builds the turn for arrival ``index``; called once per arrival, in index order."""


@dataclass(frozen=True, slots=True)
class ScenarioContext:
    """What a builder gets for its setup."""

    stub: Any
    """A GatewayService stub for setup calls."""
    keys: Mapping[str, str]
    """API keys by tenant label."""
    seed: int
    """Seed of the run's RNG."""
    run_tag: str
    """Random per-run tag; keeps session ids fresh across runs with the same seed."""
    timeout_s: float = 10.0
    """Deadline of each setup call."""


Builder = Callable[[ScenarioContext], Awaitable[TurnSource]]


@dataclass(frozen=True, slots=True)
class Scenario:
    """A registered scenario."""

    name: str
    description: str
    build: Builder


_REGISTRY: dict[str, Scenario] = {}


def register(name: str, description: str) -> Callable[[Builder], Builder]:
    """Decorator adding a builder to the registry under ``name``."""

    def add(build: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"scenario {name!r} is already registered")
        _REGISTRY[name] = Scenario(name, description, build)
        return build

    return add


def get(name: str) -> Scenario:
    """The scenario called ``name``; KeyError lists the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(names())}") from None


def names() -> tuple[str, ...]:
    """Registered names, sorted."""
    return tuple(sorted(_REGISTRY))


def session_id(rng: random.Random, run_tag: str) -> str:
    """A fresh session id matching ``^[A-Za-z0-9_-]{8,64}$``."""
    return f"bn-{run_tag}-{rng.getrandbits(64):016x}"


def customer_turns(
    customers: Sequence[gateway.Customer],
    message: Callable[[random.Random, gateway.Customer], str],
    *,
    seed: int,
    run_tag: str,
) -> TurnSource:
    """Turns of a random customer of ``customers``, each in a new session, saying what
    ``message`` writes for them."""
    rng = random.Random(seed)

    def turn(_index: int) -> Turn:
        customer = rng.choice(customers)
        request = gateway_service_pb2.ConverseRequest(
            session_id=session_id(rng, run_tag),
            user_id=customer.user_id,
            message=message(rng, customer),
        )
        return Turn(customer.api_key, request)

    return turn


def question_turns(
    customers: Sequence[gateway.Customer],
    phrasings: Sequence[str],
    *,
    seed: int,
    run_tag: str,
) -> TurnSource:
    """Turns asking a random customer a random question of ``phrasings`` in a new session."""
    if not customers:
        raise SetupError("the gateway listed no customers for any tenant")
    return customer_turns(
        customers, lambda rng, c: corpus.pick(rng, phrasings, c.awbs), seed=seed, run_tag=run_tag
    )


@register("skeleton", "the four canonical tracking questions, random customer, new session")
async def skeleton(ctx: ScenarioContext) -> TurnSource:
    """The walking-skeleton load: the core questions only, no AWBs."""
    customers = await gateway.customer_pool(ctx.stub, dict(ctx.keys), timeout_s=ctx.timeout_s)
    return question_turns(customers, corpus.CORE, seed=ctx.seed, run_tag=ctx.run_tag)


@register("tracking", "all tracking phrasings, incl. questions naming the customer's own AWBs")
async def tracking(ctx: ScenarioContext) -> TurnSource:
    """Varied tracking traffic; customers' AWBs come from GetCustomerContext."""
    customers = await gateway.customer_pool(ctx.stub, dict(ctx.keys), timeout_s=ctx.timeout_s)
    customers = await gateway.with_awbs(ctx.stub, customers, timeout_s=ctx.timeout_s)
    phrasings = corpus.CORE + corpus.VARIANTS
    return question_turns(customers, phrasings, seed=ctx.seed, run_tag=ctx.run_tag)


@register("policy", "policy questions (windows, fees, refunds), random customer, new session")
async def policy(ctx: ScenarioContext) -> TurnSource:
    """Policy traffic: retrieval, the return-window tool and cited answers on every turn."""
    customers = await gateway.customer_pool(ctx.stub, dict(ctx.keys), timeout_s=ctx.timeout_s)
    return question_turns(customers, corpus.POLICY, seed=ctx.seed, run_tag=ctx.run_tag)


def dispute_turns(customers: Sequence[gateway.Customer], *, seed: int, run_tag: str) -> TurnSource:
    """Turns asking a random customer with shipments for a refund on one of them."""
    with_awbs = [c for c in customers if c.awbs]
    if not with_awbs:
        raise SetupError("no customer has an active shipment to ask about")
    return customer_turns(
        with_awbs,
        lambda rng, c: rng.choice(corpus.NEGOTIATION).format(awb=rng.choice(c.awbs)),
        seed=seed,
        run_tag=run_tag,
    )


@register("negotiation", "refund and dispute requests naming the customer's own shipments")
async def negotiation(ctx: ScenarioContext) -> TurnSource:
    """Refund and dispute turns: the order and its shipment read, eligibility, the fraud
    check and a proposal (or an ineligible answer, or a ticket) on every turn; nothing is
    confirmed, so the load writes no refund."""
    customers = await gateway.customer_pool(ctx.stub, dict(ctx.keys), timeout_s=ctx.timeout_s)
    customers = await gateway.with_awbs(ctx.stub, customers, timeout_s=ctx.timeout_s)
    return dispute_turns(customers, seed=ctx.seed, run_tag=ctx.run_tag)
