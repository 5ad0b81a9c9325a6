"""Policy documents: Markdown with YAML front matter, parsed and checked whole.

A document is accepted entirely or rejected with the file and the rule it broke
(``DocumentRejected``); nothing of a rejected document reaches an index. The
same checks apply to files (``waybill kb ingest DIR``) and to documents sent over
gRPC (``IngestDocuments``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml
from waybill.retrieval.v1 import retrieval_service_pb2 as pb

MAX_DOCUMENT_BYTES = 256 * 1024
"""Largest accepted body (UTF-8), as in the contract."""
DOC_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{2,127}$")
REGION = re.compile(r"^([A-Z]{2}(-[A-Z0-9]{1,3})?)?$")
SKU = re.compile(r"^SKU-[0-9]{4}-[A-Z]$")
CATEGORY = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
TIERS = ("standard", "silver", "gold", "platinum")
REQUIRED = (
    "doc_id",
    "title",
    "client_id",
    "region",
    "product_category",
    "policy_version",
    "effective_date",
    "source_doc",
)
OPTIONAL = ("expires_date", "return_rules")
HEADING = re.compile(r"^## +(.+?)\s*$", re.MULTILINE)


class DocumentRejected(ValueError):
    """A document that cannot be ingested: where it came from and which rule it broke."""

    def __init__(self, source: str, rule: str, reason: str) -> None:
        super().__init__(f"{source}: {reason} [{rule}]")
        self.source = source
        """The file, or ``tenant/doc_id`` for a document sent over gRPC."""
        self.rule = rule
        """Stable rule id, e.g. ``front_matter.missing_field``."""
        self.reason = reason
        """What is wrong, in words."""


@dataclass(frozen=True, slots=True)
class ReturnRules:
    """The structured return window of a document (its prose states the same figures)."""

    window_days: int
    """Days to return an item, from delivery."""
    tier_extra_days: Mapping[str, int] = field(default_factory=dict)
    """Extra days per tier name."""
    sku_days: Mapping[str, int] = field(default_factory=dict)
    """SKUs whose window differs from ``window_days``."""
    non_returnable_skus: tuple[str, ...] = ()
    """SKUs that cannot be returned (defects aside)."""


@dataclass(frozen=True, slots=True)
class PolicyDocument:
    """One accepted policy document."""

    tenant_id: str
    """The client company it belongs to."""
    doc_id: str
    """Unique within the tenant."""
    title: str
    """Title."""
    region: str
    """``""`` (everywhere), a country (``US``) or a region (``US-CA``)."""
    product_category: str
    """``""`` (every category) or one category."""
    policy_version: str
    """The client's version label, e.g. ``2026.3``."""
    effective: datetime
    """In force from (UTC)."""
    expires: datetime | None
    """Not in force from this time on; None when open-ended."""
    source_doc: str
    """The client's own reference of the document."""
    body: str
    """Markdown; ``## `` headings delimit sections."""
    return_rules: ReturnRules | None = None
    """Structured return rules, for documents that define a window."""

    @property
    def key(self) -> tuple[str, str]:
        """(tenant, doc_id): unique in a knowledge base."""
        return (self.tenant_id, self.doc_id)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready record (the version's documents file)."""
        record = asdict(self)
        record["effective"] = self.effective.isoformat()
        record["expires"] = self.expires.isoformat() if self.expires else None
        if self.return_rules is not None:
            record["return_rules"]["non_returnable_skus"] = list(
                self.return_rules.non_returnable_skus
            )
        return record

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> PolicyDocument:
        """The inverse of :meth:`to_json`."""
        rules = record.get("return_rules")
        return cls(
            tenant_id=record["tenant_id"],
            doc_id=record["doc_id"],
            title=record["title"],
            region=record["region"],
            product_category=record["product_category"],
            policy_version=record["policy_version"],
            effective=datetime.fromisoformat(record["effective"]),
            expires=datetime.fromisoformat(record["expires"]) if record["expires"] else None,
            source_doc=record["source_doc"],
            body=record["body"],
            return_rules=None
            if rules is None
            else ReturnRules(
                window_days=rules["window_days"],
                tier_extra_days=dict(rules["tier_extra_days"]),
                sku_days=dict(rules["sku_days"]),
                non_returnable_skus=tuple(rules["non_returnable_skus"]),
            ),
        )

    @property
    def digest(self) -> str:
        """Changes with any field: a document whose digest is unchanged is not re-chunked."""
        text = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def in_force(self, at: datetime) -> bool:
        """Whether the document applies at ``at``."""
        return self.effective <= at and (self.expires is None or at < self.expires)


def _moment(value: object, *, source: str, name: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise DocumentRejected(
                source, "front_matter.invalid_date", f"{name} is not an ISO date: {value!r}"
            ) from None
    else:
        raise DocumentRejected(source, "front_matter.invalid_date", f"{name} is not a date")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _text(meta: Mapping[str, Any], name: str, *, source: str) -> str:
    value = meta[name]
    if value is None:
        return ""
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise DocumentRejected(source, "front_matter.invalid_field", f"{name} must be text")
    return str(value).strip()


def _rules(raw: object, *, source: str) -> ReturnRules:
    def bad(reason: str) -> DocumentRejected:
        return DocumentRejected(source, "front_matter.invalid_return_rules", reason)

    if not isinstance(raw, Mapping):
        raise bad("return_rules must be a mapping")
    unknown = set(raw) - {"window_days", "tier_extra_days", "sku_days", "non_returnable_skus"}
    if unknown:
        raise bad(f"return_rules has unknown keys: {', '.join(sorted(map(str, unknown)))}")

    def days(value: object, what: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 3650:
            raise bad(f"{what} must be a whole number of days, 0..3650")
        return value

    window = days(raw.get("window_days"), "window_days")
    tiers = raw.get("tier_extra_days") or {}
    skus = raw.get("sku_days") or {}
    blocked = raw.get("non_returnable_skus") or []
    if not isinstance(tiers, Mapping) or not isinstance(skus, Mapping):
        raise bad("tier_extra_days and sku_days must be mappings")
    if not isinstance(blocked, list):
        raise bad("non_returnable_skus must be a list")
    for tier in tiers:
        if tier not in TIERS:
            raise bad(f"unknown tier {tier!r} (known: {', '.join(TIERS)})")
    for sku in (*skus, *blocked):
        if not isinstance(sku, str) or not SKU.match(sku):
            raise bad(f"{sku!r} is not a SKU like SKU-9942-B")
    return ReturnRules(
        window_days=window,
        tier_extra_days={str(t): days(d, f"tier_extra_days.{t}") for t, d in tiers.items()},
        sku_days={str(s): days(d, f"sku_days.{s}") for s, d in skus.items()},
        non_returnable_skus=tuple(blocked),
    )


def check_body(body: str, *, source: str) -> None:
    """Size, at least one ``## `` section, unique headings."""
    from retrieval.chunking import slug  # the chunk ids the headings become

    if len(body.encode()) > MAX_DOCUMENT_BYTES:
        raise DocumentRejected(
            source,
            "document.oversize",
            f"body is {len(body.encode())} bytes; the limit is {MAX_DOCUMENT_BYTES}",
        )
    headings = HEADING.findall(body)
    if not headings:
        raise DocumentRejected(source, "document.no_sections", "no '## ' section headings")
    seen: dict[str, str] = {}
    for heading in headings:
        key = slug(heading)
        if not key:
            raise DocumentRejected(
                source, "document.empty_heading", f"heading {heading!r} has no letters or digits"
            )
        if key in seen:
            raise DocumentRejected(
                source,
                "document.duplicate_heading",
                f"headings {seen[key]!r} and {heading!r} give the same section id {key!r}",
            )
        seen[key] = heading


def build(
    meta: Mapping[str, Any], body: str, *, source: str, tenants: Collection[str]
) -> PolicyDocument:
    """Check front-matter fields and body; a PolicyDocument or DocumentRejected."""
    missing = [name for name in REQUIRED if name not in meta]
    if missing:
        raise DocumentRejected(
            source, "front_matter.missing_field", f"front matter lacks {', '.join(missing)}"
        )
    unknown = sorted(set(map(str, meta)) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise DocumentRejected(
            source, "front_matter.unknown_field", f"unknown front-matter fields: {unknown}"
        )
    tenant = _text(meta, "client_id", source=source)
    if tenant not in tenants:
        raise DocumentRejected(
            source, "client.unknown", f"client_id {tenant!r} is not a client of this platform"
        )
    doc_id = _text(meta, "doc_id", source=source)
    if not DOC_ID.match(doc_id):
        raise DocumentRejected(
            source, "front_matter.invalid_doc_id", f"doc_id {doc_id!r} must match {DOC_ID.pattern}"
        )
    region = _text(meta, "region", source=source)
    if not REGION.match(region):
        raise DocumentRejected(
            source, "front_matter.invalid_region", f"region {region!r} is not like US or US-CA"
        )
    category = _text(meta, "product_category", source=source)
    if category and not CATEGORY.match(category):
        raise DocumentRejected(
            source, "front_matter.invalid_category", f"product_category {category!r} is invalid"
        )
    title = _text(meta, "title", source=source)
    version = _text(meta, "policy_version", source=source)
    reference = _text(meta, "source_doc", source=source)
    for name, value, limit in (("title", title, 200), ("policy_version", version, 32)):
        if not value or len(value) > limit:
            raise DocumentRejected(
                source, "front_matter.invalid_field", f"{name} must be 1..{limit} characters"
            )
    if not reference or len(reference) > 120:
        raise DocumentRejected(
            source, "front_matter.invalid_field", "source_doc must be 1..120 characters"
        )
    effective = _moment(meta["effective_date"], source=source, name="effective_date")
    expires = (
        _moment(meta["expires_date"], source=source, name="expires_date")
        if meta.get("expires_date")
        else None
    )
    if expires is not None and expires <= effective:
        raise DocumentRejected(
            source, "front_matter.invalid_date", "expires_date must be after effective_date"
        )
    rules = _rules(meta["return_rules"], source=source) if meta.get("return_rules") else None
    check_body(body, source=source)
    return PolicyDocument(
        tenant_id=tenant,
        doc_id=doc_id,
        title=title,
        region=region,
        product_category=category,
        policy_version=version,
        effective=effective,
        expires=expires,
        source_doc=reference,
        body=body.strip() + "\n",
        return_rules=rules,
    )


def parse_markdown(text: str, *, source: str, tenants: Collection[str]) -> PolicyDocument:
    """A Markdown file with front matter between ``---`` lines."""
    if len(text.encode()) > MAX_DOCUMENT_BYTES + 4096:
        raise DocumentRejected(
            source, "document.oversize", f"file is larger than {MAX_DOCUMENT_BYTES} bytes"
        )
    match = re.match(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*\r?\n(.*)\Z", text, re.DOTALL)
    if match is None:
        raise DocumentRejected(
            source, "front_matter.missing", "no front matter between '---' lines at the top"
        )
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        raise DocumentRejected(
            source, "front_matter.invalid_yaml", f"front matter is not YAML ({exc})"
        ) from None
    if not isinstance(meta, dict):
        raise DocumentRejected(source, "front_matter.invalid_yaml", "front matter is not a mapping")
    return build(meta, match.group(2), source=source, tenants=tenants)


def from_proto(
    tenant_id: str, document: pb.Document, *, tenants: Collection[str]
) -> PolicyDocument:
    """A document sent over gRPC (already validated against the contract)."""
    meta: dict[str, Any] = {
        "doc_id": document.doc_id,
        "title": document.title,
        "client_id": tenant_id,
        "region": document.region,
        "product_category": document.product_category,
        "policy_version": document.policy_version,
        "effective_date": document.effective_time.ToDatetime(tzinfo=UTC),
        "source_doc": document.source_doc,
    }
    if document.HasField("expire_time"):
        meta["expires_date"] = document.expire_time.ToDatetime(tzinfo=UTC)
    if document.HasField("return_rules"):
        rules = document.return_rules
        meta["return_rules"] = {
            "window_days": rules.window_days,
            "tier_extra_days": dict(rules.tier_extra_days),
            "sku_days": dict(rules.sku_days),
            "non_returnable_skus": list(rules.non_returnable_skus),
        }
    return build(meta, document.body, source=f"{tenant_id}/{document.doc_id}", tenants=tenants)


@dataclass(frozen=True, slots=True)
class Loaded:
    """What a directory held: the accepted documents and the rejected files."""

    documents: list[PolicyDocument]
    rejected: list[DocumentRejected]


def load_dir(root: Path, *, tenants: Collection[str]) -> Loaded:
    """Every ``*.md`` under ``root`` (README.md files excepted), sorted by path.

    Duplicate (tenant, doc_id) pairs reject both files: which one was meant is unknown.
    """
    accepted: dict[tuple[str, str], tuple[PolicyDocument, str]] = {}
    rejected: list[DocumentRejected] = []
    duplicates: set[tuple[str, str]] = set()
    for path in _markdown_files(root):
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            rejected.append(DocumentRejected(source, "document.unreadable", str(exc)))
            continue
        try:
            document = parse_markdown(text, source=source, tenants=tenants)
        except DocumentRejected as exc:
            rejected.append(exc)
            continue
        if document.key in accepted:
            duplicates.add(document.key)
            first = accepted[document.key][1]
            rejected.append(
                DocumentRejected(
                    source, "document.duplicate_id", f"doc_id {document.doc_id!r} is also {first}"
                )
            )
            continue
        accepted[document.key] = (document, source)
    for key in duplicates:
        _, source = accepted.pop(key)
        rejected.append(
            DocumentRejected(source, "document.duplicate_id", f"doc_id {key[1]!r} is not unique")
        )
    return Loaded([doc for doc, _ in accepted.values()], rejected)


def _markdown_files(root: Path) -> Iterable[Path]:
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*.md") if p.name.lower() != "readme.md")
