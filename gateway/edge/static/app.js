// The Waybill chat page: plain ES module, no build step, same-origin requests only.
// Talks to the REST edge: /healthz, /v1/customers, /v1/customers/{id}/context,
// POST /v1/sessions/{id}/turns and /confirmations (Server-Sent Events over fetch), and the
// agents' queue: GET /v1/tickets, POST /v1/tickets/{id}/claim and /resolve.
// A customer's own calls (turns, confirmations, their orders) carry a short-lived demo
// token for that customer (POST /v1/demo-token), so the gateway holds the page to them.

const TURN_TIMEOUT_S = "60";
const DEMO_TENANT_HEADER = "X-Waybill-Demo-Tenant";

const $ = (id) => document.getElementById(id);
const els = {
  status: $("service-status"),
  tenant: $("tenant"),
  customer: $("customer"),
  summary: $("customer-summary"),
  orders: $("orders"),
  ordersNote: $("orders-note"),
  log: $("log"),
  composer: $("composer"),
  message: $("message"),
  send: $("send"),
  newChat: $("new-chat"),
  chips: document.querySelectorAll(".chip"),
  tickets: $("tickets"),
  ticketsNote: $("tickets-note"),
  ticketsRefresh: $("tickets-refresh"),
  agentId: $("agent-id"),
};

const TOKEN_MARGIN_MS = 60_000;

const state = {
  demo: false,
  demoTokens: false,
  tokens: new Map(),
  tenant: "",
  customers: new Map(),
  userId: "",
  sessionId: "",
  busy: false,
  controller: null,
  customerLoads: 0,
  customerLoadsSettled: 0,
  ticketLoads: 0,
};

// ---------------------------------------------------------------- formatting

const TOOL_LABELS = {
  get_order_status: "Looked up the order status",
  get_eta: "Checked the delivery estimate",
  get_delivery_photo: "Fetched the delivery photo",
  list_active_orders: "Listed active orders",
  get_order: "Read the order's items",
  get_return_window: "Checked the return window",
  search_policy_kb: "Searched the policies",
  check_fraud_score: "Checked the fraud score",
  list_refunds: "Checked the refunds made",
  initiate_refund: "Made the refund",
  send_notification: "Sent the confirmation e-mail",
  escalate_to_human: "Opened a ticket for a person",
};

function enumLabel(value, prefix) {
  if (!value) return "";
  const words = String(value).replace(prefix, "").toLowerCase().replaceAll("_", " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function formatDate(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return date.toLocaleDateString(undefined, { weekday: "short", day: "numeric", month: "short" });
}

function formatMoney(money) {
  if (!money || !money.currencyCode) return "";
  const units = Number(money.minorUnits || "0");
  try {
    const format = new Intl.NumberFormat(undefined, { style: "currency", currency: money.currencyCode });
    const digits = format.resolvedOptions().maximumFractionDigits;
    return format.format(units / 10 ** digits);
  } catch {
    return `${units} (minor units) ${money.currencyCode}`;
  }
}

// A turn's cost is micro units (millionths) of the currency: shown to six places.
function formatCost(cost) {
  if (!cost || !cost.currencyCode) return "";
  const micros = Number(cost.microUnits || "0");
  try {
    return new Intl.NumberFormat(undefined, {
      style: "currency", currency: cost.currencyCode, minimumFractionDigits: 6, maximumFractionDigits: 6,
    }).format(micros / 1e6);
  } catch {
    return `${micros} micro ${cost.currencyCode}`;
  }
}

const BUDGET_WORDS = {
  BUDGET_STATE_OK: "within budget",
  BUDGET_STATE_SOFT_LIMIT: "over 80% of the monthly budget",
  BUDGET_STATE_HARD_LIMIT: "monthly budget used up",
};

function newSessionId() {
  const bytes = new Uint8Array(10);
  crypto.getRandomValues(bytes);
  return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// ---------------------------------------------------------------- HTTP

function headers(extra = {}) {
  const out = { Accept: "application/json", ...extra };
  if (state.demo && state.tenant) out[DEMO_TENANT_HEADER] = state.tenant;
  return out;
}

class EdgeError extends Error {
  constructor(body, httpStatus) {
    const error = (body && body.error) || {};
    super(error.message || `Request failed (HTTP ${httpStatus})`);
    this.status = error.status || `HTTP_${httpStatus}`;
    this.httpStatus = httpStatus;
  }
}

async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  return new EdgeError(body, response.status);
}

async function getJson(path, extra = {}) {
  const response = await fetch(path, { headers: headers(extra) });
  if (!response.ok) throw await errorFrom(response);
  return response.json();
}

// The Authorization header that acts as this customer only (none without demo tokens).
async function customerAuth(userId) {
  if (!state.demoTokens) return {};
  const key = `${state.tenant}/${userId}`;
  let entry = state.tokens.get(key);
  if (!entry || entry.expiresAt - Date.now() < TOKEN_MARGIN_MS) {
    const data = await postJson("/v1/demo-token", { userId });
    entry = { token: data.token, expiresAt: Date.parse(data.expireTime) };
    state.tokens.set(key, entry);
  }
  return { Authorization: `Bearer ${entry.token}` };
}

async function postJson(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: headers({ "Content-Type": "application/json" }),
    body: JSON.stringify(body),
  });
  if (!response.ok) throw await errorFrom(response);
  return response.json();
}

// Reads a text/event-stream body and calls onEvent(name, data) per event.
async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let split;
    while ((split = buffer.indexOf("\n\n")) !== -1) {
      const block = buffer.slice(0, split);
      buffer = buffer.slice(split + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onEvent(name, JSON.parse(data.join("\n")));
    }
  }
}

// ---------------------------------------------------------------- the log

function scrollLog() {
  els.log.scrollTop = els.log.scrollHeight;
}

function addSystem(text) {
  const node = el("p", "msg system", text);
  els.log.append(node);
  scrollLog();
  return node;
}

function addMine(text) {
  const node = el("div", "msg me");
  node.append(el("span", "who-said", "You"), el("div", "text", text));
  els.log.append(node);
  scrollLog();
}

// An assistant message that fills in as events arrive.
class Reply {
  constructor() {
    this.node = el("div", "msg bot");
    this.node.setAttribute("aria-busy", "true");
    this.tools = el("div", "tools");
    this.text = el("div", "text typing");
    this.node.append(el("span", "who-said", "Waybill"), this.tools, this.text);
    els.log.append(this.node);
    this.streamed = "";
    this.errorShown = false;
    this.ended = false;
    this.pendingAction = null;
    scrollLog();
  }

  delta(text) {
    this.streamed += text;
    this.text.textContent = this.streamed;
    scrollLog();
  }

  toolCall(call) {
    const ms = Number(call.durationUs || "0") / 1000;
    const label = TOOL_LABELS[call.name] || call.name;
    const code = (call.outcome || "").replace(/^STATUS_CODE_/, "");
    const outcome = code && code !== "OK" ? ` (${code})` : "";
    this.tools.append(el("span", "tool", `${label}${outcome} · ${ms.toFixed(1)} ms`));
  }

  alert(message, code) {
    const box = el("div", "alert");
    box.setAttribute("role", "alert");
    box.append(el("span", "", message));
    if (code) box.append(el("span", "code", `Error: ${code}`));
    this.node.append(box);
    this.errorShown = true;
    scrollLog();
  }

  refusal(refusal) {
    this.text.classList.add("refusal");
    this.delta(refusal.message || "Sorry, I can't help with that.");
  }

  // A policy chunk the answer quotes; the answer's [n] refers to the n-th source.
  citation(citation) {
    if (!this.sources) {
      const box = el("div", "sources");
      box.append(el("span", "sources-title", "Sources"));
      this.sources = el("ol", "source-list");
      box.append(this.sources);
      this.node.append(box);
    }
    const item = el("li", "source");
    item.append(el("span", "source-title", `${citation.title || citation.docId} — ${citation.section || ""}`));
    const meta = [citation.policyVersion ? `version ${citation.policyVersion}` : "", citation.sourceDoc || ""]
      .filter(Boolean).join(" · ");
    if (meta) item.append(el("span", "source-meta", meta));
    item.append(el("code", "source-id", citation.chunkId));
    this.sources.append(item);
    scrollLog();
  }

  escalation(escalation) {
    const line = `Handed over to a person: ticket ${escalation.ticketId}` +
      (escalation.queue ? ` (${escalation.queue} queue)` : "");
    this.node.append(el("p", "escalation", line));
    this.escalated = true;
    loadTickets(); // the new ticket shows in the agents' queue
  }

  // A conversation an agent has claimed: the assistant has stepped aside.
  handedOver() {
    this.node.classList.add("handed-over");
    this.node.append(el("p", "escalation", "Handed over: a person from support has this conversation."));
  }

  confirmation(request) {
    const action = request.action || {};
    this.pendingAction = action;
    const card = el("div", "confirm");
    card.setAttribute("role", "group");
    const titleId = `confirm-${action.actionId}`;
    card.setAttribute("aria-labelledby", titleId);
    const title = el("p", "", action.summary || `Please confirm the ${enumLabel(action.kind, "ACTION_KIND_").toLowerCase()}.`);
    title.id = titleId;
    card.append(title);
    const amount = formatMoney(action.amount);
    if (amount) {
      const line = el("p");
      line.append("Amount: ", el("span", "amount", amount));
      if (action.orderId) line.append(` · order ${action.orderId}`);
      card.append(line);
    }
    const buttons = el("div", "confirm-actions");
    const yes = el("button", "primary", "Confirm");
    const no = el("button", "danger", "Cancel");
    yes.type = "button";
    no.type = "button";
    yes.setAttribute("aria-describedby", titleId);
    no.setAttribute("aria-describedby", titleId);
    buttons.append(yes, no);
    card.append(buttons);
    this.node.append(card);
    const decide = (decision, label) => {
      yes.disabled = true;
      no.disabled = true;
      card.append(el("p", "decided", `You chose: ${label}`));
      decideAction(action, decision, label);
    };
    yes.addEventListener("click", () => decide("DECISION_CONFIRM", "Confirm"));
    no.addEventListener("click", () => decide("DECISION_DECLINE", "Cancel"));
    this.confirmButton = yes;
    scrollLog();
  }

  // What the turn cost the team and where its budget stands (the ledger's figures).
  charged(usage, budgetState) {
    const words = BUDGET_WORDS[budgetState];
    if (!words) return;  // budgets off: nothing was charged
    const cost = formatCost(usage && usage.cost) || formatCost({ currencyCode: "USD", microUnits: "0" });
    const line = el("p", "turn-cost", `Cost ${cost} · ${words}`);
    line.dataset.budget = budgetState;
    this.node.append(line);
  }

  finish() {
    this.ended = true;
    this.text.classList.remove("typing");
    if (!this.streamed && !this.text.classList.contains("refusal")) this.text.remove();
    this.node.setAttribute("aria-busy", "false");
  }
}

// ---------------------------------------------------------------- turns

function setBusy(busy) {
  state.busy = busy;
  els.send.disabled = busy || !state.userId;
  for (const chip of els.chips) chip.disabled = busy || !state.userId;
}

async function streamInto(reply, path, body) {
  state.controller = new AbortController();
  let complete = false;
  try {
    let auth;
    try {
      auth = await customerAuth(body.userId);
    } catch (exc) {
      reply.alert(`Could not sign in as the customer: ${exc.message}`, exc.status || "");
      return;
    }
    const response = await fetch(path, {
      method: "POST",
      headers: headers({
        "Content-Type": "application/json",
        "X-Request-Timeout": TURN_TIMEOUT_S,
        ...auth,
      }),
      body: JSON.stringify(body),
      signal: state.controller.signal,
    });
    if (!response.ok) {
      const error = await errorFrom(response);
      reply.alert(error.message, error.status);
      return;
    }
    await readEvents(response, (name, data) => {
      switch (name) {
        case "delta": reply.delta(data.text || ""); break;
        case "tool_call": reply.toolCall(data); break;
        case "confirmation_request": reply.confirmation(data); break;
        case "escalation": reply.escalation(data); break;
        case "citation": reply.citation(data); break;
        case "refusal": reply.refusal(data); complete = true; break;
        case "final":
          if (!reply.streamed && data.answer) reply.delta(data.answer);
          // A person's turn: the worker is WORKER_HUMAN, and no ticket was opened just now.
          if (data.worker === "WORKER_HUMAN" && !reply.escalated) reply.handedOver();
          reply.charged(data.usage, data.budgetState);
          complete = true;
          break;
        case "turn_error":
          reply.alert(data.message || "Something went wrong.", String(data.code || "").replace("STATUS_CODE_", ""));
          break;
        case "error":
          if (!reply.errorShown) {
            const error = new EdgeError(data, data.error ? data.error.code : 500);
            reply.alert(error.message, error.status);
          }
          break;
        default: break;
      }
    });
    if (!complete && !reply.errorShown) {
      reply.alert("The answer was cut off. Please try again.", "INCOMPLETE");
    }
  } catch (exc) {
    if (exc.name === "AbortError") {
      reply.alert("Stopped.", "");
    } else {
      reply.alert("Could not reach Waybill. Check the connection and try again.", "NETWORK");
    }
  } finally {
    state.controller = null;
    reply.finish();
  }
}

async function runTurn(text) {
  if (state.busy || !state.userId) return;
  setBusy(true);
  addMine(text);
  const reply = new Reply();
  await streamInto(reply, `/v1/sessions/${encodeURIComponent(state.sessionId)}/turns`, {
    userId: state.userId,
    message: text,
  });
  setBusy(false);
  loadOrders(); // a turn may have changed what the panel shows
  if (reply.confirmButton && !reply.confirmButton.disabled) reply.confirmButton.focus();
  else els.message.focus();
}

function newIdempotencyKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function decideAction(action, decision, label) {
  setBusy(true);
  addMine(label);
  const reply = new Reply();
  await streamInto(reply, `/v1/sessions/${encodeURIComponent(state.sessionId)}/confirmations`, {
    userId: state.userId,
    actionId: action.actionId,
    decision,
    // One key per decision: a retried request replays the first outcome.
    idempotencyKey: newIdempotencyKey(),
  });
  setBusy(false);
  loadOrders();
  els.message.focus();
}

// ---------------------------------------------------------------- customers and orders

function renderOrders(context) {
  els.orders.replaceChildren();
  const orders = context.activeOrders || [];
  els.ordersNote.textContent = orders.length ? "" : "No active orders.";
  for (const order of orders) {
    const item = el("li", "order");
    item.append(el("div", "order-title", order.title || order.orderId));
    item.append(el("div", "order-ids", `${order.orderId} · ${order.awb}`));
    const line = el("div", "order-line");
    const status = String(order.status || "").replace("SHIPMENT_STATUS_", "");
    const badge = el("span", "badge", enumLabel(order.status, "SHIPMENT_STATUS_"));
    badge.dataset.status = status;
    line.append(badge);
    const eta = formatDate(order.eta);
    if (eta) line.append(el("span", "", status === "DELIVERED" ? `Delivered ${eta}` : `ETA ${eta}`));
    item.append(line);
    els.orders.append(item);
  }
}

async function loadOrders() {
  const userId = state.userId;
  if (!userId) return;
  try {
    const data = await getJson(
      `/v1/customers/${encodeURIComponent(userId)}/context`,
      await customerAuth(userId),
    );
    if (userId !== state.userId) return;
    renderOrders(data.context || {});
  } catch (exc) {
    els.orders.replaceChildren();
    els.ordersNote.textContent = `Could not load the orders: ${exc.message}`;
  }
}

function startConversation() {
  if (state.controller) state.controller.abort();
  state.sessionId = newSessionId();
  els.log.replaceChildren();
  const customer = state.customers.get(state.userId);
  if (customer) addSystem(`New conversation as ${customer.displayName} (${customer.userId}).`);
}

function selectCustomer(userId) {
  state.userId = userId;
  const customer = state.customers.get(userId);
  const tier = customer && customer.tier !== "CUSTOMER_TIER_UNSPECIFIED"
    ? `${enumLabel(customer.tier, "CUSTOMER_TIER_")} tier` : "";
  els.summary.textContent = customer ? [tier, customer.region].filter(Boolean).join(" · ") : "";
  els.message.disabled = !userId;
  els.newChat.disabled = !userId;
  setBusy(false);
  startConversation();
  els.orders.replaceChildren();
  els.ordersNote.textContent = "Loading…";
  loadOrders();
}

async function loadCustomers() {
  // A company picked while the previous list is still loading: only the latest load may
  // fill the list (an earlier answer arriving last would put the other company's back).
  const load = ++state.customerLoads;
  els.customer.disabled = true;
  els.customer.replaceChildren();
  state.customers.clear();
  try {
    const data = await getJson("/v1/customers?pageSize=100");
    if (load !== state.customerLoads) return;
    for (const c of data.customers || []) {
      state.customers.set(c.userId, c);
      const option = el("option", "", `${c.displayName} (${c.userId})`);
      option.value = c.userId;
      els.customer.append(option);
    }
    els.customer.disabled = state.customers.size === 0;
    selectCustomer(els.customer.value);
  } catch (exc) {
    if (load !== state.customerLoads) return;
    els.summary.textContent = `Could not list the customers: ${exc.message}`;
    selectCustomer("");
  } finally {
    // How many list loads have finished, used or dropped (what tests wait for).
    els.customer.dataset.settled = String(++state.customerLoadsSettled);
  }
}

// ---------------------------------------------------------------- the agents' queue

function renderTicket(ticket) {
  const item = el("li", "ticket");
  item.dataset.ticketId = ticket.ticketId;
  item.dataset.state = String(ticket.state || "").replace("TICKET_STATE_", "");
  const head = el("div", "ticket-head");
  head.append(el("span", "ticket-id", ticket.ticketId));
  const badge = el("span", "badge", enumLabel(ticket.state, "TICKET_STATE_"));
  badge.dataset.status = item.dataset.state;
  head.append(badge);
  item.append(head);
  const meta = [`${ticket.queue} · priority ${ticket.priority}`, ticket.userId, ticket.orderId,
    ticket.agentId ? `with ${ticket.agentId}` : ""].filter(Boolean).join(" · ");
  item.append(el("p", "ticket-meta", meta));
  const details = el("details");
  details.append(el("summary", "", "Summary"), el("p", "ticket-summary", ticket.summary || ""));
  if (ticket.resolution) details.append(el("p", "ticket-summary", `Resolution: ${ticket.resolution}`));
  item.append(details);
  const actions = el("div", "ticket-actions");
  if (item.dataset.state === "OPEN") {
    const claim = el("button", "primary", "Claim");
    claim.type = "button";
    claim.setAttribute("aria-label", `Claim ${ticket.ticketId}`);
    claim.addEventListener("click", () => changeTicket(ticket.ticketId, "claim", {}));
    actions.append(claim);
  } else if (item.dataset.state === "CLAIMED" && ticket.agentId === els.agentId.value) {
    const note = el("input");
    note.placeholder = "What was done";
    note.setAttribute("aria-label", `Resolution of ${ticket.ticketId}`);
    const resolve = el("button", "", "Resolve");
    resolve.type = "button";
    resolve.addEventListener("click", () => {
      if (note.value.trim()) changeTicket(ticket.ticketId, "resolve", { resolution: note.value.trim() });
      else note.focus();
    });
    actions.append(note, resolve);
  }
  if (actions.childElementCount) item.append(actions);
  return item;
}

async function loadTickets() {
  if (!state.demo) return;
  const load = ++state.ticketLoads;
  try {
    const data = await getJson("/v1/tickets?pageSize=50");
    if (load !== state.ticketLoads) return;
    const tickets = data.tickets || [];
    els.tickets.replaceChildren(...tickets.map(renderTicket));
    els.ticketsNote.textContent = tickets.length ? "" : "No tickets: nobody has asked for a person.";
  } catch (exc) {
    if (load !== state.ticketLoads) return;
    els.ticketsNote.textContent = `Could not load the tickets: ${exc.message}`;
  } finally {
    // How many queue loads have finished (what tests wait for).
    els.tickets.dataset.settled = String(load);
  }
}

async function changeTicket(ticketId, verb, body) {
  try {
    await postJson(`/v1/tickets/${encodeURIComponent(ticketId)}/${verb}`, { agentId: els.agentId.value, ...body });
    els.ticketsNote.textContent = verb === "claim"
      ? `You have ${ticketId}: the assistant steps aside in that conversation.`
      : `${ticketId} resolved.`;
  } catch (exc) {
    els.ticketsNote.textContent = `Could not ${verb} ${ticketId}: ${exc.message}`;
  }
  await loadTickets();
}

async function init() {
  let health = null;
  try {
    const response = await fetch("/healthz", { headers: { Accept: "application/json" } });
    health = await response.json();
  } catch {
    health = null;
  }
  if (!health) {
    els.status.textContent = "Waybill is not reachable.";
    return;
  }
  els.status.textContent = health.status === "SERVING" ? "Connected" : `Gateway: ${health.gateway}`;
  const demo = health.demo_credentials || { enabled: false, tenants: [] };
  state.demo = demo.enabled;
  state.demoTokens = Boolean(demo.enabled && demo.tokens);
  if (!demo.enabled) {
    els.summary.textContent =
      "Demo customers are available only when the platform runs locally (waybill up).";
    return;
  }
  for (const tenant of demo.tenants) {
    const option = el("option", "", tenant);
    option.value = tenant;
    els.tenant.append(option);
  }
  els.tenant.disabled = false;
  state.tenant = demo.default_tenant || demo.tenants[0];
  els.tenant.value = state.tenant;
  els.ticketsRefresh.disabled = false;
  await Promise.all([loadCustomers(), loadTickets()]);
}

// ---------------------------------------------------------------- wiring

els.tenant.addEventListener("change", () => {
  state.tenant = els.tenant.value;
  loadCustomers();
  loadTickets();
});
els.ticketsRefresh.addEventListener("click", () => loadTickets());
els.agentId.addEventListener("change", () => loadTickets());
els.customer.addEventListener("change", () => selectCustomer(els.customer.value));
els.newChat.addEventListener("click", () => {
  startConversation();
  els.message.focus();
});
els.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = els.message.value.trim();
  if (!text || state.busy) return;
  els.message.value = "";
  runTurn(text);
});
els.message.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    els.composer.requestSubmit();
  }
});
for (const chip of els.chips) {
  chip.addEventListener("click", () => runTurn(chip.dataset.say));
}

init();
