// <marquee-board>: one feed of a marquee origin as a live scoreboard,
// ticker or table, for any page on any site. One ES module, no
// dependencies, no build step; it reads the feed with the client served
// next to it (client.js).
//
//   <script type="module" src="https://marquee.example/v1/board.js"></script>
//   <marquee-board feed="scores" origin="https://marquee.example"></marquee-board>
//
// Attributes (all but feed optional; a change takes effect at once):
//   feed     the feed's name
//   origin   the marquee origin or CDN to read from; default: where board.js came from
//   src      the feed's descriptor URL, when not {origin}/v1/feeds/{feed}
//   mode     stream | parts | direct; default: what the descriptor recommends
//   kind     auto | scores | prices | table; default auto, from the first value:
//            {price} a ticker, {home_score, away_score} a scoreboard, else a table
//   heading  the title; default: the feed's name; empty: none
//   limit    show at most this many rows (after sorting)
//   keys     show only keys that start with one of these space-separated prefixes
//   sort     the column sorted by at first ("pct", "-pct": descending)
//   theme    light | dark; default: the viewer's prefers-color-scheme
//   token-url  a protected feed's token source (also data-token-url): the
//            URL of the site's endpoint that hands its users tokens, fetched
//            with the page's credentials; "{feed}" in it is replaced by the
//            feed's name, else ?feed= is added (see client.js)
//
// Theming: custom properties set on the element (or any ancestor), each
// with a light and a dark default: --marquee-bg, --marquee-fg,
// --marquee-muted, --marquee-line, --marquee-zebra, --marquee-accent,
// --marquee-up, --marquee-down, --marquee-live, --marquee-mark,
// --marquee-mark-bg, --marquee-stale-bg, --marquee-radius, --marquee-pad.
// The font is inherited: set font-family and font-size on the element.
// Parts, for ::part(): board, header, title, status, stale, table, sort,
// footer, asof.
//
// Properties: subscription (the client's, see client.js), kind ("scores",
// "prices", "table"; "" until known), status (the client's), hooks (extra
// client callbacks, called after the board's: set before it connects),
// tokenSource (instead of token-url: (feed) => Promise of a token, set
// before it connects).
// Event: "marquee-status" (bubbles), detail {status, stale}.
//
// While not live (after data was shown) the board is stale: the table
// carries data-stale, a note says since when, live dots are off. Data only
// ever reaches the page through textContent and attributes.

import { subscribe } from "./client.js";

const SVG = "http://www.w3.org/2000/svg"; // a namespace name, never fetched
const MARK_MS = 10e3; // how long a score change stays marked
const SPARK = 40; // prices kept per sparkline
const FIELDS = 8; // columns of a table beside the key
const here = new URL("..", import.meta.url).href.replace(/\/+$/, ""); // the origin board.js came from

const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...kids);
  return e;
};
const fin = (x) => typeof x == "number" && isFinite(x);
const num = (x, d = 2) => (fin(x) ? x.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d }) : "—");
const signed = (x, d = 2) => (fin(x) ? (x > 0 ? "+" : x < 0 ? "−" : "±") + num(Math.abs(x), d) : "—");
const dir = (x) => (x > 0 ? "up" : x < 0 ? "down" : "flat");
const clock = (t, o) => new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", ...o });

function ago(ms) {
  if (isNaN(ms)) return "";
  if (ms < 2e3) return "a moment ago";
  if (ms < 60e3) return Math.round(ms / 1e3) + " s ago";
  if (ms < 3600e3) return Math.round(ms / 60e3) + " min ago";
  return Math.round(ms / 3600e3) + " h ago";
}

// when is a time of day, with the weekday when it is not today.
function when(d) {
  const today = d.toDateString() == new Date().toDateString();
  return d.toLocaleString([], { weekday: today ? undefined : "short", hour: "2-digit", minute: "2-digit" });
}

// startOf returns a game's start time: start_time, starts_at or start, an
// RFC 3339 string or unix seconds or milliseconds.
function startOf(x) {
  for (const f of ["start_time", "starts_at", "start"]) {
    const v = x[f];
    if (v == null || v === "") continue;
    const d = new Date(typeof v == "number" ? (v < 1e11 ? v * 1e3 : v) : v);
    if (!isNaN(d)) return d;
  }
}

// ---- kinds: columns and how a row shows a value

const change = (x) => (fin(x.change) ? x.change : x.price - x.open);
const pct = (x) => (fin(x.change_pct) ? x.change_pct : ((x.price - x.open) / x.open) * 100);

const prices = {
  id: "prices",
  match: (x) => fin(x?.price),
  note: "Change since the day's open; trend of recent updates.",
  cols: [
    { id: "symbol", label: "Symbol", row: true, sort: (k, x) => x.symbol || k },
    { id: "name", label: "Name", sort: (k, x) => x.name || "" },
    { id: "last", label: "Last", num: true, sort: (k, x) => x.price },
    { id: "chg", label: "Chg", long: "Change since the open", num: true, sort: (k, x) => change(x) },
    { id: "pct", label: "Chg %", long: "Change since the open, percent", num: true, sort: (k, x) => pct(x) },
    { id: "trend", label: "Trend", long: "Trend of recent updates" },
  ],
  fill(v, tr, key, x, prev) {
    const [sym, name, last, chg, pc, trend] = tr.cells;
    sym.textContent = x.symbol || key;
    name.textContent = name.title = x.name || "";
    last.textContent = num(x.price);
    const c = change(x), p = pct(x);
    chg.textContent = signed(c);
    chg.dataset.dir = dir(c);
    pc.textContent = fin(p) ? signed(p) + " %" : "—";
    pc.dataset.dir = dir(p);
    const h = v.spark.get(key) || [];
    if (h[h.length - 1] !== x.price) h.push(x.price);
    if (h.length > SPARK) h.shift();
    v.spark.set(key, h);
    sparkline(trend, h);
    if (prev && prev.price != x.price) flash(tr, x.price > prev.price ? "tick-up" : "tick-down");
  },
};

const scores = {
  id: "scores",
  match: (x) => x && typeof x == "object" && "home_score" in x && "away_score" in x,
  note: "● marks a score that just changed.",
  cols: [
    { id: "game", label: "Game", row: true },
    { id: "team away", label: "Away" },
    { id: "score away", label: "Score", sr: " (away, home)", span: 2 },
    { id: "score home", skip: true }, // under the span
    { id: "team home", label: "Home" },
    { id: "time", label: "Time" },
  ],
  fill(v, tr, key, x, prev) {
    const [game, away, as, hs, home, time] = tr.cells;
    game.replaceChildren(el("span", { class: "league" }, x.league || key.split(".")[0]),
      el("span", { class: "sr" }, ` ${x.away_name || x.away} at ${x.home_name || x.home}`));
    team(away, x.away, x.away_name);
    team(home, x.home, x.home_name);
    const st = x.status || "", started = st != "scheduled";
    tr.className = st;
    as.textContent = started ? x.away_score : "";
    hs.textContent = started ? x.home_score : "";
    const lead = started && x.home_score != x.away_score ? (x.home_score > x.away_score ? "home" : "away") : "";
    for (const [c, side] of [[away, "away"], [as, "away"], [hs, "home"], [home, "home"]]) c.classList.toggle("lead", lead == side);
    const now = Date.now(), marks = v.marks.get(key) || {};
    if (prev && prev.away_score != null) {
      if (x.away_score != prev.away_score) marks.away = now;
      if (x.home_score != prev.home_score) marks.home = now;
    }
    v.marks.set(key, marks);
    mark(as, marks.away, now);
    mark(hs, marks.home, now);
    if (st == "live")
      time.replaceChildren(el("span", { class: "sr" }, "Live: "), el("span", { class: "live-dot", "aria-hidden": "true" }, "●"),
        " " + [x.period, x.clock].filter(Boolean).join(" · "));
    else if (st == "final") time.replaceChildren(el("span", { class: "badge" }, /OT|SO/.test(x.period) ? "Final/" + x.period : "Final"));
    else if (st == "scheduled") {
      const at = startOf(x);
      time.replaceChildren(el("span", { class: "badge" }, "Upcoming"), ...(at ? [" ", el("time", { datetime: at.toISOString() }, when(at))] : []));
    } else time.replaceChildren(st);
  },
  // tick clears marks that have expired.
  tick(v, now) {
    for (const [key, m] of v.marks) {
      const tr = v.rows.get(key);
      if (tr) mark(tr.cells[2], m.away, now), mark(tr.cells[3], m.home, now);
    }
  },
};

// A table: the key, then up to FIELDS fields; nested objects are
// flattened into dotted names (wind.kmh), arrays of plain values joined.
const table = {
  id: "table",
  note: "",
  fill(v, tr, key, x, prev) {
    const [k, ...rest] = tr.cells;
    k.textContent = key;
    const f = flat(x);
    v.fields.forEach((name, i) => {
      const y = f[name], td = rest[i], text = show(y);
      if (prev !== undefined && td.textContent != text) flash(td, "changed");
      td.textContent = text;
      td.classList.toggle("num", typeof y == "number");
    });
  },
};

const kinds = { prices, scores, table };

function flat(x, pre = "", out = {}) {
  if (x && typeof x == "object" && !Array.isArray(x) && pre.split(".").length < 4)
    for (const [k, y] of Object.entries(x)) flat(y, pre ? pre + "." + k : k, out);
  else out[pre || "value"] = x;
  return out;
}

function show(y) {
  if (y == null) return "—";
  if (Array.isArray(y) && y.every((v) => v == null || typeof v != "object")) y = y.join(", ");
  else if (typeof y == "object") y = JSON.stringify(y);
  y = String(y);
  return y.length > 200 ? y.slice(0, 199) + "…" : y;
}

function fieldsOf(state, wanted) {
  const fields = [];
  for (const [k, x] of state) if (wanted(k)) for (const f of Object.keys(flat(x))) if (!fields.includes(f) && fields.length < FIELDS) fields.push(f);
  return fields;
}

function team(td, code, name) {
  td.replaceChildren(el("b", {}, code || "?"), " ", el("span", { class: "team-name" }, name || ""));
}

function mark(td, at, now) {
  const on = !!at && now - at < MARK_MS, m = td.querySelector(".mark");
  td.classList.toggle("scored", on);
  if (on && !m)
    td.append(el("span", { class: "mark", title: "score just changed" },
      el("span", { "aria-hidden": "true" }, "●"), el("span", { class: "sr" }, " (just changed)")));
  if (!on && m) m.remove();
}

// flash tints e for a moment (cls: tick-up, tick-down, changed); the class
// goes when the animation ends (unflash), so a row that is moved (sorted)
// later does not flash again.
function flash(e, cls) {
  e.classList.remove("tick-up", "tick-down", "changed");
  void e.offsetWidth; // restart the animation
  e.classList.add(cls);
}

const unflash = (ev) => ev.target.classList.remove("tick-up", "tick-down", "changed");

function sparkline(td, h) {
  let svg = td.firstElementChild;
  if (!svg) {
    svg = document.createElementNS(SVG, "svg");
    for (const [k, v] of [["viewBox", "0 0 100 24"], ["preserveAspectRatio", "none"], ["aria-hidden", "true"], ["focusable", "false"], ["class", "spark"]])
      svg.setAttribute(k, v);
    svg.append(document.createElementNS(SVG, "polyline"));
    td.append(svg);
  }
  const lo = Math.min(...h), hi = Math.max(...h), span = hi - lo || 1;
  const pts = h.map((p, i) => `${h.length > 1 ? ((i * 100) / (h.length - 1)).toFixed(1) : 50},${(22 - ((p - lo) / span) * 20).toFixed(1)}`);
  svg.firstChild.setAttribute("points", pts.join(" "));
  svg.dataset.dir = dir(h[h.length - 1] - h[0]);
}

// compare orders numbers numerically, anything else as text (digits by
// value); missing values last.
function compare(x, y) {
  const nx = x == null || Number.isNaN(x), ny = y == null || Number.isNaN(y);
  if (nx || ny) return nx - ny;
  if (typeof x == "number" && typeof y == "number") return x - y;
  return String(x).localeCompare(String(y), undefined, { numeric: true });
}

// ---- the element

const words = { "": "Connecting", "catching-up": "Catching up", live: "Live", reconnecting: "Reconnecting", offline: "Offline" };
const sortName = (c) => c.name || c.id; // what the sort attribute names

export class MarqueeBoard extends HTMLElement {
  static observedAttributes = ["feed", "origin", "src", "mode", "token-url", "data-token-url", "kind", "heading", "limit", "keys", "sort"];

  hooks = {};
  tokenSource = null;
  // What the kinds' fill and tick see.
  #v = {
    rows: new Map(), // key -> tr
    spark: new Map(), // key -> recent prices
    marks: new Map(), // key -> {away, home}: when a score changed
    fields: [], // a table's fields
  };
  #sub;
  #kind = null;
  #cols = [];
  #sort = { id: "", dir: 1 };
  #had = false; // was live: not live is stale
  #said = ""; // the status last announced by an event
  #timer;
  #sortTimer;
  #ui;

  constructor() {
    super();
    const root = this.attachShadow({ mode: "open" });
    root.adoptedStyleSheets = [sheet()];
    const ui = (this.#ui = {
      title: el("h2", { part: "title" }),
      status: el("span", { part: "status", class: "status" }, words[""]),
      stale: el("p", { part: "stale", class: "stale-note", id: "stale", hidden: "" }),
      caption: el("caption", { class: "sr" }),
      head: el("thead"),
      body: el("tbody"),
      asof: el("span", { part: "asof", class: "asof" }),
      note: el("span", { class: "note" }),
    });
    ui.table = el("table", { part: "table" }, ui.caption, ui.head, ui.body);
    ui.board = el("section", { part: "board", class: "board" }, el("header", { part: "header" }, ui.title, ui.status),
      ui.stale, el("div", { class: "scroll" }, ui.table), el("footer", { part: "footer" }, ui.asof, ui.note));
    root.append(ui.board);
  }

  get subscription() {
    return this.#sub;
  }
  get kind() {
    return this.#kind?.id || "";
  }
  get status() {
    return this.#sub?.status || "";
  }

  connectedCallback() {
    if (!this.#sub) this.#start();
  }

  // disconnectedCallback closes the subscription unless the element was
  // only moved (taken out and put back in the same task).
  disconnectedCallback() {
    queueMicrotask(() => this.isConnected || this.#stop());
  }

  attributeChangedCallback(name, old, now) {
    if (old === now || !this.#sub) return;
    if (["feed", "origin", "src", "mode", "token-url", "data-token-url"].includes(name)) this.#stop(), this.#start();
    else {
      if (name == "sort") this.#sortFrom(now), this.#setKind(this.#kind);
      this.#redraw();
    }
  }

  #start() {
    const feed = this.getAttribute("feed");
    if (!feed) return;
    // A hook's exception is reported, never thrown into the client.
    const call = (f, ...a) => {
      try {
        this.hooks?.[f]?.(...a);
      } catch (e) {
        reportError(e);
      }
    };
    const origin = this.getAttribute("origin") || here, src = this.getAttribute("src");
    const tokenURL = this.getAttribute("token-url") || this.getAttribute("data-token-url");
    this.#sortFrom(this.getAttribute("sort"));
    this.#title();
    this.#setKind(null);
    this.#sub = subscribe(origin, feed, {
      mode: this.getAttribute("mode") || undefined,
      url: src ? new URL(src, location.href).href : undefined,
      token: this.tokenSource || tokenURL || undefined, // the client resolves it (after "{feed}")
      onState: (state, snap) => {
        this.#redraw();
        call("onState", state, snap);
      },
      onUpdate: (key, value, prev, u) => {
        this.#row(key, value, prev);
        call("onUpdate", key, value, prev, u);
      },
      onStatus: (s, info) => {
        this.#status();
        call("onStatus", s, info);
      },
      onDrop: (...a) => call("onDrop", ...a),
      onGap: (...a) => call("onGap", ...a),
    });
    this.#ui.board.dataset.feed = feed;
    this.#status();
    this.#empty();
    this.#timer = setInterval(() => this.#tick(), 1e3);
  }

  #stop() {
    this.#sub?.close();
    this.#sub = null;
    clearInterval(this.#timer);
    clearTimeout(this.#sortTimer);
    this.#had = false;
    this.#said = "";
    for (const tr of this.#v.rows.values()) tr.remove();
    this.#v.rows.clear();
    this.#v.spark.clear();
    this.#v.marks.clear();
    this.#ui.asof.replaceChildren();
  }

  #title() {
    const h = this.getAttribute("heading"), feed = this.getAttribute("feed") || "";
    const text = h ?? feed.charAt(0).toUpperCase() + feed.slice(1).replace(/[-_]+/g, " ");
    this.#ui.title.textContent = text;
    this.#ui.title.hidden = !text;
    this.#ui.board.setAttribute("aria-label", text || feed);
  }

  #wanted = (key) => {
    const keys = (this.getAttribute("keys") || "").split(" ").filter(Boolean);
    return !keys.length || keys.some((p) => key.startsWith(p));
  };

  #sortFrom(s) {
    s = s || "";
    this.#sort = { id: s.replace(/^-/, ""), dir: s.startsWith("-") ? -1 : 1 };
  }

  // #status shows the client's status, and marks the board stale while
  // it is not live after it was (the client is live once it holds data).
  #status() {
    if (!this.#sub) return; // in subscribe: called again after it
    const ui = this.#ui, s = this.status;
    if (s == "live") this.#had = true;
    const stale = this.#had && s != "live";
    ui.board.dataset.state = s;
    ui.status.textContent = words[s] || s;
    ui.board.classList.toggle("stale", stale);
    ui.table.toggleAttribute("data-stale", stale);
    stale ? ui.table.setAttribute("aria-describedby", "stale") : ui.table.removeAttribute("aria-describedby");
    ui.stale.hidden = !stale;
    if (!this.#v.rows.size) this.#empty();
    this.#tick();
    if (this.#said != s + stale) {
      this.#said = s + stale;
      this.dispatchEvent(new CustomEvent("marquee-status", { bubbles: true, detail: { status: s, stale } }));
    }
  }

  // #tick updates what depends on the clock: "as of", the stale note,
  // score marks.
  #tick() {
    const sub = this.#sub, ui = this.#ui;
    if (!sub) return;
    const t = sub.time, now = Date.now(), at = t && clock(t, { second: "2-digit" });
    if (t) {
      let time = ui.asof.querySelector("time");
      if (!time) ui.asof.replaceChildren("As of ", (time = el("time")));
      if (time.textContent != at) (time.textContent = at), time.setAttribute("datetime", new Date(t - (t % 1e3)).toISOString());
    }
    if (!ui.stale.hidden) {
      const text = `Not live (${(words[sub.status] || words[""]).toLowerCase()}): showing the state as of ${t ? at + ", " + ago(now + sub.skew - t) : "an earlier time"}.`;
      if (ui.stale.textContent != text) ui.stale.textContent = text;
    }
    this.#kind?.tick?.(this.#v, now);
  }

  #pickKind() {
    const forced = this.getAttribute("kind");
    if (Object.hasOwn(kinds, forced)) return kinds[forced];
    for (const [k, x] of this.#sub.state) if (this.#wanted(k)) return [prices, scores].find((kd) => kd.match(x)) || table;
    return this.#kind;
  }

  #setKind(kind) {
    const ui = this.#ui;
    this.#kind = kind;
    ui.table.className = kind ? kind.id : "";
    ui.note.textContent = kind?.note || "";
    ui.caption.textContent = [ui.title.textContent, kind?.note].filter(Boolean).join(". ");
    const cols = (this.#cols = !kind ? [] : kind.cols ||
      [{ id: "key", label: "Key", row: true, sort: (k) => k }, ...this.#v.fields.map((f) => ({ id: "field", name: f, label: f, sort: (k, x) => flat(x)[f] }))]);
    // The order kept: the one chosen, else the sort attribute's, else by the key.
    const by = (s) => cols.some((c) => c.sort && sortName(c) == s.id);
    if (kind && !by(this.#sort)) {
      this.#sortFrom(this.getAttribute("sort"));
      if (!by(this.#sort)) this.#sort = { id: sortName(cols.find((c) => c.sort) || {}) || "", dir: 1 };
    }
    const tr = el("tr");
    for (const c of cols) {
      if (c.skip) continue;
      const th = el("th", { scope: "col", class: c.id + (c.num ? " num" : "") });
      if (c.span) th.colSpan = c.span;
      const label = [c.long ? el("span", { "aria-hidden": "true" }, c.label) : c.label];
      if (c.long) label.push(el("span", { class: "sr" }, c.long)), (th.title = c.long);
      if (c.sr) label.push(el("span", { class: "sr" }, c.sr));
      if (c.sort) {
        const b = el("button", { type: "button", part: "sort" }, ...label, el("span", { class: "arrow", "aria-hidden": "true" }));
        b.addEventListener("click", () => this.#sortBy(c));
        th.classList.add("sortable");
        th.dataset.sort = sortName(c);
        th.append(b);
      } else th.append(...label);
      tr.append(th);
    }
    ui.head.replaceChildren(tr);
    this.#sorted();
    for (const tr of this.#v.rows.values()) tr.remove();
    this.#v.rows.clear();
  }

  // #sorted shows the sort order on the column headers.
  #sorted() {
    for (const th of this.#ui.head.querySelectorAll("th.sortable")) {
      const on = th.dataset.sort == this.#sort.id, d = this.#sort.dir > 0;
      on ? th.setAttribute("aria-sort", d ? "ascending" : "descending") : th.removeAttribute("aria-sort");
      th.querySelector(".arrow").textContent = on ? (d ? "▲" : "▼") : "";
    }
  }

  // #sortBy sorts by column c, or turns the order around when it is
  // sorted by c already: numbers first descending, text ascending.
  #sortBy(c) {
    const id = sortName(c);
    this.#sort = { id, dir: this.#sort.id == id ? -this.#sort.dir : c.num ? -1 : 1 };
    this.#sorted();
    this.#reorder();
  }

  // #reorder puts the rows in sort order and hides those past the limit.
  #reorder() {
    clearTimeout(this.#sortTimer);
    this.#sortTimer = 0;
    const body = this.#ui.body, st = this.#sub.state, n = parseInt(this.getAttribute("limit"), 10), limit = n > 0 ? n : Infinity;
    const c = this.#cols.find((c) => c.sort && sortName(c) == this.#sort.id), d = this.#sort.dir;
    const keys = [...this.#v.rows.keys()].map((k) => [k, c ? c.sort(k, st.get(k) ?? {}) : 0]);
    keys.sort((a, b) => compare(a[1], b[1]) * d || compare(a[0], b[0]));
    let at = body.querySelector("tr[data-key]");
    keys.forEach(([k], i) => {
      const tr = this.#v.rows.get(k);
      if (tr == at) at = at.nextElementSibling;
      else body.insertBefore(tr, at);
      tr.hidden = i >= limit;
    });
  }

  #redraw() {
    if (!this.#sub) return;
    const state = this.#sub.state, kind = this.#pickKind();
    this.#title();
    if (kind == table) {
      const f = fieldsOf(state, this.#wanted);
      if (f.join() != this.#v.fields.join() || this.#kind != table) (this.#v.fields = f), this.#setKind(table);
    } else if (kind != this.#kind) this.#setKind(kind);
    for (const [key, tr] of this.#v.rows) if (!state.has(key) || !this.#wanted(key)) tr.remove(), this.#v.rows.delete(key);
    for (const [key, x] of state) this.#row(key, x, undefined, true);
    this.#reorder();
    this.#empty();
    this.#status();
  }

  #row(key, x, prev, quiet) {
    if (!this.#wanted(key)) return;
    let tr = this.#v.rows.get(key);
    if (x == null) {
      tr?.remove();
      this.#v.rows.delete(key);
      this.#v.marks.delete(key);
      this.#v.spark.delete(key);
      this.#reorder(); // a row past the limit may show now
      return this.#empty();
    }
    // The first entry decides the kind; a new field widens a table.
    const wider = () => this.#v.fields.length < FIELDS && Object.keys(flat(x)).some((f) => !this.#v.fields.includes(f));
    if (!this.#kind || (!quiet && this.#kind == table && wider())) return this.#redraw();
    const fresh = !tr;
    if (fresh) {
      tr = el("tr", { "data-key": key });
      tr.addEventListener("animationend", unflash);
      for (const c of this.#cols) {
        const cls = c.id + (c.num ? " num" : "");
        tr.append(c.row ? el("th", { scope: "row", class: cls }) : el("td", { class: cls, "data-label": c.label || "" }));
      }
      this.#ui.body.append(tr);
      this.#v.rows.set(key, tr);
    }
    tr.dataset.seq = this.#sub.seq;
    this.#kind.fill(this.#v, tr, key, x, quiet ? undefined : prev);
    if (quiet) return;
    if (fresh) this.#reorder(), this.#empty();
    else if (!this.#sortTimer && !this.#cols.find((c) => c.row && sortName(c) == this.#sort.id)) this.#sortTimer = setTimeout(() => this.#reorder(), 250);
  }

  #empty() {
    const body = this.#ui.body;
    let none = body.querySelector("tr.empty");
    if (this.#v.rows.size) return none?.remove();
    if (!none) body.append((none = el("tr", { class: "empty" }, el("td"))));
    none.firstChild.colSpan = Math.max(1, this.#cols.length);
    none.firstChild.textContent = !this.#had ? "Waiting for data…" : this.getAttribute("keys") ? "No matching entries." : "No entries yet.";
  }
}

// ---- style: one sheet shared by every board, adopted by its shadow root
// (not subject to the page's style-src; no inline style needed).

const light = `--bg: var(--marquee-bg, #fff); --fg: var(--marquee-fg, #1f2328); --muted: var(--marquee-muted, #59636e);
  --line: var(--marquee-line, #d1d9e0); --zebra: var(--marquee-zebra, #f6f8fa); --accent: var(--marquee-accent, #0969da);
  --up: var(--marquee-up, #1a7f37); --down: var(--marquee-down, #cf222e); --live: var(--marquee-live, #cf222e);
  --mark: var(--marquee-mark, #9a6700); --mark-bg: var(--marquee-mark-bg, #fff8c5); --stale-bg: var(--marquee-stale-bg, #ffebe9);
  --tick-up: #dafbe1; --tick-down: #ffebe9; --stripe: #8c959f1f;`;
const dark = `--bg: var(--marquee-bg, #151b23); --fg: var(--marquee-fg, #e6edf3); --muted: var(--marquee-muted, #9198a1);
  --line: var(--marquee-line, #30363d); --zebra: var(--marquee-zebra, #1a2029); --accent: var(--marquee-accent, #4493f8);
  --up: var(--marquee-up, #3fb950); --down: var(--marquee-down, #f85149); --live: var(--marquee-live, #ff7b72);
  --mark: var(--marquee-mark, #e3b341); --mark-bg: var(--marquee-mark-bg, #3d2e00); --stale-bg: var(--marquee-stale-bg, #42191a);
  --tick-up: #12361f; --tick-down: #42191a; --stripe: #6e76811f;`;

const css = `
:host { display: block; color-scheme: light; ${light} --radius: var(--marquee-radius, 10px); --pad: var(--marquee-pad, 1rem); }
@media (prefers-color-scheme: dark) { :host(:not([theme=light])) { color-scheme: dark; ${dark} } }
:host([theme=dark]) { color-scheme: dark; ${dark} }
:host([hidden]) { display: none; }
* { box-sizing: border-box; }
.board { position: relative; container-type: inline-size; background: var(--bg); color: var(--fg); border: 1px solid var(--line);
  border-radius: var(--radius); padding: 0.7rem 0 0.5rem; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
header { display: flex; flex-wrap: wrap; align-items: baseline; justify-content: space-between; gap: 0.2rem 1rem; padding: 0 var(--pad) 0.4rem; }
h2 { margin: 0; font-size: 1.1em; line-height: 1.3; }
.status { display: inline-flex; align-items: center; gap: 0.35em; font-size: 0.8em; color: var(--muted); }
.status::before { content: ""; width: 0.55em; height: 0.55em; border-radius: 50%; background: var(--muted); }
[data-state=live] .status::before { background: var(--up); }
[data-state=catching-up] .status::before { background: var(--mark); }
[data-state=reconnecting] .status::before, [data-state=offline] .status::before { background: var(--down); }
.stale-note { margin: 0 var(--pad) 0.5rem; padding: 0.35rem 0.6rem; border-left: 3px solid var(--down); border-radius: 4px; background: var(--stale-bg); font-size: 0.85em; }
.stale-note[hidden] { display: none; }
.scroll { overflow-x: auto; }
table { width: 100%; border-collapse: collapse; }
th, td { padding: 0.4rem 0.6rem; text-align: left; border-top: 1px solid var(--line); white-space: nowrap; overflow-wrap: normal; }
th:first-child, td:first-child { padding-left: var(--pad); }
th:last-child, td:last-child { padding-right: var(--pad); }
thead th { font-size: 0.75em; text-transform: uppercase; letter-spacing: 0.04em; color: var(--muted); font-weight: 600; border-top: 0; vertical-align: bottom; }
th button { font: inherit; color: inherit; text-transform: inherit; letter-spacing: inherit; background: none; border: 0; margin: -0.15rem -0.25rem;
  padding: 0.15rem 0.25rem; border-radius: 4px; cursor: pointer; white-space: nowrap; }
th button:hover, th[aria-sort] button { color: var(--fg); }
th button:focus-visible { outline: 2px solid var(--accent); outline-offset: 0; }
.arrow { display: inline-block; min-width: 0.9em; font-size: 0.85em; text-align: right; }
tbody tr:nth-child(even of :not([hidden])) { background: var(--zebra); }
tr[hidden] { display: none !important; }
tbody th { font-weight: 700; }
.num { text-align: right; }
[data-dir=up] { color: var(--up); }
[data-dir=down] { color: var(--down); }
[data-dir=flat] { color: var(--muted); }
td[data-dir=up]::before { content: "▲ "; font-size: 0.7em; vertical-align: 0.1em; }
td[data-dir=down]::before { content: "▼ "; font-size: 0.7em; vertical-align: 0.1em; }
.empty td { color: var(--muted); text-align: center; padding: 1rem; white-space: normal; }
footer { display: flex; flex-wrap: wrap; justify-content: space-between; gap: 0 1rem; padding: 0.45rem var(--pad) 0; color: var(--muted); font-size: 0.8em; }
footer > :empty { display: none; }
.sr { position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; border: 0; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }

/* Ticker */
.prices td.name { width: 100%; max-width: 0; overflow: hidden; text-overflow: ellipsis; color: var(--muted); }
.prices .trend { width: 7rem; padding-top: 0.2rem; padding-bottom: 0.2rem; }
.spark { display: block; width: 6.5rem; height: 1.5rem; overflow: visible; }
.spark polyline { fill: none; stroke: currentColor; stroke-width: 1.6; vector-effect: non-scaling-stroke; stroke-linejoin: round; }
tr.tick-up { animation: tick-up 1.2s ease-out; }
tr.tick-down { animation: tick-down 1.2s ease-out; }
td.changed { animation: changed 1.5s ease-out; }
@keyframes tick-up { from { background: var(--tick-up); } }
@keyframes tick-down { from { background: var(--tick-down); } }
@keyframes changed { from { background: var(--mark-bg); } }

/* Scoreboard */
.league { display: inline-block; min-width: 2.8rem; padding: 0.05rem 0.4rem; border-radius: 4px; border: 1px solid var(--line);
  font-size: 0.75em; letter-spacing: 0.05em; text-align: center; }
.scores td.team { width: 50%; max-width: 0; line-height: 1.2; }
td.team b { display: block; }
.team-name { display: block; color: var(--muted); font-size: 0.8em; overflow: hidden; text-overflow: ellipsis; }
td.team.lead, td.team.lead .team-name { color: var(--fg); font-weight: 600; }
td.score { font-size: 1.15em; font-weight: 600; width: 3rem; color: var(--muted); position: relative; }
td.score.lead { color: var(--fg); font-weight: 800; }
td.score.away { text-align: right; padding-right: 0.9rem; }
td.score.home { text-align: left; padding-left: 0.9rem; }
td.score.home::before { content: "–"; position: absolute; left: -0.3rem; color: var(--muted); font-weight: 400; }
tr.scheduled td.score.home::before { content: none; }
td.scored { background: var(--mark-bg); }
.mark { color: var(--mark); font-size: 0.6rem; vertical-align: super; margin-left: 0.15rem; }
.badge { font-size: 0.75em; font-weight: 700; letter-spacing: 0.04em; text-transform: uppercase; color: var(--muted); }
.live-dot { color: var(--live); font-size: 0.8em; animation: pulse 2s ease-in-out infinite; }
@keyframes pulse { 50% { opacity: 0.4; } }

/* Table */
.table td, .table thead th { white-space: normal; overflow-wrap: anywhere; }

/* Stale: not live. Muted, hatched, no live dots. */
.stale tbody { color: var(--muted); background: repeating-linear-gradient(-45deg, transparent 0 8px, var(--stripe) 8px 16px); }
.stale tbody tr { background: none !important; }
.stale [data-dir], .stale td.score.lead, .stale td.team.lead, .stale td.team.lead .team-name { color: var(--muted); }
.stale .live-dot { display: none; }
.stale td.scored { background: none; }

@media (prefers-reduced-motion: reduce) {
  tr.tick-up, tr.tick-down, td.changed, .live-dot { animation: none; }
}

/* Narrow: rows reflow into two or three lines; a ticker keeps its sort buttons. */
@container (width < 36rem) {
  header, footer, .stale-note { --pad: 0.75rem; }
  .prices, .prices tbody, .table, .table tbody { display: block; }
  :is(.prices, .table) thead tr { display: flex; flex-wrap: wrap; gap: 0.3rem 0.9rem; padding: 0 0.75rem 0.45rem; }
  :is(.prices, .table) thead th { padding: 0; white-space: nowrap; }
  .prices thead th:not(.sortable) { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); }
  .prices tbody tr { display: grid; grid-template-columns: minmax(0, 1fr) 4.5rem auto auto; grid-template-areas: "symbol trend last last" "name trend chg pct";
    align-items: center; column-gap: 0.6rem; padding: 0.45rem 0.75rem; border-top: 1px solid var(--line); }
  .prices tbody tr > * { padding: 0; border: 0; }
  .prices tbody .symbol { grid-area: symbol; }
  .prices td.name { grid-area: name; font-size: 0.85em; width: auto; max-width: none; }
  .prices td.last { grid-area: last; font-weight: 600; }
  .prices td.chg { grid-area: chg; font-size: 0.85em; }
  .prices td.pct { grid-area: pct; font-size: 0.85em; }
  .prices td.trend { grid-area: trend; width: auto; }
  .prices .spark { width: 100%; }
  .table tbody tr { display: grid; grid-template-columns: minmax(5rem, max-content) minmax(0, 1fr); column-gap: 1rem; padding: 0.45rem 0.75rem; border-top: 1px solid var(--line); }
  .table tbody tr > * { padding: 0.1rem 0; border: 0; }
  .table tbody th { grid-column: 1 / -1; }
  .table tbody td { display: grid; grid-column: 1 / -1; grid-template-columns: subgrid; }
  .table tbody td::before { content: attr(data-label); color: var(--muted); font-size: 0.85em; }
  .table tbody td.num { text-align: left; }
  .empty td { display: block; }
}
@container (width < 32rem) {
  .scores, .scores tbody { display: block; }
  .scores thead { display: none; }
  .scores tbody tr { display: grid; grid-template-columns: minmax(0, 1fr) auto; grid-template-areas: "game time" "away as" "home hs";
    align-items: center; column-gap: 0.75rem; row-gap: 0.1rem; padding: 0.5rem 0.75rem; border-top: 1px solid var(--line); }
  .scores tbody tr > * { padding: 0; border: 0; }
  .scores tbody .game { grid-area: game; }
  .scores td.time { grid-area: time; text-align: right; font-size: 0.85em; }
  .scores td.team { width: auto; max-width: none; display: flex; align-items: baseline; gap: 0.45rem; min-width: 0; }
  .scores td.team.away { grid-area: away; } .scores td.team.home { grid-area: home; }
  td.team b { display: inline; } .team-name { flex: 1; min-width: 0; white-space: nowrap; font-size: 0.85em; }
  td.score { width: auto; text-align: right !important; padding: 0 0.1rem !important; }
  td.score.away { grid-area: as; } td.score.home { grid-area: hs; }
  td.score.home::before { content: none; }
}
`;

let shared;
function sheet() {
  if (!shared) (shared = new CSSStyleSheet()).replaceSync(css);
  return shared;
}

if (!customElements.get("marquee-board")) customElements.define("marquee-board", MarqueeBoard);
