// marquee public dashboard: every feed the origin lists, rendered with the
// browser client. Query parameters: ?origin=<base URL of another marquee>
// (cross-origin, no credentials) and ?mode=stream|parts|direct (default: the
// mode the origin's descriptor recommends). ?origin= is honoured only for
// this page's own origin and the origins the server lists in the page's
// data-origins attribute (MARQUEE_DASHBOARD_ORIGINS), so that a link cannot
// show another site's data under this site's address; the page's CSP
// (connect-src) allows the same and no more.
//
// Prices ({symbol, price, ...}) get a ticker table, scores ({home, away,
// home_score, away_score, ...}) a scoreboard, anything else a generic table.
// Data only ever reaches the page through textContent and attributes.

import { subscribe } from "../v1/client.js";

const SVG = "http://www.w3.org/2000/svg"; // a namespace name, never fetched
const MARK_MS = 10e3; // how long a score change stays marked
const SPARK = 40; // prices kept per sparkline

const q = new URLSearchParams(location.search);
const mode = ["stream", "parts", "direct"].find((m) => m == q.get("mode")); // else the descriptor's
const base = originParam(q.get("origin"));
const main = document.getElementById("feeds");
const summary = document.getElementById("summary");
const chips = document.getElementById("feed-status");
const views = new Map(); // feed name -> view

// What each feed applied, for tests and for the curious (see dump). Lists
// keep their newest STATS entries, so a page left open stays small.
const STATS = 50e3;
const stats = {};
const record = (list, x) => list.push(x) > STATS && list.splice(0, list.length - STATS);
window.__marqueeStats = stats;
window.__marquee = { views, dump, mode, base };

// dump returns each feed's state and counters as plain JSON, with the
// client's gap counters (gaps, repairs, gapsRepaired).
function dump() {
  const out = {};
  for (const [name, v] of views)
    out[name] = { ...stats[name], ...v.sub.stats, mode: v.sub.mode, seq: v.sub.seq, status: v.sub.status, state: Object.fromEntries(v.sub.state) };
  return out;
}

function originParam(s) {
  if (!s) return "";
  let u;
  try {
    u = new URL(s);
  } catch {}
  if (!u || (u.protocol != "http:" && u.protocol != "https:")) {
    console.warn("marquee: ignoring ?origin=, not an http(s) URL:", s);
    return "";
  }
  const allowed = (document.documentElement.dataset.origins || "").split(" ").filter(Boolean);
  if (u.origin != location.origin && !allowed.includes(u.origin)) {
    console.warn("marquee: ignoring ?origin=, not this page's origin nor one it allows (data-origins):", u.origin);
    return "";
  }
  return (u.origin + u.pathname).replace(/\/+$/, ""); // no credentials, query or fragment
}

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...kids);
  return e;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const num = (x, d = 2) =>
  typeof x == "number" && isFinite(x) ? x.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d }) : "—";
const signed = (x, d = 2) => (x > 0 ? "+" : x < 0 ? "−" : "±") + num(Math.abs(x), d);
const dir = (x) => (x > 0 ? "up" : x < 0 ? "down" : "flat");

function age(ms) {
  if (isNaN(ms)) return "—";
  if (ms < 1e3) return "< 1 s";
  if (ms < 60e3) return (ms / 1e3).toFixed(1) + " s";
  if (ms < 3600e3) return Math.round(ms / 60e3) + " min";
  return Math.round(ms / 3600e3) + " h";
}

// ---- feed kinds

function kindOf(value) {
  if (value && typeof value.price == "number") return prices;
  if (value && "home_score" in value && "away_score" in value) return scores;
  return generic;
}

const prices = {
  title: "Prices",
  cols: [
    { label: "Symbol", row: true },
    { label: "Name", cls: "name" },
    { label: "Last", cls: "num" },
    { label: "Change since the segment start", short: "Seg. chg", cls: "num" },
    { label: "Change today, percent", short: "Day", cls: "num" },
    { label: "Trend", cls: "trend" },
  ],
  order: (a, b) => a.localeCompare(b),
  fill(v, tr, key, x, prev) {
    const [sym, name, last, seg, day, trend] = tr.cells;
    sym.textContent = x.symbol || key;
    name.textContent = x.name || "";
    last.textContent = num(x.price);
    const from = v.baseline.get(key) ?? (prev && prev.price) ?? x.price;
    v.baseline.set(key, from);
    const d = x.price - from;
    seg.textContent = signed(d);
    seg.className = "num " + dir(d);
    const pct = typeof x.change_pct == "number" ? x.change_pct : ((x.price - x.open) / x.open) * 100;
    day.textContent = isFinite(pct) ? signed(pct) + " %" : "—";
    day.className = "num " + dir(pct);
    const h = v.spark.get(key) || [];
    if (h[h.length - 1] !== x.price) h.push(x.price);
    if (h.length > SPARK) h.shift();
    v.spark.set(key, h);
    sparkline(trend, h);
    if (prev && prev.price != x.price) flash(tr, x.price > prev.price ? "tick-up" : "tick-down");
  },
};

const scores = {
  title: "Scores",
  cols: [
    { label: "Game", row: true },
    { label: "Away", cls: "team away" },
    { label: "Score", sr: " (away, home)", cls: "score away", span: 2 },
    { cls: "score home", skip: true }, // under the span
    { label: "Home", cls: "team home" },
    { label: "Time", cls: "time" },
  ],
  order: (a, b) => a.localeCompare(b),
  fill(v, tr, key, x, prev) {
    const [game, away, as, hs, home, time] = tr.cells;
    game.replaceChildren(el("span", { class: "league" }, x.league || key.split(".")[0]),
      el("span", { class: "sr" }, ` ${x.away_name || x.away} at ${x.home_name || x.home}`));
    team(away, x.away, x.away_name);
    team(home, x.home, x.home_name);
    const started = x.status != "scheduled";
    as.textContent = started ? x.away_score : "";
    hs.textContent = started ? x.home_score : "";
    const lead = started && x.home_score != x.away_score ? (x.home_score > x.away_score ? "home" : "away") : "";
    for (const [c, side] of [[away, "away"], [as, "away"], [hs, "home"], [home, "home"]]) c.classList.toggle("lead", lead == side);
    const now = Date.now();
    const marks = v.marks.get(key) || {};
    if (prev && prev.away_score != null) {
      if (x.away_score != prev.away_score) marks.away = now;
      if (x.home_score != prev.home_score) marks.home = now;
    }
    v.marks.set(key, marks);
    mark(as, marks.away, now);
    mark(hs, marks.home, now);
    const st = x.status || "";
    const label = { live: "Live", final: /OT|SO/.test(x.period) ? "Final/" + x.period : "Final", scheduled: "Upcoming" }[st] || st;
    time.replaceChildren(el("span", { class: "badge " + st }, label));
    if (st == "live") {
      time.firstChild.className = "badge live sr";
      time.append(el("span", { class: "live-dot", "aria-hidden": "true" }, "●"), " " + [x.period, x.clock].filter(Boolean).join(" · "));
    }
  },
  // tick clears marks that have expired.
  tick(v, now) {
    for (const [key, m] of v.marks) {
      const tr = v.rows.get(key);
      if (!tr) continue;
      mark(tr.cells[2], m.away, now);
      mark(tr.cells[3], m.home, now);
    }
  },
};

const generic = {
  title: "",
  cols: null, // from the data: Key plus up to six fields
  order: (a, b) => a.localeCompare(b),
  fill(v, tr, key, x) {
    const [k, ...rest] = tr.cells;
    k.textContent = key;
    const obj = x && typeof x == "object" && !Array.isArray(x);
    v.fields.forEach((f, i) => {
      const y = obj ? x[f] : f == "value" ? x : undefined;
      rest[i].textContent = y == null ? "—" : typeof y == "object" ? JSON.stringify(y).slice(0, 80) : String(y);
      rest[i].className = typeof y == "number" ? "num" : "";
    });
  },
};

function team(td, code, name) {
  td.replaceChildren(el("b", {}, code || "?"), " ", el("span", { class: "team-name" }, name || ""));
}

function mark(td, at, now) {
  const on = !!at && now - at < MARK_MS;
  const m = td.querySelector(".mark");
  td.classList.toggle("scored", on);
  if (on && !m)
    td.append(el("span", { class: "mark", title: "score just changed" },
      el("span", { "aria-hidden": "true" }, "●"), el("span", { class: "sr" }, " (just changed)")));
  if (!on && m) m.remove();
}

function flash(tr, cls) {
  tr.classList.remove("tick-up", "tick-down");
  void tr.offsetWidth; // restart the animation
  tr.classList.add(cls);
}

function sparkline(td, h) {
  let svg = td.firstElementChild;
  if (!svg) {
    svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 100 24");
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.append(document.createElementNS(SVG, "polyline"));
    td.append(svg);
  }
  const lo = Math.min(...h), hi = Math.max(...h), span = hi - lo || 1;
  const pts = h.map((p, i) => `${h.length > 1 ? ((i * 100) / (h.length - 1)).toFixed(1) : 50},${(22 - ((p - lo) / span) * 20).toFixed(1)}`);
  svg.firstChild.setAttribute("points", pts.join(" "));
  svg.setAttribute("class", "spark " + dir(h[h.length - 1] - h[0]));
}

// ---- one view per feed

function addFeed(item) {
  const name = item.feed;
  const id = "feed-" + name.replace(/[^A-Za-z0-9_-]/g, "_");
  const caption = el("caption", {}, el("span", { class: "sr" }, name + " "), el("span", { class: "caption-note" }, ""));
  const table = el("table", { class: "feed-table" }, caption, el("thead"), el("tbody"));
  const section = el("section", { class: "feed", id, "aria-labelledby": id + "-h" },
    el("h2", { id: id + "-h" }, name), el("div", { class: "scroll" }, table));
  const chip = el("li", {}, el("span", { class: "dot", "aria-hidden": "true" }), el("b", {}, name), " ",
    el("span", { class: "state" }, "connecting"), el("span", { class: "age" }, ""), el("span", { class: "gaps" }, ""));
  chips.append(chip);
  section.dataset.feed = name;
  const stat = (stats[name] = {
    applied: [], snapshots: [], segments: [], droppedUpdates: 0, droppedGaps: 0, droppedSnapshots: 0, statuses: [], gapEvents: [],
  });
  const v = {
    name, section, table, chip, kind: null, fields: [], rows: new Map(), baseline: new Map(), spark: new Map(),
    marks: new Map(), segment: null, lastEvent: 0,
  };
  views.set(name, v);
  place(section);
  v.sub = subscribe(base, name, {
    mode,
    url: new URL(item.url, base ? base + "/" : location.href).href,
    onState(state, snap) {
      record(stat.snapshots, snap.seq);
      record(stat.segments, snap.segment);
      v.lastEvent = snap.time;
      v.segment = segIndex(v);
      v.baseline = new Map();
      for (const [k, x] of state) if (x && typeof x.price == "number") v.baseline.set(k, x.price);
      redraw(v);
    },
    onUpdate(key, value, prev, u) {
      record(stat.applied, u.seq);
      v.lastEvent = u.time;
      row(v, key, value, prev);
    },
    onDrop(seq, kind) {
      kind == "update" ? stat.droppedUpdates++ : kind == "gap" ? stat.droppedGaps++ : stat.droppedSnapshots++;
    },
    onGap(info) {
      record(stat.gapEvents, info);
      gapNote(v);
    },
    onStatus(s) {
      record(stat.statuses, s);
      chip.dataset.state = s;
      chip.querySelector(".state").textContent = s.replace("-", " ");
      updateSummary();
    },
  });
}

// place puts feed sections in a stable order: scores, prices, the rest.
function place(section) {
  const rank = (s) => ({ [scores.title]: 0, [prices.title]: 1 })[views.get(s.dataset.feed)?.kind?.title] ?? 2;
  const after = [...main.querySelectorAll("section.feed")].filter((s) => s != section)
    .find((s) => rank(s) > rank(section) || (rank(s) == rank(section) && s.dataset.feed > section.dataset.feed));
  main.insertBefore(section, after || null);
}

function segIndex(v) {
  const d = v.sub.descriptor;
  return d ? Math.floor((Date.now() + v.sub.skew) / (d.segment_length * 1e3)) : null;
}

function setKind(v, kind) {
  if (v.kind == kind && kind != generic) return;
  v.kind = kind;
  v.section.classList.remove("kind-prices", "kind-scores", "kind-generic");
  v.section.classList.add("kind-" + (kind == prices ? "prices" : kind == scores ? "scores" : "generic"));
  const cols = kind.cols || [{ label: "Key", row: true }, ...v.fields.map((f) => ({ label: f }))];
  const tr = el("tr");
  for (const c of cols) {
    if (c.skip) continue;
    const th = el("th", { scope: "col" });
    if (c.cls) th.className = c.cls;
    if (c.span) th.colSpan = c.span;
    if (c.short) {
      th.title = c.label;
      th.append(el("span", { "aria-hidden": "true" }, c.short), el("span", { class: "sr" }, c.label));
    } else th.append(c.label);
    if (c.sr) th.append(el("span", { class: "sr" }, c.sr));
    tr.append(th);
  }
  v.table.tHead.replaceChildren(tr);
  v.cols = cols;
  v.table.caption.lastChild.textContent =
    kind == prices ? "Change since the segment start; trend of recent updates." : kind == scores ? "● marks a score that just changed." : "";
  v.section.querySelector("h2").textContent = kind.title ? `${kind.title} (${v.name})` : v.name;
  place(v.section);
  for (const tr of v.rows.values()) tr.remove();
  v.rows.clear();
}

function genericFields(state) {
  const fields = [];
  for (const x of state.values()) {
    const ks = x && typeof x == "object" && !Array.isArray(x) ? Object.keys(x) : ["value"];
    for (const k of ks) if (!fields.includes(k) && fields.length < 6) fields.push(k);
  }
  return fields;
}

function redraw(v) {
  const state = v.sub.state;
  const first = state.values().next().value;
  const kind = state.size ? kindOf(first) : v.kind;
  if (kind == generic) v.fields = genericFields(state);
  if (kind) setKind(v, kind);
  for (const [key, tr] of v.rows) if (!state.has(key)) { tr.remove(); v.rows.delete(key); }
  for (const [key, x] of state) row(v, key, x, undefined, true);
  empty(v);
}

function row(v, key, x, prev, quiet) {
  let tr = v.rows.get(key);
  if (x == null) {
    tr?.remove();
    v.rows.delete(key);
    v.marks.delete(key);
    v.spark.delete(key);
    empty(v);
    return;
  }
  // The first entry decides the kind; a new field widens a generic table.
  if (!v.kind || (v.kind == generic && !quiet && genericFields(v.sub.state).join() != v.fields.join())) return redraw(v);
  if (!tr) {
    tr = el("tr", { "data-key": key });
    for (const c of v.cols) tr.append(c.row ? el("th", { scope: "row" }) : el("td", c.cls ? { class: c.cls } : {}));
    const keys = [...v.rows.keys()];
    const next = keys.filter((k) => v.kind.order(k, key) > 0).sort(v.kind.order)[0];
    v.table.tBodies[0].insertBefore(tr, next ? v.rows.get(next) : null);
    v.rows.set(key, tr);
    empty(v);
  }
  tr.dataset.seq = v.sub.seq;
  v.kind.fill(v, tr, key, x, quiet ? undefined : prev);
}

function empty(v) {
  const body = v.table.tBodies[0];
  const none = body.querySelector("tr.empty");
  if (v.rows.size && none) none.remove();
  if (!v.rows.size && !none)
    body.append(el("tr", { class: "empty" }, el("td", { colspan: String((v.cols || [1]).length) }, "No entries yet.")));
}

// ---- status line

// gapNote shows on the feed's chip, once the client met a gap, whether it
// is repairing one or how many it repaired.
function gapNote(v) {
  const { gaps, gapsRepaired } = v.sub.stats;
  const text = gaps > gapsRepaired ? " · repairing a gap" : ` · ${gaps} gap${gaps > 1 ? "s" : ""} repaired`;
  v.chip.querySelector(".gaps").textContent = gaps ? text : "";
}

const words = { live: "Live", "catching-up": "Catching up…", reconnecting: "Reconnecting…", offline: "Offline; retrying" };

function updateSummary() {
  const all = [...views.values()].map((v) => v.sub?.status || "catching-up");
  const worst = ["offline", "reconnecting", "catching-up", "live"].find((s) => all.includes(s)) || "catching-up";
  const text = words[worst];
  if (summary.textContent != text) summary.textContent = text;
  summary.dataset.state = worst;
}

// about names the modes in use, known once the descriptors are read.
function about() {
  const modes = [...new Set([...views.values()].map((v) => v.sub.mode).filter(Boolean))].join(", ") || mode || "…";
  const text = `Served by marquee · ${modes} mode${base ? " · origin " + base : ""}. Event age is the time since the newest event, corrected for clock skew.`;
  const footer = document.getElementById("about");
  if (footer.textContent != text) footer.textContent = text;
}

function tick() {
  const now = Date.now();
  about();
  for (const v of views.values()) {
    const a = v.lastEvent ? now + v.sub.skew - v.lastEvent : NaN;
    v.chip.querySelector(".age").textContent = v.lastEvent ? " · " + age(a) : "";
    const g = v.sub.stats;
    v.chip.title = `event age ${age(a)}; mode ${v.sub.mode || "…"}; gaps ${g.gaps} seen, ${g.gapsRepaired} repaired (${g.repairs} attempts)`;
    v.kind?.tick?.(v, now);
    // The segment changed on the wall clock (direct mode, or a quiet
    // feed): the change column starts again from the current prices.
    const n = segIndex(v);
    if (v.kind == prices && n != null && v.segment != null && n != v.segment) {
      v.segment = n;
      for (const [k, x] of v.sub.state) v.baseline.set(k, x.price);
      for (const [k, x] of v.sub.state) row(v, k, x, undefined, true);
    }
  }
}

async function listFeeds() {
  for (let wait = 500; ; wait = Math.min(wait * 2, 15e3)) {
    try {
      const r = await fetch((base || "") + "/v1/feeds", { credentials: "omit" });
      if (!r.ok) throw new Error("HTTP " + r.status);
      return (await r.json()).feeds || [];
    } catch (e) {
      summary.textContent = `Cannot list feeds (${e.message}); retrying…`;
      summary.dataset.state = "reconnecting";
    }
    await sleep(wait * (0.5 + Math.random() / 2));
  }
}

async function run() {
  about();
  for (;;) {
    const feeds = await listFeeds();
    for (const f of feeds) if (!views.has(f.feed)) addFeed(f);
    main.setAttribute("aria-busy", "false");
    if (!feeds.length) summary.textContent = "No feeds yet.";
    await sleep(60e3); // pick up feeds that appear later
  }
}

setInterval(tick, 500);
run();
