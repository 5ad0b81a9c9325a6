"""The chat page in real headless Chromium (Debian's package, driven by Playwright).

The first tests run against the real mesh and the real ``python -m gateway.edge``
process started by the launcher. The confirmation tests script the gateway's
answers with a stand-in behind the edge: a real grpc.aio GatewayService
(tests/edge/standin.py) speaking the real protocol, with the edge served by
uvicorn in this process.
Screenshots go to artifacts/edge/.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import (
    Browser,
    Locator,
    Page,
    Route,
    ViewportSize,
    async_playwright,
    expect,
)
from waybill.common.v1 import conversation_pb2
from waybill.gateway.v1 import gateway_service_pb2 as pb

from cli.launcher import REPO_ROOT, Mesh
from tests.gateway.edge.conftest import StartEdge
from tests.gateway.edge.mesh_fixtures import edge_mesh
from tests.gateway.edge.standin import ACTION_ID
from tests.support.keys import token_issuer

pytestmark = pytest.mark.mesh

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking switches Chromium tries to reach the
# outside at start and, where it cannot, its connections are refused.
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
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1200, "height": 820}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    """Every service and the edge."""
    with edge_mesh(tmp_path_factory.mktemp("page-mesh")) as started:
        yield started


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium; the test fails (not skips) when the setup step did not install it."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/setup.sh test` (40-browser.sh)")
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


async def open_page(browser: Browser, url: str, *, viewport: ViewportSize = DESKTOP) -> Page:
    """The chat page, loaded, with every request it makes recorded on ``page.seen``."""
    page = await browser.new_page(viewport=viewport, locale="en-US")
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    page.seen = seen  # type: ignore[attr-defined]
    await page.goto(url)
    await expect(page.get_by_role("status").first).to_have_text("Connected")
    return page


async def pick(page: Page, user_id: str) -> None:
    """Choose a customer and wait for their orders."""
    customer = page.get_by_role("combobox", name="Customer")
    await expect(customer).to_be_enabled()
    await customer.select_option(user_id)
    await expect(page.locator("#orders-note")).not_to_have_text("Loading…")


async def ask(page: Page, text: str) -> None:
    """Type a message and send it with Enter, as a keyboard user does."""
    box = page.get_by_role("textbox", name="Message")
    await box.fill(text)
    await box.press("Enter")


def replies(page: Page) -> Locator:
    """Finished assistant messages."""
    return page.locator(".msg.bot[aria-busy=false]")


def only_same_origin(page: Page, origin: str) -> None:
    """Nothing was fetched from anywhere but the edge."""
    seen: list[str] = page.seen  # type: ignore[attr-defined]
    assert seen
    outside = [u for u in seen if not u.startswith(origin) and not u.startswith("data:")]
    assert not outside, outside


async def test_where_is_my_order(platform: Mesh, browser: Browser) -> None:
    assert platform.edge_url is not None
    page = await open_page(browser, platform.edge_url)
    await expect(page.get_by_role("combobox", name="Company")).to_have_value("acme-retail")
    await pick(page, "acme-0001")
    order = page.locator(".order").first
    badge = (await order.locator(".badge").inner_text()).strip()
    awb = (await order.locator(".order-ids").inner_text()).split("·")[1].strip()
    assert re.fullmatch(r"WB\d{10}", awb)

    await ask(page, "where is my order?")
    reply = replies(page).last
    await expect(reply).to_contain_text(awb)
    text = (await reply.locator(".text").inner_text()).lower()
    assert badge.lower() in text, (badge, text)  # the status the answer states is the panel's
    await expect(reply.locator(".tool")).to_contain_text("Looked up the order status")
    await expect(page.get_by_role("textbox", name="Message")).to_be_focused()
    await page.screenshot(path=ARTIFACTS / "chat-desktop.png", full_page=True)

    await page.set_viewport_size(PHONE)
    await page.screenshot(path=ARTIFACTS / "chat-phone.png", full_page=True)
    overflow = await page.evaluate("() => document.documentElement.scrollWidth - innerWidth")
    assert overflow <= 0, "the page scrolls sideways on a phone"
    only_same_origin(page, platform.edge_url.rstrip("/"))


async def test_gateway_error_is_readable(platform: Mesh, browser: Browser) -> None:
    assert platform.edge_url is not None
    page = await open_page(browser, platform.edge_url, viewport=PHONE)
    await pick(page, "acme-0002")
    await ask(page, "I want a refund for order ORD-99999999")
    alert = replies(page).last.get_by_role("alert")
    await expect(alert).to_contain_text("no order with this id")
    await expect(alert).to_contain_text("NOT_FOUND")
    await expect(page.get_by_role("textbox", name="Message")).to_be_focused()
    await page.screenshot(path=ARTIFACTS / "chat-error-phone.png", full_page=True)


async def test_a_policy_answer_lists_its_sources(platform: Mesh, browser: Browser) -> None:
    assert platform.edge_url is not None
    page = await open_page(browser, platform.edge_url)
    await pick(page, "acme-0001")
    await ask(page, "Can I return SKU-9942-B after three weeks?")
    reply = replies(page).last
    await expect(reply.locator(".text")).to_contain_text("[1]")
    sources = reply.get_by_role("listitem")
    await expect(sources.first).to_contain_text("USB-C chargers SKU-9942-A and SKU-9942-B")
    await expect(sources.first.locator(".source-id")).to_have_text(
        "acme-returns-electronics-us#usb-c-chargers-sku-9942-a-and-sku-9942-b"
    )
    await expect(reply.locator(".tool").first).to_have_text(
        re.compile(r"^Checked the return window · ")
    )
    await page.screenshot(path=ARTIFACTS / "chat-policy.png", full_page=True)
    only_same_origin(page, platform.edge_url.rstrip("/"))


async def test_an_agent_claims_a_conversation_from_the_queue_and_resolves_it(
    platform: Mesh, browser: Browser
) -> None:
    assert platform.edge_url is not None
    page = await open_page(browser, platform.edge_url)
    await pick(page, "acme-0003")
    await ask(page, "I want to speak to a human agent please")
    reply = replies(page).last
    await expect(reply.locator(".escalation")).to_contain_text("Handed over to a person: ticket")
    ticket_id = re.search(r"TCK-[0-9A-F]{16}", await reply.inner_text())
    assert ticket_id is not None
    # The new ticket is in the agents' queue, open, with its summary.
    queue = page.get_by_role("list", name="Hand-over tickets")
    ticket = queue.locator(f'[data-ticket-id="{ticket_id[0]}"]')
    await expect(ticket).to_have_attribute("data-state", "OPEN")
    await ticket.get_by_text("Summary").click()
    await expect(ticket.locator(".ticket-summary")).not_to_be_empty()
    await page.get_by_role("textbox", name="Agent id").fill("agent-page")
    await ticket.get_by_role("button", name=f"Claim {ticket_id[0]}").click()
    await expect(ticket).to_have_attribute("data-state", "CLAIMED")
    await expect(ticket.locator(".ticket-meta")).to_contain_text("with agent-page")

    # The conversation is handed over: the assistant steps aside.
    before = await replies(page).count()
    await ask(page, "where is my order?")
    await expect(replies(page)).to_have_count(before + 1)
    await expect(replies(page).last.locator(".escalation")).to_have_text(
        "Handed over: a person from support has this conversation."
    )
    await expect(replies(page).last.locator(".tool")).to_have_count(0)
    await page.screenshot(path=ARTIFACTS / "agents-queue.png", full_page=True)

    await ticket.get_by_role("textbox", name=f"Resolution of {ticket_id[0]}").fill("Called back.")
    await ticket.get_by_role("button", name="Resolve").click()
    await expect(ticket).to_have_attribute("data-state", "RESOLVED")
    # Resolved: the assistant answers the conversation again.
    before = await replies(page).count()
    await ask(page, "where is my order?")
    await expect(replies(page)).to_have_count(before + 1)
    await expect(replies(page).last.locator(".text")).not_to_contain_text("support team")
    await expect(replies(page).last.locator(".escalation")).to_have_count(0)
    only_same_origin(page, platform.edge_url.rstrip("/"))


async def test_a_company_picked_while_the_first_list_loads_gets_its_own_customers(
    platform: Mesh, browser: Browser
) -> None:
    """The first customer list answers last: it must not fill the list of the company
    picked meanwhile."""
    assert platform.edge_url is not None
    page = await browser.new_page(viewport=DESKTOP, locale="en-US")
    second_done = asyncio.Event()
    calls: list[str] = []

    async def customers(route: Route) -> None:
        calls.append(route.request.url)
        if len(calls) == 1:
            await second_done.wait()  # hold the first company's answer back
            await route.continue_()
            return
        await route.continue_()
        second_done.set()

    await page.route(re.compile(r".*/v1/customers\?.*"), customers)
    await page.goto(platform.edge_url)
    await expect(page.get_by_role("status").first).to_have_text("Connected")
    company = page.get_by_role("combobox", name="Company")
    customer = page.get_by_role("combobox", name="Customer")
    await company.select_option("globex-home")
    await expect(customer).to_have_value(re.compile("^globex-"))
    # Both loads have finished, the first (Acme's) one last: the list stays Globex's.
    await expect(customer).to_have_attribute("data-settled", "2")
    assert len(calls) == 2
    options = await customer.locator("option").all_inner_texts()
    assert options
    assert all("globex-" in o for o in options), options
    await expect(customer).to_have_value(re.compile("^globex-"))


async def test_keyboard_reaches_the_message_box(platform: Mesh, browser: Browser) -> None:
    assert platform.edge_url is not None
    page = await open_page(browser, platform.edge_url)
    await page.get_by_role("combobox", name="Company").select_option("globex-home")
    await expect(page.get_by_role("combobox", name="Customer")).to_have_value(
        re.compile("^globex-")
    )
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="Skip to the message box")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("textbox", name="Message")).to_be_focused()
    await page.keyboard.type("when will my package arrive?")
    await page.keyboard.press("Enter")
    await expect(replies(page).last).not_to_be_empty()
    assert "globex" in await page.locator(".msg.system").inner_text()


async def test_confirmation_request_renders_buttons(
    start_edge: StartEdge, browser: Browser, demo_file: Path
) -> None:
    edge = await start_edge(demo=demo_file)
    page = await open_page(browser, edge.url + "/")
    await pick(page, "acme-0002")
    await ask(page, "confirm")
    confirm = page.get_by_role("button", name="Confirm")
    cancel = page.get_by_role("button", name="Cancel")
    await expect(confirm).to_be_visible()
    await expect(cancel).to_be_visible()
    card = page.get_by_role("group", name=re.compile("Refund 12.34 USD"))
    await expect(card).to_contain_text("$12.34")
    await expect(confirm).to_be_focused()  # focus moves to the decision
    await page.screenshot(path=ARTIFACTS / "chat-confirmation.png", full_page=True)

    await page.keyboard.press("Enter")
    await expect(replies(page).last).to_contain_text("Refund confirmed: 12.34 USD.")
    await expect(confirm).to_be_disabled()
    await expect(cancel).to_be_disabled()
    seen = edge.gateway.last("ConfirmAction")
    request = seen.request
    assert isinstance(request, pb.ConfirmActionRequest)
    assert request.action_id == ACTION_ID
    assert request.decision == conversation_pb2.DECISION_CONFIRM
    assert request.user_id == "acme-0002"
    converse = edge.gateway.last("Converse").request
    assert isinstance(converse, pb.ConverseRequest)
    assert request.session_id == converse.session_id
    await expect(page.get_by_role("textbox", name="Message")).to_be_focused()
    only_same_origin(page, edge.url)


async def test_the_page_acts_as_the_customer_with_a_token_of_its_own(
    start_edge: StartEdge, browser: Browser, demo_file: Path, tmp_path: Path
) -> None:
    signer, verifier = token_issuer(tmp_path / "demo-keys")
    edge = await start_edge(demo=demo_file, signer=signer)
    page = await open_page(browser, edge.url + "/")
    await pick(page, "acme-0002")
    await ask(page, "where is my parcel?")
    await expect(replies(page)).to_have_count(1)  # the log starts afresh per customer
    turn = edge.gateway.last("Converse").metadata
    assert "x-api-key" not in turn
    principal = verifier.principal(turn["authorization"].removeprefix("Bearer "))
    assert (principal.tenant_id, principal.user_id) == ("acme-retail", "acme-0002")
    context = edge.gateway.last("GetCustomerContext").metadata
    assert context["authorization"] == turn["authorization"]  # one token per customer
    # The customer list is the tenant's: it still goes with the demo key.
    assert "x-api-key" in edge.gateway.last("ListCustomers").metadata
    await pick(page, "acme-0001")
    await ask(page, "and mine?")
    await expect(replies(page)).to_have_count(1)
    other = edge.gateway.last("Converse").metadata["authorization"].removeprefix("Bearer ")
    assert verifier.principal(other).user_id == "acme-0001"
    only_same_origin(page, edge.url)


async def test_cancel_declines_the_action(
    start_edge: StartEdge, browser: Browser, demo_file: Path
) -> None:
    edge = await start_edge(demo=demo_file)
    page = await open_page(browser, edge.url + "/", viewport=PHONE)
    await pick(page, "acme-0001")
    await ask(page, "confirm")
    await expect(page.get_by_role("button", name="Confirm")).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Cancel")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(replies(page).last).to_contain_text("no refund was made")
    request = edge.gateway.last("ConfirmAction").request
    assert isinstance(request, pb.ConfirmActionRequest)
    assert request.decision == conversation_pb2.DECISION_DECLINE


async def test_error_before_the_stream_is_readable(
    start_edge: StartEdge, browser: Browser, demo_file: Path
) -> None:
    edge = await start_edge(demo=demo_file)
    page = await open_page(browser, edge.url + "/")
    await pick(page, "acme-0001")
    await ask(page, "fail:RESOURCE_EXHAUSTED")
    alert = replies(page).last.get_by_role("alert")
    await expect(alert).to_contain_text("stand-in failure RESOURCE_EXHAUSTED")
    await ask(page, "midfail:UNAVAILABLE")
    alert = replies(page).last.get_by_role("alert")
    await expect(alert).to_contain_text("Sorry, something failed on our side.")
    await expect(alert).to_have_count(1)  # the turn_error, not repeated by the error event
