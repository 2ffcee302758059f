// Small SVG charts drawn with the DOM API: no library, no network, no innerHTML.
//
// Every plotted value is one element with class "pt" and data-series / data-x / data-y
// attributes, so tests (and curious people with devtools) can read back what was drawn.

const NS = "http://www.w3.org/2000/svg";
export const PALETTE = ["#4f6bed", "#18a058", "#f0a020", "#d03050", "#7c4dff", "#00a0b0"];
// Charts are drawn at the width of their container (1 SVG unit = 1 CSS pixel) so text stays
// legible; they scale with the page when it is resized.
let W = 640;

function sizeTo(container) {
  W = Math.max(320, Math.round(container.clientWidth || 640));
}
const PAD = { left: 48, right: 14, top: 12, bottom: 26 };

export function el(tag, attrs = {}, text) {
  const node = tag.startsWith("svg:")
    ? document.createElementNS(NS, tag.slice(4))
    : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(name, String(value));
  }
  if (text !== undefined) node.textContent = String(text);
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

export function formatNumber(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  const abs = Math.abs(value);
  if (abs >= 1e9) return (value / 1e9).toFixed(1) + "B";
  if (abs >= 1e6) return (value / 1e6).toFixed(1) + "M";
  if (abs >= 1e4) return (value / 1e3).toFixed(1) + "k";
  if (Number.isInteger(value)) return value.toLocaleString("en-US");
  return value.toFixed(2);
}

// A round upper bound and its tick step, so axes read 0, 50, 100 ... rather than 0, 47, 94.
function niceScale(max, ticks = 4) {
  if (!(max > 0)) return { max: 1, step: 0.25 };
  const raw = max / ticks;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw);
  return { max: Math.ceil(max / step) * step, step };
}

function frame(height, label) {
  return el("svg:svg", {
    viewBox: `0 0 ${W} ${height}`,
    class: "chart",
    role: "img",
    "aria-label": label,
    preserveAspectRatio: "xMidYMid meet",
  });
}

function legend(series) {
  const box = el("div", { class: "legend" });
  series.forEach((s, i) => {
    const item = el("span", { class: "legend-item" });
    const swatch = el("i", { class: "swatch" });
    swatch.style.background = s.color || PALETTE[i % PALETTE.length];
    item.append(swatch, document.createTextNode(s.name));
    box.append(item);
  });
  return box;
}

// Horizontal grid and y labels from lo to hi; returns y(value).
function yAxis(svg, lo, hi, step, height) {
  const plotH = height - PAD.top - PAD.bottom;
  const y = (v) => PAD.top + plotH - ((v - lo) / (hi - lo || 1)) * plotH;
  for (let v = lo; v <= hi + step / 2; v += step) {
    const value = Math.round(v * 1e6) / 1e6;
    svg.append(
      el("svg:line", { x1: PAD.left, x2: W - PAD.right, y1: y(value), y2: y(value), class: value === 0 ? "axis" : "grid" }),
      el("svg:text", { x: PAD.left - 6, y: y(value) + 4, class: "tick", "text-anchor": "end" }, formatNumber(value)),
    );
  }
  return y;
}

function xLabels(svg, labels, xOf, height) {
  const every = Math.max(1, Math.ceil(labels.length / 8));
  labels.forEach((label, i) => {
    const last = i === labels.length - 1;
    if (i % every !== 0 && !last) return;
    if (last && i % every !== 0 && i % every < every / 2) return; // too close to the one before
    svg.append(el("svg:text", { x: xOf(i), y: height - 8, class: "tick", "text-anchor": "middle" }, shortLabel(label)));
  });
}

function shortLabel(label) {
  return /^\d{4}-\d{2}-\d{2}$/.test(label) ? label.slice(5) : label;
}

function point(tag, attrs, series, x, y, title) {
  const node = el(tag, { ...attrs, class: "pt", "data-series": series, "data-x": x, "data-y": y });
  node.append(el("svg:title", {}, title));
  return node;
}

// series: [{name, key, values: [number|null], color}]; labels: x values (dates).
export function lineChart(container, labels, series, { height = 230, label = "line chart" } = {}) {
  clear(container);
  sizeTo(container);
  const svg = frame(height, label);
  const values = series.flatMap((s) => s.values).filter((v) => v !== null && v !== undefined);
  const { max, step } = niceScale(Math.max(0, ...values));
  const y = yAxis(svg, 0, max, step, height);
  const plotW = W - PAD.left - PAD.right;
  const x = (i) => PAD.left + (labels.length > 1 ? (i / (labels.length - 1)) * plotW : plotW / 2);
  xLabels(svg, labels, x, height);
  const radius = labels.length > 60 ? 1.6 : 2.6;
  series.forEach((s, si) => {
    const color = s.color || PALETTE[si % PALETTE.length];
    let d = "";
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      d += `${d ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
    });
    svg.append(el("svg:path", { d, fill: "none", stroke: color, "stroke-width": 2, class: "line" }));
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      svg.append(
        point("svg:circle", { cx: x(i), cy: y(v), r: radius, fill: color }, s.key, labels[i], v, `${s.name} ${labels[i]}: ${formatNumber(v)}`),
      );
    });
  });
  container.append(legend(series), svg);
}

// Stacked bars; values may be negative (stacked downwards from zero).
export function barChart(container, labels, series, { height = 230, label = "bar chart" } = {}) {
  clear(container);
  sizeTo(container);
  const svg = frame(height, label);
  let hi = 0;
  let lo = 0;
  labels.forEach((_, i) => {
    let up = 0;
    let down = 0;
    series.forEach((s) => {
      const v = s.values[i] || 0;
      if (v >= 0) up += v;
      else down += v;
    });
    hi = Math.max(hi, up);
    lo = Math.min(lo, down);
  });
  const scale = niceScale(Math.max(hi, -lo) || 1);
  const top = hi > 0 || lo === 0 ? Math.ceil(hi / scale.step) * scale.step || scale.step : 0;
  const bottom = lo < 0 ? Math.floor(lo / scale.step) * scale.step : 0;
  const y = yAxis(svg, bottom, top, scale.step, height);
  const plotW = W - PAD.left - PAD.right;
  const slot = plotW / Math.max(1, labels.length);
  const barW = Math.max(1, Math.min(40, slot * 0.72));
  const x = (i) => PAD.left + slot * i + slot / 2;
  xLabels(svg, labels, x, height);
  labels.forEach((labelText, i) => {
    let up = 0;
    let down = 0;
    series.forEach((s, si) => {
      const v = s.values[i];
      if (v === null || v === undefined) return;
      const color = s.color || PALETTE[si % PALETTE.length];
      const from = v >= 0 ? up : down;
      const to = from + v;
      if (v >= 0) up = to;
      else down = to;
      const y0 = y(Math.max(from, to));
      const h = Math.abs(y(from) - y(to));
      svg.append(
        point("svg:rect", { x: x(i) - barW / 2, y: y0, width: barW, height: Math.max(h, v === 0 ? 0 : 1), fill: color }, s.key, labelText, v, `${s.name} ${labelText}: ${formatNumber(v)}`),
      );
    });
  });
  if (series.length > 1) container.append(legend(series));
  container.append(svg);
}

// rows: [{label, value, note}] drawn as horizontal bars, longest first as given.
export function horizontalBars(container, rows, { key = "value", label = "ranking" } = {}) {
  clear(container);
  sizeTo(container);
  const rowH = 24;
  const height = Math.max(rowH, rows.length * rowH) + 8;
  const svg = frame(height, label);
  const max = Math.max(1, ...rows.map((r) => r.value));
  const left = Math.min(190, W * 0.3);
  const right = 150;
  rows.forEach((row, i) => {
    const yTop = 4 + i * rowH;
    const width = ((W - left - right) * row.value) / max;
    const bar = point("svg:rect", { x: left, y: yTop + 4, width: Math.max(1, width), height: rowH - 8, fill: PALETTE[0], rx: 2 }, key, row.label, row.value, `${row.label}: ${formatNumber(row.value)}`);
    for (const [name, value] of Object.entries(row.data || {})) bar.setAttribute(`data-${name}`, String(value));
    svg.append(
      el("svg:text", { x: left - 8, y: yTop + rowH / 2 + 4, class: "label", "text-anchor": "end" }, truncate(row.label, 28)),
      bar,
      el("svg:text", { x: left + width + 6, y: yTop + rowH / 2 + 4, class: "tick" }, row.note),
    );
  });
  container.append(svg);
}

function truncate(text, n) {
  return text.length > n ? text.slice(0, n - 1) + "…" : text;
}

function addDays(iso, days) {
  const date = new Date(`${iso}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + days);
  return date.toISOString().slice(0, 10);
}

// cohorts: [{date, size, retained: [n0, n1, ...]}]: one row per cohort, shade = share retained.
// A cell whose day (cohort + k periods) is after `today` has not happened yet: it is drawn as
// an empty grey cell (class "future", not a data point) rather than as 0%.
export function heatmap(container, cohorts, { label = "retention", today = null, periodDays = 1 } = {}) {
  clear(container);
  sizeTo(container);
  const columns = Math.max(0, ...cohorts.map((c) => c.retained.length));
  const left = 110;
  const cellW = Math.min(44, (W - left - 8) / Math.max(1, columns));
  const cellH = 20;
  const height = 22 + cohorts.length * cellH + 4;
  const svg = frame(height, label);
  for (let k = 0; k < columns; k++) {
    svg.append(el("svg:text", { x: left + k * cellW + cellW / 2, y: 14, class: "tick", "text-anchor": "middle" }, String(k)));
  }
  cohorts.forEach((cohort, row) => {
    const yTop = 20 + row * cellH;
    svg.append(el("svg:text", { x: left - 8, y: yTop + 14, class: "tick", "text-anchor": "end" }, `${shortLabel(cohort.date)} (${formatNumber(cohort.size)})`));
    cohort.retained.forEach((n, k) => {
      const box = { x: left + k * cellW, y: yTop, width: cellW - 2, height: cellH - 2 };
      const day = addDays(cohort.date, k * periodDays);
      if (today && day > today) {
        const cell = el("svg:rect", { ...box, class: "future", "data-series": cohort.date, "data-x": String(k) });
        cell.append(el("svg:title", {}, `${cohort.date} +${k}: ${day} has not happened yet`));
        svg.append(cell);
        return;
      }
      // An empty cohort has no share to show: "–", not 0% (nobody left; nobody came).
      const share = cohort.size ? n / cohort.size : null;
      const title = share === null ? `${cohort.date}: no one in this cohort` : `${cohort.date} +${k}: ${n} of ${cohort.size} (${(share * 100).toFixed(1)}%)`;
      const cell = point("svg:rect", { ...box, fill: PALETTE[0], "fill-opacity": (0.08 + 0.92 * (share ?? 0)).toFixed(3) }, cohort.date, String(k), n, title);
      svg.append(cell);
      if (cellW >= 30) {
        const text = share === null ? "–" : `${Math.round(share * 100)}%`;
        svg.append(el("svg:text", { x: left + k * cellW + cellW / 2 - 1, y: yTop + 13, class: share > 0.5 ? "cell light" : "cell", "text-anchor": "middle" }, text));
      }
    });
  });
  container.append(svg);
}

export function formatPercent(ratio) {
  return ratio === null || ratio === undefined ? "–" : `${(ratio * 100).toFixed(1)}%`;
}

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const one = (value) => String(Math.round(value * 10) / 10); // 21 d, not 21.0 d
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${one(seconds / 3600)} h`;
  return `${one(seconds / 86400)} d`;
}

// steps: [{event, users, conversion_from_start, conversion_from_previous,
// median_seconds_to_convert}] as GET /v1/funnels/{id} gives them: one column per step, the bar's
// height the step's users (the first step's users fill the pale track behind every bar), users
// and conversion from start above it, conversion from the previous step and the median time to
// convert below the step's name. Each bar carries the step's numbers as data attributes.
export function funnelChart(container, steps, { key = "funnel", label = "funnel", height = 250 } = {}) {
  clear(container);
  sizeTo(container);
  const svg = frame(height, label);
  const top = 30;
  const bottom = 62;
  const plotH = height - top - bottom;
  const max = Math.max(1, ...steps.map((s) => s.users));
  // At most 200 px a step, centred: two steps on a wide panel stay side by side.
  const slot = Math.min(200, (W - 16) / Math.max(1, steps.length));
  const offset = (W - slot * steps.length) / 2;
  const barW = Math.max(14, Math.min(110, slot * 0.62));
  const chars = Math.max(6, Math.floor(slot / 6.5));
  steps.forEach((step, i) => {
    const cx = offset + slot * i + slot / 2;
    const h = (plotH * step.users) / max;
    svg.append(el("svg:rect", { x: cx - barW / 2, y: top, width: barW, height: plotH, class: "track", rx: 3 }));
    const bar = point(
      "svg:rect",
      { x: cx - barW / 2, y: top + plotH - h, width: barW, height: Math.max(h, step.users ? 1 : 0), fill: PALETTE[i === 0 ? 0 : 1], rx: 3 },
      key,
      String(i + 1),
      step.users,
      `${i + 1}. ${step.event}: ${formatNumber(step.users)} persons, ${formatPercent(step.conversion_from_start)} of step 1`,
    );
    const data = {
      event: step.event,
      "from-start": step.conversion_from_start,
      "from-previous": step.conversion_from_previous,
      median: step.median_seconds_to_convert,
    };
    for (const [name, value] of Object.entries(data)) {
      if (value !== null && value !== undefined) bar.setAttribute(`data-${name}`, String(value));
    }
    const baseline = top + plotH;
    svg.append(
      bar,
      el("svg:text", { x: cx, y: top + plotH - h - 16, class: "label", "text-anchor": "middle" }, formatNumber(step.users)),
      el("svg:text", { x: cx, y: top + plotH - h - 4, class: "tick", "text-anchor": "middle" }, formatPercent(step.conversion_from_start)),
      el("svg:text", { x: cx, y: baseline + 16, class: "label", "text-anchor": "middle" }, truncate(`${i + 1}. ${step.event}`, chars)),
    );
    if (i > 0) {
      svg.append(
        el("svg:text", { x: cx, y: baseline + 32, class: "tick", "text-anchor": "middle" }, truncate(`${formatPercent(step.conversion_from_previous)} of previous`, chars)),
        el("svg:text", { x: cx, y: baseline + 47, class: "tick", "text-anchor": "middle" }, truncate(`median ${formatDuration(step.median_seconds_to_convert)}`, chars)),
      );
    }
  });
  container.append(svg);
}

// edges: [{from, to, step, persons}] as GET /v1/paths gives them from `start`: a column per step
// (0 = the start event), a node per event in a column, a band per edge as wide as its persons.
// Each band is a data point (series "step-k", x "from → to", y persons).
export function pathsChart(container, start, edges, depth, { label = "paths", height = 300 } = {}) {
  clear(container);
  sizeTo(container);
  const svg = frame(height, label);
  const columns = Array.from({ length: depth + 1 }, () => new Map());
  const node = (k, name) => {
    if (!columns[k].has(name)) columns[k].set(name, { name, into: 0, out: 0, inUsed: 0, outUsed: 0 });
    return columns[k].get(name);
  };
  node(0, start);
  for (const e of edges) {
    node(e.step - 1, e.from).out += e.persons;
    node(e.step, e.to).into += e.persons;
  }
  const gap = 6;
  const padY = 6;
  const value = (n) => Math.max(n.into, n.out);
  const totals = columns.map((c) => [...c.values()].reduce((t, n) => t + value(n), 0));
  const gaps = Math.max(...columns.map((c) => c.size - 1), 0) * gap;
  const scale = (height - 2 * padY - gaps) / Math.max(1, ...totals);
  const nodeW = 10;
  const left = 4;
  // Every label sits right of its node; the last column's need room at the right edge.
  const labelRoom = Math.min(170, W * 0.26);
  const spacing = (W - left - labelRoom - nodeW) / Math.max(1, depth);
  const colX = (k) => left + spacing * k;
  // ~6.2 px a character at 12 px; 3 of them go to the count after the name.
  const chars = Math.max(8, Math.floor((Math.min(spacing - nodeW - 8, labelRoom) - 8) / 6.2) - 3);
  columns.forEach((column, k) => {
    let y = padY;
    const nodes = [...column.values()].sort((a, b) => value(b) - value(a) || (a.name < b.name ? -1 : 1));
    for (const n of nodes) {
      n.x = colX(k);
      n.y = y;
      n.h = Math.max(2, value(n) * scale);
      y += n.h + gap;
    }
  });
  for (const e of edges) {
    const a = columns[e.step - 1].get(e.from);
    const b = columns[e.step].get(e.to);
    const w = Math.max(1, e.persons * scale);
    const y0 = a.y + a.outUsed + w / 2;
    const y1 = b.y + b.inUsed + w / 2;
    a.outUsed += w;
    b.inUsed += w;
    const x0 = a.x + nodeW;
    const x1 = b.x;
    const mid = (x0 + x1) / 2;
    const band = point(
      "svg:path",
      { d: `M${x0.toFixed(1)},${y0.toFixed(1)} C${mid.toFixed(1)},${y0.toFixed(1)} ${mid.toFixed(1)},${y1.toFixed(1)} ${x1.toFixed(1)},${y1.toFixed(1)}`, fill: "none", stroke: PALETTE[(e.step - 1) % PALETTE.length], "stroke-width": w.toFixed(1) },
      `step-${e.step}`,
      `${e.from} → ${e.to}`,
      e.persons,
      `step ${e.step}: ${e.from} → ${e.to}: ${formatNumber(e.persons)} persons`,
    );
    band.classList.add("band");
    band.setAttribute("data-from", e.from);
    band.setAttribute("data-to", e.to);
    band.setAttribute("data-step", String(e.step));
    svg.append(band);
  }
  columns.forEach((column) => {
    for (const n of column.values()) {
      const box = el("svg:rect", { x: n.x, y: n.y, width: nodeW, height: n.h, class: "node", rx: 2 });
      box.append(el("svg:title", {}, `${n.name}: ${formatNumber(value(n))} persons`));
      svg.append(box);
      // Nodes too thin for a line of text keep their name in the tooltip only.
      if (n.h >= 11 || column.size === 1) {
        svg.append(
          el(
            "svg:text",
            { x: n.x + nodeW + 4, y: n.y + Math.min(n.h / 2, 9) + 4, class: "label" },
            `${truncate(n.name, chars)} ${formatNumber(value(n))}`,
          ),
        );
      }
    }
  });
  container.append(svg);
}
