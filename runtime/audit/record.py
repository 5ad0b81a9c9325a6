"""What a turn's audit record holds, and its canonical bytes.

A record holds identifiers, codes and numbers only. Every text field must be a short token
(letters, digits and ``._:/+=-``, at most 128 characters): a sentence, an e-mail address or
a phone number written with spaces cannot be stored, so message text never reaches the log
by mistake. The end user and the session appear only as pseudonyms (``u_``/``s_`` and 32
hex digits, see ``pseudonyms``); a raw user id is refused by the pattern.

The canonical form is compact JSON with sorted keys, ASCII only, integers only (no floats:
their text form differs between languages), with a schema version ``v``. It is what the
chain hashes, stored verbatim on each line, so verification never re-serialises.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from typing import Any

SCHEMA_VERSION = 1
"""``v`` of the canonical form; a reader refuses versions it does not know."""

_TOKEN = re.compile(r"[A-Za-z0-9._:/+=-]{0,128}")
_USER_PSEUDONYM = re.compile(r"(?:u_[0-9a-f]{32})?")
_SESSION_PSEUDONYM = re.compile(r"(?:s_[0-9a-f]{32})?")
_MAX_ITEMS = 64


class RecordError(ValueError):
    """A value an audit record may not hold, or bytes that are not a canonical record."""


def _token(name: str, value: object) -> str:
    if type(value) is not str or _TOKEN.fullmatch(value) is None:
        raise RecordError(
            f"{name} must be a token of at most 128 letters, digits or ._:/+=- (no text)"
        )
    return value


def _count(name: str, value: object) -> int:
    if type(value) is not int or value < 0:
        raise RecordError(f"{name} must be a non-negative int")
    return value


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool the worker called and how it ended."""

    name: str
    """Tool name, e.g. ``get_order_status``."""
    status: str
    """Status code name, e.g. ``OK``, ``NOT_FOUND``, ``DEADLINE_EXCEEDED``."""

    def __post_init__(self) -> None:
        _token("tool name", self.name)
        _token("tool status", self.status)


@dataclass(frozen=True, slots=True)
class GuardrailVerdict:
    """What one guardrail check decided."""

    check: str
    """The check, e.g. ``input_pii``, ``injection``, ``grounding``, ``output_pii``."""
    action: str
    """What it did, e.g. ``allow``, ``redact``, ``block``."""

    def __post_init__(self) -> None:
        _token("guardrail check", self.check)
        _token("guardrail action", self.action)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRecord:
    """The metadata of one turn. No message text, no raw user id (see the module doc)."""

    time: datetime
    """When the turn started (timezone-aware; stored in UTC to the microsecond)."""
    request_id: str
    """The turn's request id (idempotency key)."""
    tenant_id: str
    """Tenant (client company)."""
    team_id: str = ""
    """Team that pays."""
    principal_id: str = ""
    """The credential that called (API key id, service subject), never the end user."""
    user_pseudonym: str = ""
    """The end user as a keyed pseudonym (``u_`` + 32 hex), empty when anonymous."""
    session_pseudonym: str = ""
    """The session as a keyed pseudonym (``s_`` + 32 hex), empty when none."""
    intent: str = ""
    """Intent the router chose, e.g. ``INTENT_TRACKING``."""
    worker: str = ""
    """Worker that answered, empty when none did (blocked, cached)."""
    tools: tuple[ToolCall, ...] = ()
    """Tools called, in order."""
    models: tuple[str, ...] = ()
    """Models that generated (backend/model), in order."""
    input_tokens: int = 0
    """Input tokens over every generation of the turn."""
    output_tokens: int = 0
    """Output tokens over every generation of the turn."""
    cost_micro_units: int = 0
    """Cost in millionths of the currency's major unit."""
    currency_code: str = "USD"
    """ISO 4217 code of the cost."""
    latency_us: int = 0
    """Wall time of the turn in microseconds (cache hits take well under a millisecond)."""
    guardrails: tuple[GuardrailVerdict, ...] = ()
    """Guardrail verdicts, in the order they ran."""
    cache_hit: bool = False
    """Whether the answer came from the semantic cache."""
    budget_state: str = ""
    """Budget after the turn, e.g. ``ok``, ``soft_limit``, ``hard_limit``."""
    outcome: str = ""
    """How the turn ended: ``OK`` or a status/reason code, e.g. ``BLOCKED_INJECTION``."""

    def __post_init__(self) -> None:
        if not isinstance(self.time, datetime) or self.time.tzinfo is None:
            raise RecordError("time must be a timezone-aware datetime")
        object.__setattr__(self, "time", self.time.astimezone(UTC))
        for name in (
            "request_id",
            "tenant_id",
            "team_id",
            "principal_id",
            "intent",
            "worker",
            "currency_code",
            "budget_state",
            "outcome",
        ):
            _token(name, getattr(self, name))
        if not self.request_id or not self.tenant_id:
            raise RecordError("request_id and tenant_id are required")
        if type(self.user_pseudonym) is not str or not _USER_PSEUDONYM.fullmatch(
            self.user_pseudonym
        ):
            raise RecordError("user_pseudonym must be a pseudonym (u_ + 32 hex), never an id")
        if type(self.session_pseudonym) is not str or not _SESSION_PSEUDONYM.fullmatch(
            self.session_pseudonym
        ):
            raise RecordError("session_pseudonym must be a pseudonym (s_ + 32 hex), never an id")
        for name in ("input_tokens", "output_tokens", "cost_micro_units", "latency_us"):
            _count(name, getattr(self, name))
        if type(self.cache_hit) is not bool:
            raise RecordError("cache_hit must be a bool")
        object.__setattr__(self, "tools", self._items("tools", self.tools, ToolCall))
        object.__setattr__(
            self, "guardrails", self._items("guardrails", self.guardrails, GuardrailVerdict)
        )
        models = tuple(self.models)
        if len(models) > _MAX_ITEMS:
            raise RecordError(f"at most {_MAX_ITEMS} models")
        for model in models:
            _token("model", model)
        object.__setattr__(self, "models", models)

    @staticmethod
    def _items(name: str, values: Iterable[Any], kind: type[Any]) -> tuple[Any, ...]:
        items = tuple(values)
        if len(items) > _MAX_ITEMS or not all(isinstance(i, kind) for i in items):
            raise RecordError(f"{name} must be at most {_MAX_ITEMS} {kind.__name__} values")
        return items

    @property
    def day(self) -> date:
        """The UTC day of ``time``: which segment file the record belongs to."""
        return self.time.date()


FIELD_NAMES = frozenset(f.name for f in fields(AuditRecord) if f.init)
"""The keys of the canonical form, besides ``v``."""


def _time_text(moment: datetime) -> str:
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def canonical(record: AuditRecord) -> bytes:
    """The record's canonical bytes: sorted-key compact ASCII JSON, the form the chain hashes."""
    document = {
        "v": SCHEMA_VERSION,
        "time": _time_text(record.time),
        "request_id": record.request_id,
        "tenant_id": record.tenant_id,
        "team_id": record.team_id,
        "principal_id": record.principal_id,
        "user_pseudonym": record.user_pseudonym,
        "session_pseudonym": record.session_pseudonym,
        "intent": record.intent,
        "worker": record.worker,
        "tools": [{"name": t.name, "status": t.status} for t in record.tools],
        "models": list(record.models),
        "input_tokens": record.input_tokens,
        "output_tokens": record.output_tokens,
        "cost_micro_units": record.cost_micro_units,
        "currency_code": record.currency_code,
        "latency_us": record.latency_us,
        "guardrails": [{"action": g.action, "check": g.check} for g in record.guardrails],
        "cache_hit": record.cache_hit,
        "budget_state": record.budget_state,
        "outcome": record.outcome,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("ascii")


def _pairs(value: object, keys: tuple[str, str], name: str) -> list[tuple[str, str]]:
    if not isinstance(value, list):
        raise RecordError(f"{name} must be a list")
    pairs = []
    for item in value:
        if not isinstance(item, Mapping) or set(item) != set(keys):
            raise RecordError(f"each of {name} must have exactly {', '.join(keys)}")
        pairs.append((item[keys[0]], item[keys[1]]))
    return pairs


def decode(data: bytes) -> AuditRecord:
    """The record whose canonical bytes are ``data``; RecordError for unknown or missing
    keys, another schema version, or bytes that are not exactly the canonical form."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(f"not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise RecordError("not a JSON object")
    if document.get("v") != SCHEMA_VERSION:
        raise RecordError(f"schema version {document.get('v')!r} is not {SCHEMA_VERSION}")
    keys = set(document) - {"v"}
    if keys != FIELD_NAMES:
        unknown, missing = sorted(keys - FIELD_NAMES), sorted(FIELD_NAMES - keys)
        raise RecordError(f"unknown keys {unknown}, missing keys {missing}")
    values = dict(document)
    del values["v"]
    if not isinstance(values["time"], str) or not values["time"].endswith("Z"):
        raise RecordError("time must be UTC text ending in Z")
    try:
        values["time"] = datetime.fromisoformat(values["time"][:-1]).replace(tzinfo=UTC)
    except ValueError:
        raise RecordError("time is not an ISO time") from None
    values["tools"] = tuple(
        ToolCall(n, s) for n, s in _pairs(values["tools"], ("name", "status"), "tools")
    )
    values["guardrails"] = tuple(
        GuardrailVerdict(c, a)
        for c, a in _pairs(values["guardrails"], ("check", "action"), "guardrails")
    )
    if not isinstance(values["models"], list):
        raise RecordError("models must be a list")
    values["models"] = tuple(values["models"])
    record = AuditRecord(**values)
    if canonical(record) != data:
        raise RecordError("not in canonical form")
    return record
