"""Policy documents: accepted whole or rejected with the file and the rule; the shipped
knowledge base parses and agrees with the orders demo data."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orders.seed import CATALOG, PROFILES
from retrieval.chunking import sections
from retrieval.documents import (
    MAX_DOCUMENT_BYTES,
    DocumentRejected,
    load_dir,
    parse_markdown,
)
from runtime import paths
from tests.retrieval.conftest import TENANTS, document_text

KB = paths.data_dir("kb")


def _rule_of(text: str) -> str:
    with pytest.raises(DocumentRejected) as raised:
        parse_markdown(text, source="bad.md", tenants=TENANTS)
    assert raised.value.source == "bad.md"
    return raised.value.rule


def test_a_valid_document_keeps_every_field() -> None:
    text = document_text(
        doc_id="acme-returns-x",
        region="US-CA",
        expires="2027-01-31",
        rules="return_rules:\n  window_days: 30\n  tier_extra_days: {gold: 15}\n"
        "  sku_days: {SKU-9942-B: 14}\n  non_returnable_skus: [SKU-2210-B]",
    )
    doc = parse_markdown(text, source="a.md", tenants=TENANTS)
    assert (doc.tenant_id, doc.doc_id, doc.region, doc.product_category) == (
        "acme-retail",
        "acme-returns-x",
        "US-CA",
        "electronics",
    )
    assert doc.effective.isoformat() == "2026-01-01T00:00:00+00:00"
    assert doc.expires is not None
    assert doc.expires.year == 2027
    assert doc.return_rules is not None
    assert doc.return_rules.sku_days == {"SKU-9942-B": 14}
    assert doc.return_rules.non_returnable_skus == ("SKU-2210-B",)


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("# No front matter\n\n## A\ntext\n", "front_matter.missing"),
        ("---\n: [unclosed\n---\n## A\ntext\n", "front_matter.invalid_yaml"),
        (
            document_text(doc_id="acme-x").replace("source_doc: REF-ACME-X\n", ""),
            "front_matter.missing_field",
        ),
        (document_text(doc_id="acme-x", tenant="initech"), "client.unknown"),
        (document_text(doc_id="Bad Id"), "front_matter.invalid_doc_id"),
        (document_text(doc_id="acme-x", region="California"), "front_matter.invalid_region"),
        (
            document_text(doc_id="acme-x", effective="2026-05-01", expires="2026-04-01"),
            "front_matter.invalid_date",
        ),
        (
            document_text(doc_id="acme-x", rules="return_rules:\n  window_days: -3"),
            "front_matter.invalid_return_rules",
        ),
        (
            document_text(
                doc_id="acme-x", rules="return_rules:\n  window_days: 3\n  sku_days: {X-1: 4}"
            ),
            "front_matter.invalid_return_rules",
        ),
        (
            document_text(doc_id="acme-x").replace("## Return window", "Return window"),
            "document.no_sections",
        ),
        (
            document_text(doc_id="acme-x", sections={"Fees": "a", "FEES!": "b"}),
            "document.duplicate_heading",
        ),
        (
            document_text(doc_id="acme-x", sections={"A": "x" * (MAX_DOCUMENT_BYTES + 10)}),
            "document.oversize",
        ),
        (document_text(doc_id="acme-x") + "\n", None),
    ],
)
def test_each_broken_rule_is_named(text: str, rule: str | None) -> None:
    if rule is None:
        parse_markdown(text, source="ok.md", tenants=TENANTS)
        return
    assert _rule_of(text) == rule


def test_a_duplicate_doc_id_rejects_both_files(tmp_path: Path) -> None:
    (tmp_path / "one.md").write_text(document_text(doc_id="acme-dup"))
    (tmp_path / "two.md").write_text(document_text(doc_id="acme-dup"))
    (tmp_path / "ok.md").write_text(document_text(doc_id="acme-fine"))
    (tmp_path / "README.md").write_text("not a policy")
    loaded = load_dir(tmp_path, tenants=TENANTS)
    assert [d.doc_id for d in loaded.documents] == ["acme-fine"]
    assert sorted(Path(r.source).name for r in loaded.rejected) == ["one.md", "two.md"]
    assert {r.rule for r in loaded.rejected} == {"document.duplicate_id"}


# -- the shipped knowledge base -----------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> list:  # type: ignore[type-arg]
    loaded = load_dir(KB, tenants=TENANTS)
    assert loaded.rejected == []
    return loaded.documents


def test_the_shipped_kb_has_both_clients_and_enough_documents(shipped: list) -> None:  # type: ignore[type-arg]
    per_tenant = {t: [d for d in shipped if d.tenant_id == t] for t in TENANTS}
    assert len(shipped) >= 40
    assert all(len(docs) >= 20 for docs in per_tenant.values())
    for docs in per_tenant.values():
        assert len({d.product_category for d in docs}) >= 4  # "" and several categories
        assert len({d.region for d in docs}) >= 3  # everywhere, a country, a region
        assert any(d.expires is not None for d in docs)  # time-limited or superseded
        assert any(d.return_rules is not None for d in docs)


def test_the_shipped_kb_names_only_what_the_orders_data_has(shipped: list) -> None:  # type: ignore[type-arg]
    skus = {f"{stem}-{v}" for stem, _, _, _ in CATALOG for v in "AB"}
    categories = {category for _, _, category, _ in CATALOG}
    for doc in shipped:
        regions = set(PROFILES[doc.tenant_id].regions)
        countries = {r.split("-")[0] for r in regions}
        assert doc.region in {"", *countries, *regions}, doc.doc_id
        assert doc.product_category in {"", *categories}, doc.doc_id
        named = set(re.findall(r"SKU-\d{4}-[A-Z]", doc.body))
        assert named <= skus, (doc.doc_id, named - skus)
        other = "EUR" if PROFILES[doc.tenant_id].currency == "USD" else "USD"
        assert other not in doc.body, doc.doc_id


def test_every_return_rule_figure_is_stated_in_the_prose(shipped: list) -> None:  # type: ignore[type-arg]
    for doc in shipped:
        rules = doc.return_rules
        if rules is None:
            continue
        prose = " ".join(text for _, text in sections(doc.body))
        figures = {rules.window_days, *rules.tier_extra_days.values(), *rules.sku_days.values()}
        for days in figures - {0}:
            assert re.search(rf"(?<!\d){days}(?!\d)", prose), (doc.doc_id, days)
        for sku in (*rules.sku_days, *rules.non_returnable_skus):
            assert sku in prose, (doc.doc_id, sku)
