// The Waybill ops page: plain ES module, no build step, one same-origin request
// (GET /v1/ops/summary). Every chart is inline SVG drawn here from that answer; a
// figure without data says so instead of drawing anything.

const SVG = "http://www.w3.org/2000/svg";
const PALETTE = 6;

const $ = (id) => document.getElementById(id);
const panel = (name) => document.querySelector(`[data-panel="${name}"]`);

// ---------------------------------------------------------------- formatting

function money(micros, currency) {
  const value = micros / 1e6;
  const digits = value !== 0 && Math.abs(value) < 0.01 ? 6 : 2;
  return `${value.toFixed(digits)} ${currency}`;
}

function ms(value) {
  if (value === null || value === undefined) return "–";
  return value < 10 ? `${value.toFixed(2)} ms` : `${value.toFixed(0)} ms`;
}

function percent(ratio) {
  return `${(ratio * 100).toFixed(1)}%`;
}

function count(value) {
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

function shortDay(day) {
  return day.slice(5); // MM-DD
}

function niceCeiling(value, integer = false) {
  if (integer) return Math.max(4, Math.ceil(value / 4) * 4); // whole ticks: 0, n/4, ...
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * power >= value) return step * power;
  }
  return 10 * power;
}

// ---------------------------------------------------------------- SVG

function el(name, attributes = {}, text = "") {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text) node.textContent = text;
  return node;
}

function titled(node, text) {
  node.append(el("title", {}, text));
  return node;
}

function legend(svg, series, x, y) {
  const group = el("g", { class: "legend" });
  let offset = 0;
  series.forEach((s, i) => {
    const item = el("g", { class: "legend-item", "data-series": s.name });
    item.append(el("rect", { x: x + offset, y, width: 10, height: 10, class: `s${i % PALETTE}` }));
    item.append(el("text", { x: x + offset + 14, y: y + 9 }, s.name));
    group.append(item);
    offset += 24 + s.name.length * 6.5;
  });
  svg.append(group);
}

// A grouped bar chart: one group per category, one bar per series.
// spec: {name, title, categories, labels?, series: [{name, values}], format, horizontal}
function barChart(spec) {
  const { categories, series, format } = spec;
  const labels = spec.labels || categories;
  const max = niceCeiling(Math.max(0, ...series.flatMap((s) => s.values)), spec.integer);
  const svg = el("svg", {
    class: "chart",
    role: "img",
    "data-chart": spec.name,
    "data-series-count": series.length,
    "aria-label": spec.title,
  });
  svg.append(el("title", {}, spec.title));
  const legendH = 22;
  if (spec.horizontal) {
    const left = 220, right = 40, top = legendH + 8, bottom = 28, width = 700;
    const bar = 9, gap = 10;
    const groupH = series.length * bar + gap;
    const height = top + categories.length * groupH + bottom;
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const plotW = width - left - right;
    for (let t = 0; t <= 4; t += 1) {
      const x = left + (plotW * t) / 4;
      svg.append(el("line", { class: "grid", x1: x, x2: x, y1: top - 4, y2: height - bottom }));
      svg.append(el("text", { x, y: height - bottom + 14, "text-anchor": "middle" }, format((max * t) / 4)));
    }
    categories.forEach((category, c) => {
      const y = top + c * groupH;
      svg.append(el("text", { class: "category", x: left - 6, y: y + (series.length * bar) / 2 + 4, "text-anchor": "end" }, labels[c]));
    });
    series.forEach((s, i) => {
      const group = el("g", { class: "series", "data-series": s.name });
      s.values.forEach((value, c) => {
        const w = (plotW * value) / max;
        const rect = el("rect", {
          class: `bar s${i % PALETTE}`,
          x: left, y: top + c * groupH + i * bar, width: Math.max(w, 0), height: bar - 1,
          "data-category": categories[c], "data-value": value,
        });
        group.append(titled(rect, `${labels[c]} · ${s.name}: ${format(value)}`));
      });
      svg.append(group);
    });
    svg.append(el("line", { class: "axis", x1: left, x2: left, y1: top - 4, y2: height - bottom }));
  } else {
    const left = 64, right = 12, top = legendH + 10, bottom = 36, width = 640, height = 280;
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const plotW = width - left - right, plotH = height - top - bottom;
    for (let t = 0; t <= 4; t += 1) {
      const y = top + plotH - (plotH * t) / 4;
      svg.append(el("line", { class: "grid", x1: left, x2: width - right, y1: y, y2: y }));
      svg.append(el("text", { x: left - 6, y: y + 4, "text-anchor": "end" }, format((max * t) / 4)));
    }
    const groupW = plotW / Math.max(categories.length, 1);
    const barW = Math.max(2, Math.min(28, (groupW * 0.8) / Math.max(series.length, 1)));
    const every = Math.ceil(categories.length / 12);
    categories.forEach((category, c) => {
      if (c % every === 0) {
        svg.append(el("text", { class: "category", x: left + groupW * (c + 0.5), y: height - bottom + 16, "text-anchor": "middle" }, labels[c]));
      }
    });
    series.forEach((s, i) => {
      const group = el("g", { class: "series", "data-series": s.name });
      s.values.forEach((value, c) => {
        const h = (plotH * value) / max;
        const x = left + groupW * c + (groupW - barW * series.length) / 2 + i * barW;
        const rect = el("rect", {
          class: `bar s${i % PALETTE}`,
          x, y: top + plotH - h, width: barW - 1, height: Math.max(h, 0),
          "data-category": categories[c], "data-value": value,
        });
        group.append(titled(rect, `${labels[c]} · ${s.name}: ${format(value)}`));
      });
      svg.append(group);
    });
    svg.append(el("line", { class: "axis", x1: left, x2: width - right, y1: top + plotH, y2: top + plotH }));
  }
  legend(svg, series, 8, 4);
  return svg;
}

// ---------------------------------------------------------------- panels

function show(name, content) {
  const box = panel(name).querySelector(".chart-box");
  box.replaceChildren(content);
}

// Whether a metrics source failed in the answer being drawn: "none yet" then only speaks
// for the sources that answered.
let metricsMissing = false;

function empty(text, state = "empty") {
  const p = document.createElement("p");
  p.className = "empty";
  p.dataset.state = state;
  p.setAttribute("role", "note");
  p.textContent = state === "empty" && metricsMissing
    ? `${text} (counting only the sources that answered; see above)`
    : text;
  return p;
}

function headline(name, text) {
  document.querySelector(`[data-headline="${name}"]`).textContent = text;
}

function drawCosts(cost) {
  if (!cost.ok) {
    const failed = empty("No cost data: the ledger's cost report failed (see the sources above).", "failed");
    show("cost", failed);
    show("requests", failed.cloneNode(true));
    return;
  }
  if (!cost.series.length) {
    show("cost", empty(`No charges in this period for ${cost.tenants.join(", ")}.`));
    show("requests", empty("No turns were charged in this period."));
    return;
  }
  const name = (s) => `${s.tenant} · ${s.team}` + (new Set(cost.series.map((x) => x.currency)).size > 1 ? ` (${s.currency})` : "");
  const currency = cost.series[0].currency;
  const labels = cost.days.map(shortDay);
  show("cost", barChart({
    name: "cost",
    title: "Cost per team and day",
    categories: cost.days,
    labels,
    series: cost.series.map((s) => ({ name: name(s), values: s.costMicros.map(Number) })),
    format: (v) => money(v, currency),
  }));
  show("requests", barChart({
    name: "requests",
    title: "Turns charged per team and day",
    categories: cost.days,
    labels,
    series: cost.series.map((s) => ({ name: name(s), values: s.requests.map(Number) })),
    format: count,
    integer: true,
  }));
}

function drawEscalation(escalation) {
  if (!escalation.turns) {
    headline("escalation", "");
    show("escalation", empty("No turns yet: nothing to hand over."));
    return;
  }
  headline(
    "escalation",
    `${escalation.escalated} of ${escalation.turns} turns handed over to a person (${percent(escalation.rate)})`,
  );
  if (!escalation.byReason.length) {
    show("escalation", empty("No hand-overs yet."));
    return;
  }
  show("escalation", barChart({
    name: "escalation",
    title: "Hand-overs by reason",
    categories: escalation.byReason.map((r) => r.reason),
    series: [{ name: "hand-overs", values: escalation.byReason.map((r) => r.count) }],
    format: count,
    integer: true,
  }));
}

function drawLatency(latency) {
  if (!latency.rows.length) {
    show("latency", empty("No calls served yet."));
    return;
  }
  const keys = latency.quantiles.map((q) => `p${Math.round(q * 100)}`);
  show("latency", barChart({
    name: "latency",
    title: "Latency percentiles per service and method",
    categories: latency.rows.map((r) => `${r.service} · ${r.method}`),
    series: keys.map((key) => ({ name: key, values: latency.rows.map((r) => r[`${key}Ms`] ?? 0) })),
    format: ms,
    horizontal: true,
  }));
}

function drawConfidence(confidence) {
  if (!confidence.count) {
    headline("confidence", "");
    show("confidence", empty("No messages classified yet."));
    return;
  }
  const low = confidence.lowConfidence.reduce((sum, r) => sum + r.count, 0);
  headline(
    "confidence",
    `${confidence.count} classifications, median ${confidence.median.toFixed(2)}; ${low} sent to the low-confidence bucket`,
  );
  let previous = 0;
  const labels = confidence.buckets.map((b) => {
    const label = b.upTo === null ? `> ${previous}` : `≤ ${b.upTo}`;
    if (b.upTo !== null) previous = b.upTo;
    return label;
  });
  show("confidence", barChart({
    name: "confidence",
    title: "Classifications per confidence bucket",
    categories: labels,
    series: [{ name: "classifications", values: confidence.buckets.map((b) => b.count) }],
    format: count,
    integer: true,
  }));
}

function drawCaches(caches) {
  if (caches.state !== "ok") {
    show("caches", empty(caches.message || "No cache data yet."));
    return;
  }
  show("caches", barChart({
    name: "caches",
    title: "Cache lookups: hits and misses",
    categories: caches.caches.map((c) => c.name),
    labels: caches.caches.map((c) => `${c.name} (${percent(c.hitRatio)} hits)`),
    series: [
      { name: "hits", values: caches.caches.map((c) => c.hits) },
      { name: "misses", values: caches.caches.map((c) => c.misses) },
    ],
    format: count,
    integer: true,
    horizontal: true,
  }));
}

function drawSources(sources) {
  $("sources").replaceChildren(...sources.map((s) => {
    const li = document.createElement("li");
    li.className = "ops-source";
    li.dataset.ok = String(s.ok);
    li.textContent = s.ok ? s.name : `${s.name}: ${s.problem}`;
    return li;
  }));
}

// ---------------------------------------------------------------- loading

async function load() {
  const status = $("ops-status");
  status.textContent = "Loading…";
  document.body.dataset.loaded = "false";
  const days = $("days").value;
  let response;
  try {
    response = await fetch(`/v1/ops/summary?days=${encodeURIComponent(days)}`, { cache: "no-store" });
  } catch {
    status.textContent = "The edge is not reachable.";
    return;
  }
  const body = await response.json().catch(() => null);
  if (!response.ok || body === null) {
    const message = body && body.error ? `${body.error.message} (${body.error.status})` : `HTTP ${response.status}`;
    status.textContent = `Cannot load the figures: ${message}`;
    return;
  }
  metricsMissing = body.sources.some((s) => !s.ok && s.name !== "ledger (cost report)");
  drawSources(body.sources);
  drawCosts(body.cost);
  drawEscalation(body.escalation);
  drawLatency(body.latency);
  drawConfidence(body.routerConfidence);
  drawCaches(body.caches);
  const failed = body.sources.filter((s) => !s.ok).length;
  status.textContent = `Updated ${body.generatedAt}` + (failed ? ` · ${failed} source(s) missing` : "");
  document.body.dataset.loaded = "true";
}

$("ops-form").addEventListener("submit", (event) => {
  event.preventDefault();
  load();
});
$("days").addEventListener("change", () => load());
load();
