"""The ops page in real headless Chromium (Debian's package, driven by Playwright).

Against the real mesh and the real ``python -m gateway.edge`` process started by the
launcher, after turns through the edge and one priced charge: the charts must draw the
figures of GET /v1/ops/summary, series for series and label for label. A second test
points an edge at sources that do not answer: the page must say so, not draw zeros.
Screenshots go to artifacts/edge/ (as the chat page's).
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from cli.launcher import REPO_ROOT, Mesh
from tests.gateway.edge.conftest import StartEdge
from tests.gateway.edge.mesh_fixtures import edge_mesh
from tests.gateway.edge.ops_traffic import OPS_COST_MICROS, OPS_TEAM, Traffic, send_traffic

pytestmark = pytest.mark.mesh

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking switches Chromium tries to reach the outside at
# start and, where it cannot, its connections are refused.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = REPO_ROOT / "artifacts" / "edge"
DESKTOP = {"width": 1200, "height": 900}
PHONE = {"width": 390, "height": 844}
LOAD_TIMEOUT_MS = 60_000
"""The summary scrapes nine services and asks the ledger: generous on shared cores."""


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium: a failure in CI when missing, a skip elsewhere."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: run `bash scripts/setup.sh test` (40-browser.sh)"
        if _in_ci():
            pytest.fail(message)
        pytest.skip(message)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    """Headless Chromium."""
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    """Every service and the edge."""
    with edge_mesh(tmp_path_factory.mktemp("ops-page-mesh")) as started:
        yield started


@pytest.fixture(scope="module")
def traffic(platform: Mesh) -> Traffic:
    """Turns and one priced charge, before the page is opened."""
    assert platform.edge_url is not None
    with httpx.Client(base_url=platform.edge_url, timeout=60) as client:
        return send_traffic(platform, client)


async def open_ops(
    browser: Browser, url: str, *, viewport: Any = DESKTOP
) -> tuple[Page, dict[str, Any]]:
    """The ops page, loaded and drawn, with every request it made on ``page.seen``; and the
    summary it drew (the very answer it read: asking again would change the figures, since
    the summary's own calls are counted too)."""
    page = await browser.new_page(viewport=viewport, locale="en-US")
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    page.seen = seen  # type: ignore[attr-defined]
    async with page.expect_response(
        lambda r: "/v1/ops/summary" in r.url, timeout=LOAD_TIMEOUT_MS
    ) as answered:
        await page.goto(url)
    response = await answered.value
    await expect(page.locator("body")).to_have_attribute(
        "data-loaded", "true", timeout=LOAD_TIMEOUT_MS
    )
    body: dict[str, Any] = await response.json()
    return page, body


def only_same_origin(page: Page, origin: str) -> None:
    """Nothing was fetched from anywhere but the edge."""
    seen: list[str] = page.seen  # type: ignore[attr-defined]
    assert seen
    outside = [u for u in seen if not u.startswith(origin) and not u.startswith("data:")]
    assert not outside, outside


async def series_of(page: Page, chart: str) -> dict[str, list[tuple[str, float]]]:
    """Each series of an SVG chart: its name and its bars as (category, value)."""
    found: dict[str, list[tuple[str, float]]] = await page.evaluate(
        """(chart) => Object.fromEntries(
            [...document.querySelectorAll(`svg[data-chart="${chart}"] g.series`)].map((g) => [
                g.dataset.series,
                [...g.querySelectorAll("rect.bar")].map(
                    (r) => [r.dataset.category, Number(r.dataset.value)]),
            ]))""",
        chart,
    )
    return {name: [(c, v) for c, v in bars] for name, bars in found.items()}


async def test_the_charts_draw_the_mesh_figures(
    platform: Mesh, traffic: Traffic, browser: Browser
) -> None:
    assert platform.ops_url is not None
    assert platform.edge_url is not None
    page, body = await open_ops(browser, platform.ops_url)

    cost = body["cost"]
    drawn = await series_of(page, "cost")
    assert len(drawn) == len(cost["series"]) == 3
    ops_series = f"acme-retail · {OPS_TEAM}"
    assert set(drawn) == {"acme-retail · support", "globex-home · support", ops_series}
    assert sum(v for _, v in drawn[ops_series]) == OPS_COST_MICROS
    assert [c for c, _ in drawn[ops_series]] == cost["days"]
    requests = await series_of(page, "requests")
    assert sum(v for _, v in requests["acme-retail · support"]) == traffic.turns["acme-retail"]
    assert sum(v for _, v in requests["globex-home · support"]) == traffic.turns["globex-home"]
    await expect(page.locator('svg[data-chart="cost"] .legend')).to_contain_text(ops_series)

    turns = sum(traffic.turns.values())
    await expect(page.locator('[data-headline="escalation"]')).to_contain_text(
        f"{traffic.escalations} of {turns} turns handed over to a person"
    )
    assert await series_of(page, "escalation") == {"hand-overs": [("asked", 1.0)]}

    latency = await series_of(page, "latency")
    assert list(latency) == ["p50", "p95", "p99"]
    rows = body["latency"]["rows"]
    for name in latency:
        assert [c for c, _ in latency[name]] == [f"{r['service']} · {r['method']}" for r in rows]
        assert [v for _, v in latency[name]] == [r[f"{name}Ms"] for r in rows]
    await expect(page.locator('svg[data-chart="latency"]')).to_contain_text("gateway · Converse")

    confidence = await series_of(page, "confidence")
    (bars,) = confidence.values()
    assert sum(v for _, v in bars) == body["routerConfidence"]["count"] >= turns

    caches = body["caches"]
    if caches["state"] == "ok":
        drawn_caches = await series_of(page, "caches")
        assert list(drawn_caches) == ["hits", "misses"]
        assert [v for _, v in drawn_caches["hits"]] == [c["hits"] for c in caches["caches"]]
    else:
        await expect(page.locator('[data-panel="caches"] .empty')).to_contain_text(
            "No cache data yet"
        )
    await expect(page.locator('.ops-source[data-ok="false"]')).to_have_count(0)
    await page.screenshot(path=ARTIFACTS / "ops-desktop.png", full_page=True)

    await page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    await page.screenshot(path=ARTIFACTS / "ops-phone.png", full_page=True)
    overflow = await page.evaluate("() => document.documentElement.scrollWidth - innerWidth")
    assert overflow <= 0, "the page scrolls sideways on a phone"

    # Another period: the page asks again and draws as many days.
    await page.get_by_role("combobox", name="Costs over").select_option("14")
    await expect(
        page.locator('svg[data-chart="cost"] g.series').first.locator("rect")
    ).to_have_count(14, timeout=LOAD_TIMEOUT_MS)
    only_same_origin(page, platform.edge_url.rstrip("/"))


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_missing_sources_are_shown_as_missing(
    start_edge: StartEdge, browser: Browser, demo_file: Path
) -> None:
    edge = await start_edge(
        demo=demo_file,
        ops_metrics=(("router", f"127.0.0.1:{_closed_port()}"),),
        ops_ledger=f"127.0.0.1:{_closed_port()}",
        ops_tenants=("acme-retail",),
    )
    page, body = await open_ops(browser, edge.url + "/ops")
    assert body["cost"]["ok"] is False
    await expect(page.locator('.ops-source[data-ok="false"]')).to_have_count(2)
    await expect(page.locator(".ops-source").first).to_have_text("router: not reachable")
    await expect(page.locator('[data-panel="cost"] .empty')).to_have_attribute(
        "data-state", "failed"
    )
    await expect(page.locator('[data-panel="caches"] .empty')).to_contain_text("No cache data yet")
    # "None yet" speaks only for the sources that answered.
    await expect(page.locator('[data-panel="latency"] .empty')).to_have_text(
        "No calls served yet. (counting only the sources that answered; see above)"
    )
    assert await page.locator("svg.chart").count() == 0  # nothing drawn from no data
    await expect(page.get_by_role("status")).to_contain_text("2 source(s) missing")
    await page.screenshot(path=ARTIFACTS / "ops-sources-missing.png", full_page=True)
    only_same_origin(page, edge.url)
