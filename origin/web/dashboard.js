// marquee public dashboard: every feed the origin lists, each shown by a
// <marquee-board> (board.js, the element other sites embed), with the
// connection status of each in the header. Query parameters:
// ?origin=<base URL of another marquee> (cross-origin, no credentials) and
// ?mode=stream|parts|direct (default: the mode the origin's descriptor
// recommends). ?origin= is honoured only for this page's own origin and the
// origins the server lists in the page's data-origins attribute
// (MARQUEE_DASHBOARD_ORIGINS), so that a link cannot show another site's
// data under this site's address; the page's CSP (connect-src) allows the
// same and no more. ?token_url=<URL of the site's token endpoint> shows the
// protected feeds (MARQUEE_PROTECTED_FEEDS) too: each board fetches its
// feed's tokens there, with the page's credentials ("{feed}" in the URL is
// replaced by the feed's name, else ?feed= is added); the same origins as
// for ?origin= are honoured. Without it a protected feed is only named.
//
// The feed list is read again every LIST_MS (it is cacheable for 1 s, so
// an edge answers most of these), so a new feed shows within seconds.

import "../v1/board.js";

const LIST_MS = 3e3;

const q = new URLSearchParams(location.search);
const mode = ["stream", "parts", "direct"].find((m) => m == q.get("mode")); // else the descriptor's
const base = originParam(q.get("origin"));
const tokenURL = tokenParam(q.get("token_url"));
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
window.__marquee = { views, dump, mode, base, tokenURL };

// dump returns each feed's state and counters as plain JSON, with the
// client's gap counters (gaps, repairs, gapsRepaired).
function dump() {
  const out = {};
  for (const [name, v] of views) {
    const sub = v.board.subscription;
    if (sub)
      out[name] = { ...stats[name], ...sub.stats, mode: sub.mode, seq: sub.seq, status: sub.status, kind: v.board.kind, state: Object.fromEntries(sub.state) };
  }
  return out;
}

// allowedURL returns s as a URL if it is http(s) and of this page's origin
// or one the page allows (data-origins), else null with a warning.
function allowedURL(s, param) {
  let u;
  try {
    u = new URL(s, location.href);
  } catch {}
  if (!u || (u.protocol != "http:" && u.protocol != "https:")) {
    console.warn(`marquee: ignoring ?${param}=, not an http(s) URL:`, s);
    return null;
  }
  const allowed = (document.documentElement.dataset.origins || "").split(" ").filter(Boolean);
  if (u.origin != location.origin && !allowed.includes(u.origin)) {
    console.warn(`marquee: ignoring ?${param}=, not this page's origin nor one it allows (data-origins):`, u.origin);
    return null;
  }
  return u;
}

function originParam(s) {
  const u = s && allowedURL(s, "origin");
  return u ? (u.origin + u.pathname).replace(/\/+$/, "") : ""; // no credentials, query or fragment
}

// tokenParam keeps the token endpoint's query (it may name the site's own
// parameters) but never credentials or a fragment.
function tokenParam(s) {
  const u = s && allowedURL(s, "token_url");
  return u ? decodeURI(u.origin + u.pathname) + u.search : "";
}

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...kids);
  return e;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function age(ms) {
  if (isNaN(ms)) return "—";
  if (ms < 1e3) return "< 1 s";
  if (ms < 60e3) return (ms / 1e3).toFixed(1) + " s";
  if (ms < 3600e3) return Math.round(ms / 60e3) + " min";
  return Math.round(ms / 3600e3) + " h";
}

// ---- one board per feed

function addFeed(item) {
  const name = item.feed;
  if (item.protected && !tokenURL) return lockedFeed(name);
  const board = el("marquee-board", { feed: name });
  if (item.protected) board.setAttribute("token-url", tokenURL);
  else board.setAttribute("src", new URL(item.url, base ? base + "/" : location.href).href);
  if (base) board.setAttribute("origin", base);
  if (mode) board.setAttribute("mode", mode);
  const chip = el("li", {}, el("span", { class: "dot", "aria-hidden": "true" }), el("b", {}, name), " ",
    el("span", { class: "state" }, "connecting"), el("span", { class: "age" }, ""), el("span", { class: "gaps" }, ""));
  chips.append(chip);
  const stat = (stats[name] = {
    applied: [], snapshots: [], segments: [], droppedUpdates: 0, droppedGaps: 0, droppedSnapshots: 0, statuses: [], gapEvents: [],
  });
  const v = { name, board, chip, kind: "" };
  views.set(name, v);
  // The board's kind is known once data arrived: it decides the place.
  const placed = () => v.kind != board.kind && ((v.kind = board.kind), place(board));
  board.hooks = {
    onState(state, snap) {
      record(stat.snapshots, snap.seq);
      record(stat.segments, snap.segment);
      placed();
    },
    onUpdate(key, value, prev, u) {
      record(stat.applied, u.seq);
      placed();
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
  };
  place(board); // connects it: it subscribes
}

// lockedFeed names a protected feed the page has no token source for.
const locked = new Set();
function lockedFeed(name) {
  if (locked.has(name)) return;
  locked.add(name);
  const chip = el("li", { "data-state": "protected", title: "needs a token: open this page with ?token_url=" },
    el("span", { class: "dot", "aria-hidden": "true" }), el("b", {}, name), " ", el("span", { class: "state" }, "protected"));
  chips.append(chip);
}

// place puts boards in a stable order: scores, prices, the rest, each by
// feed name. Moving a board does not restart it.
function place(board) {
  const rank = (b) => ({ scores: 0, prices: 1 })[b.kind] ?? 2;
  const after = [...main.querySelectorAll("marquee-board")].filter((b) => b != board)
    .find((b) => rank(b) > rank(board) || (rank(b) == rank(board) && b.getAttribute("feed") > board.getAttribute("feed")));
  if (board.nextElementSibling != after || !board.isConnected) main.insertBefore(board, after || null);
}

// ---- status line

// gapNote shows on the feed's chip, once the client met a gap, whether it
// is repairing one or how many it repaired.
function gapNote(v) {
  const { gaps, gapsRepaired } = v.board.subscription.stats;
  const text = gaps > gapsRepaired ? " · repairing a gap" : ` · ${gaps} gap${gaps > 1 ? "s" : ""} repaired`;
  v.chip.querySelector(".gaps").textContent = gaps ? text : "";
}

const words = { live: "Live", "catching-up": "Catching up…", reconnecting: "Reconnecting…", offline: "Offline; retrying" };

function updateSummary() {
  const all = [...views.values()].map((v) => v.board.status || "catching-up");
  const worst = ["offline", "reconnecting", "catching-up", "live"].find((s) => all.includes(s)) || "catching-up";
  const text = words[worst];
  if (summary.textContent != text) summary.textContent = text;
  summary.dataset.state = worst;
}

// about names the modes in use, known once the descriptors are read.
function about() {
  const modes = [...new Set([...views.values()].map((v) => v.board.subscription?.mode).filter(Boolean))].join(", ") || mode || "…";
  const text = `Served by marquee · ${modes} mode${base ? " · origin " + base : ""}. Event age is the time since the newest event, corrected for clock skew.`;
  const footer = document.getElementById("about");
  if (footer.textContent != text) footer.textContent = text;
}

function tick() {
  const now = Date.now();
  about();
  for (const v of views.values()) {
    const sub = v.board.subscription;
    if (!sub) continue;
    const a = sub.time ? now + sub.skew - sub.time : NaN;
    v.chip.querySelector(".age").textContent = sub.time ? " · " + age(a) : "";
    const g = sub.stats;
    v.chip.title = `event age ${age(a)}; mode ${sub.mode || "…"}; gaps ${g.gaps} seen, ${g.gapsRepaired} repaired (${g.repairs} attempts)`;
  }
}

// run lists the feeds every LIST_MS (while the page is visible) and adds
// a board for each new one. Until the first list arrives, failures are
// shown and retried sooner, backed off; later the boards show their own
// status.
async function run() {
  about();
  for (let fails = 0; ; ) {
    if (!document.hidden || !views.size)
      try {
        const r = await fetch((base || "") + "/v1/feeds", { credentials: "omit" });
        if (!r.ok) throw new Error("HTTP " + r.status);
        const feeds = (await r.json()).feeds || [];
        for (const f of feeds) if (!views.has(f.feed) && !locked.has(f.feed)) addFeed(f);
        main.setAttribute("aria-busy", "false");
        if (!views.size) summary.textContent = locked.size ? "Protected feeds only: open this page with ?token_url=" : "No feeds yet.";
        fails = 0;
      } catch (e) {
        fails++;
        if (!views.size) {
          summary.textContent = `Cannot list feeds (${e.message}); retrying…`;
          summary.dataset.state = "reconnecting";
        }
      }
    const wait = views.size || !fails ? LIST_MS : Math.min(500 * 2 ** fails, 15e3);
    await sleep(wait * (0.75 + Math.random() / 2));
  }
}

setInterval(tick, 500);
run();
