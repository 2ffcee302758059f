// The Pulse dashboard: signs in with a read key (kept in sessionStorage only), loads the read API
// for a date range, draws every panel, and refreshes every 10 seconds while the tab is visible.
// Requests always revalidate (cache: "no-cache"): unchanged numbers come back as a 304.

import {
  PALETTE,
  barChart,
  clear,
  el,
  formatDuration,
  formatNumber,
  formatPercent,
  funnelChart,
  heatmap,
  horizontalBars,
  lineChart,
  pathsChart,
} from "./charts.js";

const KEY_STORE = "pulse.readKey";
const REFRESH_MS = 10_000;
const TOP_EVENTS = 12;
const PATHS_DEPTH = 3;
const PATHS_LIMIT = 10; // edges per step: more would not be legible in the panel
const BREAKDOWN_LINES = 8; // values drawn, the most active first (the API gives up to 50)
const NO_VALUE = "\u0000none"; // the <option> of a split's null group (no value can be this)
// A split's line: its value, or for the null group (value null: events that carried none) "no
// <key>", keyed by "" (never a value: an empty string is no value).
const groupName = (s, key) => s.value ?? `no ${key}`;
const groupKey = (s) => s.value ?? "";
const byGroup = (a, b) => (groupKey(a) < groupKey(b) ? -1 : 1);

const state = {
  key: sessionStorage.getItem(KEY_STORE),
  timer: null,
  inFlight: false,
  refreshes: 0,
  stickinessPeriod: "week",
  stickinessStart: null,
  lifecyclePeriod: "week",
  lifecycleKey: "", // the key the lifecycle panel splits by ("": everyone)
  lifecycleValue: null, // the group shown when split (NO_VALUE: the null group)
  funnelId: null, // the picked funnel (a string, as the <select> holds it)
  pathsStart: null, // the picked start event of the paths panel
  breakdownKey: null, // the picked key of the breakdown panel
  funnelSplit: "", // the key the funnel's conversion is split by ("": none)
  retentionKey: "", // the key the retention panel splits by ("": everyone)
  sessionsKey: "", // the key the sessions panel splits by ("": everyone)
  stickinessKey: "", // the key the stickiness panel splits by ("": everyone)
  retentionValue: null, // the picked group of that split (NO_VALUE: persons without one)
  // A picker change loads its panel at once, possibly while a refresh loads it too: only the
  // latest load of a panel may draw.
  loads: { funnels: 0, paths: 0, breakdown: 0, retention: 0, sessions: 0, stickiness: 0, lifecycle: 0 },
  keys: null, // this refresh's /v1/breakdowns keys (a promise), shared by the panels
  refreshAgain: false, // asked for during a refresh: run once more after it
};

const $ = (selector) => document.querySelector(selector);

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function get(path, params = {}) {
  const url = new URL(path, location.origin);
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  const response = await fetch(url, {
    headers: { Authorization: `Bearer ${state.key}` },
    cache: "no-cache",
  });
  if (response.ok) return params.format === "csv" ? response.text() : response.json();
  let message = `${response.status} ${response.statusText}`;
  try {
    message = (await response.json()).message || message;
  } catch {
    // not JSON: keep the status line
  }
  throw new HttpError(response.status, message);
}

// A write (read key, like every call here): its JSON answer, or an HttpError.
async function send(method, path, body) {
  const response = await fetch(new URL(path, location.origin), {
    method,
    headers: { Authorization: `Bearer ${state.key}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.ok) return response.status === 204 ? null : response.json();
  let message = `${response.status} ${response.statusText}`;
  try {
    message = (await response.json()).message || message;
  } catch {
    // not JSON: keep the status line
  }
  throw new HttpError(response.status, message);
}

// ---- dates --------------------------------------------------------------------------------

function isoDay(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

function daysAgo(n) {
  const date = new Date();
  date.setDate(date.getDate() - n);
  return isoDay(date);
}

function range() {
  return { from: $("#from").value, to: $("#to").value };
}

function setRange(days) {
  $("#from").value = daysAgo(days - 1);
  $("#to").value = daysAgo(0);
  for (const button of document.querySelectorAll("[data-days]")) {
    button.classList.toggle("active", Number(button.dataset.days) === days);
  }
}

// ---- panels -------------------------------------------------------------------------------

function panelBody(id) {
  return document.querySelector(`[data-panel="${id}"] .body`);
}

function setPanelState(id, kind, text) {
  const panel = document.querySelector(`[data-panel="${id}"]`);
  panel.dataset.state = kind;
  if (kind === "ready") return;
  const body = clear(panelBody(id));
  body.append(el("p", { class: kind === "error" ? "message error" : "message" }, text));
}

async function guarded(id, load) {
  try {
    await load();
    document.querySelector(`[data-panel="${id}"]`).dataset.state = "ready";
  } catch (error) {
    if (error instanceof HttpError && error.status === 404) {
      setPanelState(id, "unavailable", "not available yet");
    } else if (error instanceof HttpError && error.status === 401) {
      throw error;
    } else {
      setPanelState(id, "error", error.message || String(error));
    }
  }
}

function tiles(container, items) {
  clear(container);
  const box = el("div", { class: "tiles" });
  for (const [label, value, name, raw] of items) {
    const tile = el("div", { class: "tile", "data-tile": name, "data-value": raw ?? value });
    tile.append(el("span", { class: "tile-value" }, value), el("span", { class: "tile-label" }, label));
    box.append(tile);
  }
  container.append(box);
}

function ago(iso) {
  if (!iso) return "never";
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (seconds < 90) return `${seconds} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} days ago`;
}

async function loadActivity({ from, to }) {
  const { days } = await get("/v1/activity", { from, to });
  const dates = days.map((d) => d.date);
  lineChart(
    panelBody("activity"),
    dates,
    [
      { name: "DAU", key: "dau", values: days.map((d) => d.dau) },
      { name: "WAU", key: "wau", values: days.map((d) => d.wau) },
      { name: "MAU", key: "mau", values: days.map((d) => d.mau) },
    ],
    { label: "daily, weekly and monthly active users" },
  );
  barChart(panelBody("new-users"), dates, [{ name: "New users", key: "new_users", values: days.map((d) => d.new_users), color: PALETTE[1] }], {
    label: "new users per day",
  });
  const last = days[days.length - 1] || {};
  const sum = (field) => days.reduce((total, d) => total + d[field], 0);
  tiles(panelBody("kpis"), [
    [`DAU on ${last.date ?? "–"}`, formatNumber(last.dau), "dau", last.dau],
    ["WAU", formatNumber(last.wau), "wau", last.wau],
    ["MAU", formatNumber(last.mau), "mau", last.mau],
    ["Stickiness (DAU/MAU)", last.stickiness == null ? "–" : `${(last.stickiness * 100).toFixed(1)}%`, "stickiness", last.stickiness],
    ["New users in range", formatNumber(sum("new_users")), "new_users", sum("new_users")],
    ["Events in range", formatNumber(sum("events")), "events", sum("events")],
  ]);
  document.querySelector('[data-panel="kpis"]').dataset.state = "ready";
  document.querySelector('[data-panel="new-users"]').dataset.state = "ready";
}

// The tracked breakdown keys, asked for once per refresh by the three panels that split by them.
function trackedKeys() {
  state.keys ??= get("/v1/breakdowns").then(
    (answer) => answer.keys,
    (error) => {
      state.keys = null; // not kept: a picker change asks again
      throw error;
    },
  );
  return state.keys;
}

// DAU per value of a tracked key (free / vip ...): the values with the most events in the range.
async function loadBreakdown({ from, to }) {
  const load = ++state.loads.breakdown;
  const keys = await trackedKeys();
  const picker = $("#breakdown-key");
  const badge = $("#breakdown-backfill");
  const untrack = $("#breakdown-untrack");
  picker.hidden = keys.length === 0;
  if (!keys.length) {
    state.breakdownKey = null;
    badge.hidden = untrack.hidden = true;
    setPanelState("breakdown", "empty", "no breakdown keys: track one (a property or trait, e.g. plan)");
    return;
  }
  if (!keys.some((k) => k.key === state.breakdownKey)) state.breakdownKey = keys[0].key;
  fillSelect(picker, keys.map((k) => [k.key, k.key]), state.breakdownKey);
  const key = state.breakdownKey;
  // PULSE_BREAKDOWN_KEYS are every project's: only the project's own keys can be untracked.
  untrack.hidden = keys.find((k) => k.key === key).configured;
  const report = await get("/v1/activity", { from, to, breakdown: key });
  if (load !== state.loads.breakdown) return; // a newer load (another key, range) draws
  badge.hidden = report.breakdown_backfill !== "running";
  if (!report.breakdown.length) {
    setPanelState("breakdown", "empty", `no active users with a ${key} in this range`);
    return;
  }
  // The API lists values by name; the lines are the most active ones (events in the range).
  const events = (s) => s.days.reduce((total, d) => total + d.events, 0);
  const top = [...report.breakdown].sort((a, b) => events(b) - events(a) || byGroup(a, b)).slice(0, BREAKDOWN_LINES);
  lineChart(
    panelBody("breakdown"),
    report.days.map((d) => d.date),
    top.map((s) => ({ name: groupName(s, key), key: `value-${groupKey(s)}`, values: s.days.map((d) => d.dau) })),
    { label: `daily active users by ${key}` },
  );
}

// The histogram of one period (the latest complete one by default): everyone's bars, or a line
// per value of a tracked key (the values with the most persons in that period).
async function loadStickiness({ from, to }) {
  const load = ++state.loads.stickiness;
  const period = state.stickinessPeriod;
  const keys = await trackedKeys();
  const split = $("#stickiness-split");
  split.hidden = keys.length === 0;
  state.stickinessKey = fillSplit(split, keys, state.stickinessKey);
  const key = state.stickinessKey;
  const report = await get("/v1/stickiness", key ? { from, to, period, breakdown: key } : { from, to, period });
  if (load !== state.loads.stickiness) return; // a newer load (another split, period) draws
  $("#stickiness-backfill").hidden = report.breakdown_backfill !== "running";
  const { periods } = report;
  const body = panelBody("stickiness");
  if (!periods.length) {
    setPanelState("stickiness", "empty", "no data in this range");
    return;
  }
  const starts = periods.map((p) => p.start);
  if (!starts.includes(state.stickinessStart)) state.stickinessStart = lastComplete(starts, period, to);
  const chosen = periods.find((p) => p.start === state.stickinessStart);
  const select = el("select", { class: "inline", "aria-label": "period shown" });
  for (const start of starts) select.append(el("option", { value: start }, `${period} of ${start}`));
  select.value = chosen.start;
  select.addEventListener("change", () => {
    state.stickinessStart = select.value;
    guarded("stickiness", () => loadStickiness(range()));
  });
  const chart = el("div");
  clear(body).append(select, el("p", { class: "axis-note" }, "persons by days active in the period"), chart);
  const days = chosen.histogram.map((_, i) => String(i + 1));
  if (!key) {
    barChart(chart, days, [{ name: `${period} of ${chosen.start}`, key: chosen.start, values: chosen.histogram }], {
      label: `persons by number of active days in the ${period} of ${chosen.start}`,
    });
    return;
  }
  const histogram = (s) => s.periods.find((p) => p.start === chosen.start).histogram;
  const persons = (s) => histogram(s).reduce((sum, n) => sum + n, 0);
  const top = report.breakdown.filter((s) => persons(s) > 0).sort((a, b) => persons(b) - persons(a) || byGroup(a, b)).slice(0, BREAKDOWN_LINES);
  if (!top.length) {
    setPanelState("stickiness", "empty", `no active users with a ${key} in the ${period} of ${chosen.start}`);
    return;
  }
  lineChart(chart, days, top.map((s) => ({ name: groupName(s, key), key: `value-${groupKey(s)}`, values: histogram(s) })), {
    label: `persons by number of active days in the ${period} of ${chosen.start}, by ${key}`,
  });
}

// Track another key (POST /v1/breakdowns) or stop tracking the picked one (DELETE): every split
// picker lists the keys anew, the activity panel showing the key just tracked.
async function trackKey(key) {
  $("#breakdown-track-error").textContent = "";
  try {
    await send("POST", "/v1/breakdowns", { key });
  } catch (error) {
    if (error instanceof HttpError && error.status === 401) throw error;
    $("#breakdown-track-error").textContent = error.message;
    return;
  }
  $("#breakdown-new-key").value = "";
  state.breakdownKey = key;
  await refresh();
}

async function untrackKey(key) {
  await send("DELETE", `/v1/breakdowns/${encodeURIComponent(key)}`);
  state.breakdownKey = null;
  await refresh();
}

// The latest period that ends within the range (a week still running has few days to show).
function lastComplete(starts, period, to) {
  const complete = starts.filter((start) => {
    const end = new Date(`${start}T00:00:00Z`);
    if (period === "week") end.setUTCDate(end.getUTCDate() + 6);
    else end.setUTCMonth(end.getUTCMonth() + 1, 0);
    return end.toISOString().slice(0, 10) <= to;
  });
  return complete.length ? complete[complete.length - 1] : starts[starts.length - 1];
}

// Everyone's lifecycle, or one group's of a tracked key (its persons with their own statuses),
// picked like retention's.
async function loadLifecycle({ from, to }) {
  const load = ++state.loads.lifecycle;
  const keys = await trackedKeys();
  const split = $("#lifecycle-split");
  split.hidden = keys.length === 0;
  state.lifecycleKey = fillSplit(split, keys, state.lifecycleKey);
  const picker = $("#lifecycle-value");
  const badge = $("#lifecycle-backfill");
  const query = { from, to, period: state.lifecyclePeriod };
  let periods;
  if (!state.lifecycleKey) {
    ({ periods } = await get("/v1/lifecycle", query));
    if (load !== state.loads.lifecycle) return; // a newer load (another split, period) draws
    picker.hidden = true;
    badge.hidden = true;
  } else {
    const report = await get("/v1/lifecycle", { ...query, breakdown: state.lifecycleKey });
    if (load !== state.loads.lifecycle) return;
    badge.hidden = report.breakdown_backfill !== "running";
    let group;
    [state.lifecycleValue, group] = pickGroup(picker, report.breakdown, state.lifecycleKey, state.lifecycleValue);
    periods = group?.periods;
    if (!periods) {
      setPanelState("lifecycle", "empty", `no active users with a ${state.lifecycleKey} in this range`);
      return;
    }
  }
  const labels = periods.map((p) => p.start);
  barChart(
    panelBody("lifecycle"),
    labels,
    [
      { name: "new", key: "new", values: periods.map((p) => p.new), color: PALETTE[1] },
      { name: "returning", key: "returning", values: periods.map((p) => p.returning), color: PALETTE[0] },
      { name: "resurrecting", key: "resurrecting", values: periods.map((p) => p.resurrecting), color: PALETTE[2] },
      { name: "dormant", key: "dormant", values: periods.map((p) => p.dormant), color: PALETTE[3] },
    ],
    { label: "lifecycle of active persons per period" },
  );
}

async function loadEvents({ from, to }) {
  const { events } = await get("/v1/events", { from, to });
  if (!events.length) {
    setPanelState("events", "empty", "no events in this range");
    return;
  }
  horizontalBars(
    panelBody("events"),
    events.slice(0, TOP_EVENTS).map((e) => ({
      label: e.event,
      value: e.count,
      note: `${formatNumber(e.count)} · ${formatNumber(e.persons)} persons`,
      data: { persons: e.persons },
    })),
    { key: "count", label: "top events by count" },
  );
}

async function loadStatus() {
  const status = await get("/v1/status");
  tiles(panelBody("status"), [
    ["events processed", formatNumber(status.events_processed), "events_processed", status.events_processed],
    ["duplicates dropped", formatNumber(status.duplicates_dropped), "duplicates_dropped", status.duplicates_dropped],
    ["rejected", formatNumber(status.rejected), "rejected", status.rejected],
    ["lag (events)", status.lag === null ? "unknown" : formatNumber(status.lag), "lag", status.lag],
    ["newest event applied", ago(status.processed_through), "processed_through", status.processed_through],
  ]);
  $("#freshness").textContent =
    `data through ${status.processed_through ? new Date(status.processed_through).toLocaleString() : "–"}` +
    ` · lag ${status.lag === null ? "unknown" : formatNumber(status.lag)}`;
  if (status.rejected > 0) {
    const { rejected } = await get("/v1/rejected", { limit: 5 });
    const list = el("ul", { class: "rejected" });
    for (const r of rejected) list.append(el("li", {}, `${r.reason}: ${r.detail}`));
    panelBody("status").append(el("p", { class: "axis-note" }, "latest rejected events"), list);
  }
}

// Everyone's cohorts, or one group's of a split by a tracked key (free, vip, … or no value).
async function loadRetention({ from, to }) {
  const load = ++state.loads.retention;
  const keys = await trackedKeys();
  state.retentionKey = fillSplit($("#retention-split"), keys, state.retentionKey);
  const picker = $("#retention-value");
  const badge = $("#retention-backfill");
  const query = { from, to, length: 14, period: "day", mode: "on" };
  let cohorts;
  if (!state.retentionKey) {
    ({ cohorts } = await get("/v1/retention", query));
    if (load !== state.loads.retention) return; // a newer load (another split, range) draws
    picker.hidden = true;
    badge.hidden = true;
  } else {
    const report = await get("/v1/retention", { ...query, breakdown: state.retentionKey });
    if (load !== state.loads.retention) return;
    badge.hidden = report.breakdown_backfill !== "running";
    let group;
    [state.retentionValue, group] = pickGroup(picker, report.breakdown, state.retentionKey, state.retentionValue);
    cohorts = group?.cohorts ?? [];
  }
  if (!cohorts.length) {
    setPanelState("retention", "empty", "no cohorts in this range");
    return;
  }
  // Days after today (the browser's, like the range presets) have not happened: blank cells.
  heatmap(panelBody("retention"), cohorts.slice(-30), { label: "retention by cohort day", today: daysAgo(0) });
}

// A split picker: `none` ("" : unsplit), then "by <key>" per tracked key. The key it shows: the
// picked one, or "" once that is no longer tracked.
function fillSplit(select, keys, picked, none = "everyone") {
  const key = keys.some((k) => k.key === picked) ? picked : "";
  fillSelect(select, [["", none], ...keys.map((k) => [k.key, `by ${k.key}`])], key);
  return key;
}

// A split's group picker, filled with the API's groups (the null group as NO_VALUE, shown as
// "no <key>"): the picked value while it is listed, else the first; the value and its group.
function pickGroup(picker, breakdown, key, picked) {
  const groups = breakdown.map((g) => [g.value ?? NO_VALUE, g]);
  picker.hidden = groups.length === 0;
  const value = groups.some(([v]) => v === picked) ? picked : groups.length ? groups[0][0] : null;
  fillSelect(picker, groups.map(([v, g]) => [v, g.value ?? `no ${key}`]), value);
  return [value, groups.find(([v]) => v === value)?.[1]];
}

// Replaces a <select>'s options only when they changed, so a refresh does not close it.
function fillSelect(select, options, value) {
  const signature = JSON.stringify(options);
  if (select.dataset.options !== signature) {
    clear(select);
    for (const [optionValue, text] of options) select.append(el("option", { value: optionValue }, text));
    select.dataset.options = signature;
  }
  select.value = value;
}

function orderText(order) {
  return { ordered: "in order", strict: "in strict order", any: "in any order" }[order] || order;
}

async function loadFunnels({ from, to }) {
  const load = ++state.loads.funnels;
  const { funnels } = await get("/v1/funnels");
  const picker = $("#funnel-picker");
  const badge = $("#funnel-backfill");
  const split = $("#funnel-split");
  picker.hidden = funnels.length === 0;
  if (!funnels.length) {
    state.funnelId = null;
    badge.hidden = true;
    split.hidden = true;
    setPanelState("funnels", "empty", "no funnels yet: define one with POST /v1/funnels");
    return;
  }
  if (!funnels.some((f) => String(f.id) === state.funnelId)) state.funnelId = String(funnels[0].id);
  fillSelect(picker, funnels.map((f) => [String(f.id), `${f.name} (#${f.id})`]), state.funnelId);
  const funnel = funnels.find((f) => String(f.id) === state.funnelId);
  const keys = await trackedKeys();
  split.hidden = keys.length === 0;
  state.funnelSplit = fillSplit(split, keys, state.funnelSplit, "no split");
  const params = state.funnelSplit ? { from, to, breakdown: state.funnelSplit } : { from, to };
  const report = await get(`/v1/funnels/${encodeURIComponent(funnel.id)}`, params);
  if (load !== state.loads.funnels) return; // a newer load (another funnel, range) draws
  badge.hidden = report.backfill !== "running";
  const { steps } = report;
  const entered = steps[0].users;
  const last = steps[steps.length - 1];
  const exclusions = funnel.exclusions.length ? ` · excluding ${funnel.exclusions.map((e) => e.event).join(", ")}` : "";
  const body = clear(panelBody("funnels"));
  body.append(
    el(
      "p",
      { class: "axis-note", "data-funnel": report.id },
      `${formatNumber(entered)} persons entered in the range · ${formatPercent(last.conversion_from_start)} reached ${last.event} · ` +
        `within ${formatDuration(funnel.window_seconds)}, ${orderText(funnel.order)}${exclusions}`,
    ),
  );
  const chart = el("div");
  body.append(chart);
  funnelChart(chart, steps, { key: `funnel-${report.id}`, label: `funnel ${report.name}: persons per step` });
  if (report.breakdown) body.append(conversionTable(state.funnelSplit, report.breakdown));
}

// Conversion per group of a split (the step-1 event's value, else the person's trait then).
function conversionTable(key, groups) {
  const table = el("table", { class: "split" });
  const head = el("tr");
  for (const title of [key, "entered", "converted", "conversion"]) head.append(el("th", {}, title));
  table.append(head);
  for (const group of groups) {
    const first = group.steps[0];
    const last = group.steps[group.steps.length - 1];
    const row = el("tr", { "data-value": group.value ?? "", "data-entered": first.users, "data-converted": last.users });
    row.append(
      el("td", {}, group.value ?? `no ${key}`),
      el("td", {}, formatNumber(first.users)),
      el("td", {}, formatNumber(last.users)),
      el("td", {}, formatPercent(last.conversion_from_start)),
    );
    table.append(row);
  }
  return table;
}

async function loadPaths({ from, to }) {
  const load = ++state.loads.paths;
  const { events } = await get("/v1/events", { from, to, limit: TOP_EVENTS });
  const picker = $("#paths-start");
  const names = events.map((e) => e.event);
  if (!names.length) {
    picker.hidden = true;
    setPanelState("paths", "empty", "no events in this range");
    return;
  }
  picker.hidden = false;
  if (!names.includes(state.pathsStart)) state.pathsStart = names[0];
  fillSelect(picker, names.map((name) => [name, name]), state.pathsStart);
  const start = state.pathsStart;
  const { edges } = await get("/v1/paths", { from, to, start_event: start, depth: PATHS_DEPTH, limit: PATHS_LIMIT });
  if (load !== state.loads.paths) return;
  if (!edges.length) {
    setPanelState("paths", "empty", `nobody did anything after ${start} in this range`);
    return;
  }
  const body = clear(panelBody("paths"));
  const chart = el("div");
  body.append(el("p", { class: "axis-note" }, `the ${PATHS_DEPTH} steps after each person's first ${start} (top ${PATHS_LIMIT} moves per step)`), chart);
  pathsChart(chart, start, edges, PATHS_DEPTH, { label: `paths after ${start}` });
}

// Everyone's sessions per day and dwell time, or per value of a tracked key (the values with
// the most sessions in the range): sessions per day, and the median dwell time.
async function loadSessions({ from, to }) {
  const load = ++state.loads.sessions;
  const keys = await trackedKeys();
  const split = $("#sessions-split");
  split.hidden = keys.length === 0;
  state.sessionsKey = fillSplit(split, keys, state.sessionsKey);
  const key = state.sessionsKey;
  const report = await get("/v1/sessions", key ? { from, to, breakdown: key } : { from, to });
  if (load !== state.loads.sessions) return; // a newer load (another split, range) draws
  const { days, rebuild } = report;
  $("#sessions-rebuild").hidden = rebuild !== "running";
  $("#sessions-backfill").hidden = report.breakdown_backfill !== "running";
  const dates = days.map((d) => d.date);
  const body = clear(panelBody("sessions"));
  const count = el("div");
  const dwell = el("div");
  body.append(count, el("p", { class: "axis-note" }, "dwell time (seconds)"), dwell);
  if (!key) {
    lineChart(count, dates, [{ name: "sessions", key: "sessions", values: days.map((d) => d.sessions) }], { height: 180, label: "sessions per day" });
    const figures = ["median_seconds", "mean_seconds"];
    lineChart(dwell, dates, figures.map((k, i) => ({ name: k.replaceAll("_", " "), key: k, values: days.map((d) => d[k]), color: PALETTE[(i + 2) % PALETTE.length] })), {
      height: 180,
      label: "session duration",
    });
    return;
  }
  if (!report.breakdown.length) {
    setPanelState("sessions", "empty", `no sessions of persons with a ${key} in this range`);
    return;
  }
  const total = (s) => s.days.reduce((sum, d) => sum + d.sessions, 0);
  const top = [...report.breakdown].sort((a, b) => total(b) - total(a) || byGroup(a, b)).slice(0, BREAKDOWN_LINES);
  lineChart(count, dates, top.map((s) => ({ name: groupName(s, key), key: `sessions-${groupKey(s)}`, values: s.days.map((d) => d.sessions) })), { height: 180, label: `sessions per day by ${key}` });
  lineChart(dwell, dates, top.map((s) => ({ name: groupName(s, key), key: `median-${groupKey(s)}`, values: s.days.map((d) => d.median_seconds) })), {
    height: 180,
    label: `median session duration by ${key}`,
  });
}

async function loadLive() {
  const live = await get("/v1/live");
  const numbers = Object.entries(live).filter(([k, v]) => typeof v === "number" && k !== "freshness");
  tiles(panelBody("live"), numbers.map(([k, v]) => [k.replaceAll("_", " "), formatNumber(v), k, v]));
}

const LOADERS = {
  activity: loadActivity,
  breakdown: loadBreakdown,
  stickiness: loadStickiness,
  lifecycle: loadLifecycle,
  events: loadEvents,
  status: loadStatus,
  retention: loadRetention,
  funnels: loadFunnels,
  paths: loadPaths,
  sessions: loadSessions,
  live: loadLive,
};

async function refresh() {
  if (!state.key) return;
  if (state.inFlight) {
    state.refreshAgain = true; // a key tracked mid-refresh: its panels load once this one ends
    return;
  }
  state.inFlight = true;
  $("#refresh-state").textContent = "updating…";
  try {
    const span = range();
    state.keys = null; // asked again, once, by the first panel that needs them
    const results = await Promise.allSettled(Object.entries(LOADERS).map(([id, load]) => guarded(id, () => load(span))));
    const refused = results.find((r) => r.status === "rejected");
    if (refused) {
      signOut("The gateway no longer accepts this read key. Sign in again.");
      return;
    }
    state.refreshes += 1;
    document.body.dataset.refreshes = String(state.refreshes);
    $("#refresh-state").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } finally {
    state.inFlight = false;
    if (state.refreshAgain) {
      state.refreshAgain = false;
      refresh();
    }
  }
}

function schedule() {
  clearInterval(state.timer);
  state.timer = setInterval(() => {
    if (!document.hidden) refresh();
  }, REFRESH_MS);
}

// ---- sign in / out ------------------------------------------------------------------------

async function signIn(key) {
  state.key = key;
  try {
    await get("/v1/status");
  } catch (error) {
    state.key = null;
    $("#signin-error").textContent =
      error instanceof HttpError && error.status === 401 ? "That read key was not accepted." : `Cannot reach the gateway: ${error.message}`;
    return;
  }
  sessionStorage.setItem(KEY_STORE, key);
  showBoard();
}

function signOut(message = "") {
  sessionStorage.removeItem(KEY_STORE);
  state.key = null;
  clearInterval(state.timer);
  for (const body of document.querySelectorAll(".panel .body")) clear(body);
  $("#board").hidden = true;
  $("#controls").hidden = true;
  $("#signin").hidden = false;
  $("#signin-error").textContent = message;
  $("#key").value = "";
  $("#key").focus();
}

function showBoard() {
  $("#signin").hidden = true;
  $("#board").hidden = false;
  $("#controls").hidden = false;
  refresh();
  schedule();
}

async function downloadCsv(path) {
  const span = range();
  const params = path === "/v1/rejected" ? { limit: 1000, format: "csv" } : { ...span, format: "csv" };
  let name = path.split("/").pop();
  if (path === "/v1/lifecycle") {
    params.period = state.lifecyclePeriod;
    if (state.lifecycleKey) {
      params.breakdown = state.lifecycleKey;
      name = `lifecycle-by-${state.lifecycleKey}`;
    }
  }
  if (path === "/v1/stickiness") {
    params.period = state.stickinessPeriod;
    if (state.stickinessKey) {
      params.breakdown = state.stickinessKey;
      name = `stickiness-by-${state.stickinessKey}`;
    }
  }
  if (path === "/v1/paths") Object.assign(params, { start_event: state.pathsStart, depth: PATHS_DEPTH, limit: PATHS_LIMIT });
  if (path === "/v1/retention") {
    Object.assign(params, { length: 14, period: "day", mode: "on" });
    if (state.retentionKey) params.breakdown = state.retentionKey;
  }
  if (path === "/v1/sessions" && state.sessionsKey) {
    params.breakdown = state.sessionsKey;
    name = `sessions-by-${state.sessionsKey}`;
  }
  if (path === "breakdown") {
    if (state.breakdownKey === null) return;
    Object.assign(params, { breakdown: state.breakdownKey });
    path = "/v1/activity";
    name = `activity-by-${state.breakdownKey}`;
  }
  if (path === "funnel") {
    if (state.funnelId === null) return;
    if (state.funnelSplit) params.breakdown = state.funnelSplit;
    path = `/v1/funnels/${encodeURIComponent(state.funnelId)}`;
    name = `funnel-${state.funnelId}`;
  }
  try {
    const text = await get(path, params);
    const link = el("a", { href: URL.createObjectURL(new Blob([text], { type: "text/csv" })), download: `${name}-${span.from}-${span.to}.csv` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  } catch (error) {
    $("#refresh-state").textContent = `CSV export failed: ${error.message}`;
  }
}

function wire() {
  $("#signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("#key").value.trim();
    if (key) signIn(key);
  });
  $("#signout").addEventListener("click", () => signOut());
  $("#refresh").addEventListener("click", () => refresh());
  for (const button of document.querySelectorAll("[data-days]")) {
    button.addEventListener("click", () => {
      setRange(Number(button.dataset.days));
      refresh();
    });
  }
  for (const input of [$("#from"), $("#to")]) {
    input.addEventListener("change", () => {
      for (const button of document.querySelectorAll("[data-days]")) button.classList.remove("active");
      if ($("#from").value && $("#to").value && $("#from").value <= $("#to").value) refresh();
    });
  }
  $("#stickiness-period").addEventListener("change", (event) => {
    state.stickinessPeriod = event.target.value;
    state.stickinessStart = null;
    guarded("stickiness", () => loadStickiness(range()));
  });
  $("#lifecycle-period").addEventListener("change", (event) => {
    state.lifecyclePeriod = event.target.value;
    guarded("lifecycle", () => loadLifecycle(range()));
  });
  $("#lifecycle-split").addEventListener("change", (event) => {
    state.lifecycleKey = event.target.value;
    state.lifecycleValue = null;
    guarded("lifecycle", () => loadLifecycle(range()));
  });
  $("#lifecycle-value").addEventListener("change", (event) => {
    state.lifecycleValue = event.target.value;
    guarded("lifecycle", () => loadLifecycle(range()));
  });
  $("#funnel-picker").addEventListener("change", (event) => {
    state.funnelId = event.target.value;
    guarded("funnels", () => loadFunnels(range()));
  });
  $("#retention-split").addEventListener("change", (event) => {
    state.retentionKey = event.target.value;
    state.retentionValue = null;
    guarded("retention", () => loadRetention(range()));
  });
  $("#retention-value").addEventListener("change", (event) => {
    state.retentionValue = event.target.value;
    guarded("retention", () => loadRetention(range()));
  });
  $("#breakdown-key").addEventListener("change", (event) => {
    state.breakdownKey = event.target.value;
    guarded("breakdown", () => loadBreakdown(range()));
  });
  $("#breakdown-track").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("#breakdown-new-key").value.trim();
    if (key) trackKey(key).catch(() => signOut("The gateway no longer accepts this read key. Sign in again."));
  });
  $("#breakdown-untrack").addEventListener("click", () => {
    guarded("breakdown", () => untrackKey(state.breakdownKey));
  });
  $("#stickiness-split").addEventListener("change", (event) => {
    state.stickinessKey = event.target.value;
    guarded("stickiness", () => loadStickiness(range()));
  });
  $("#sessions-split").addEventListener("change", (event) => {
    state.sessionsKey = event.target.value;
    guarded("sessions", () => loadSessions(range()));
  });
  $("#funnel-split").addEventListener("change", (event) => {
    state.funnelSplit = event.target.value;
    guarded("funnels", () => loadFunnels(range()));
  });
  $("#paths-start").addEventListener("change", (event) => {
    state.pathsStart = event.target.value;
    guarded("paths", () => loadPaths(range()));
  });
  for (const button of document.querySelectorAll("[data-csv]")) {
    button.addEventListener("click", () => downloadCsv(button.dataset.csv));
  }
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && state.key) refresh();
  });
  setRange(30);
  if (state.key) showBoard();
  else signOut();
}

wire();
