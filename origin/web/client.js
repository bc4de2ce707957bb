// marquee browser client: one ES module, no dependencies, no build step.
//
//   import { subscribe } from "https://marquee.example/v1/client.js";
//   const feed = subscribe("https://marquee.example", "scores", {
//     onState(state, snap) {},          // a snapshot replaced the state (Map key -> value)
//     onUpdate(key, value, prev, u) {}, // one update applied; value null: key deleted
//     onStatus(status, info) {},        // "catching-up" | "live" | "reconnecting" | "offline"
//     onDrop(seq, kind) {},             // ignored: "update" (duplicate, old), "gap" (an update after one), "snapshot" (old)
//     onGap(info) {},                   // a gap seen ({held, prev, seq, key}) or repaired ({repaired: true, ms, repairs})
//     mode: "parts",                    // default: the descriptor's mode (else "stream")
//     token: "/live/token",             // protected feeds: a token source (below)
//   });
//   feed.state; feed.seq; feed.segment; feed.time; feed.status; feed.skew; feed.mode; feed.close();
//   feed.token; // protected feeds: {value, expires, start} (unix ms) of the token in use
//   feed.stats; // {gaps, repairs, gapsRepaired}: gaps seen, repair attempts, gaps repaired
//   // (feed.seq, feed.segment, feed.time: those of the state held; time, unix ms)
//
// State is the latest snapshot, then the updates whose seq is higher than
// held; anything else is dropped, so nothing is applied twice. The core
// below owns state, status, back-off and gap repair; a transport only opens
// connections and hands events to the sink (snapshot(s, "start" or
// "resync"), update(u), fail(error)). To add one, set
// transports.name = (descriptor, sink) => ({ close() {}, repair() {} })
// (repair, a re-join, is optional).
//
// Gaps: an update names the seq its feed held before it (prev). One with
// prev above the seq held shows that something was missed (say, an edge
// took parts k and k+1 from replicas that cut them differently): it is
// dropped and the client repairs itself (see gap). Updates without prev
// (older origins) are applied as before.
//
// Protected feeds: every URL holds the token of the current window
// (/v1/feeds/{feed}/t/{token}/...), the same for every viewer. The token
// source is a URL fetched with the page's credentials ("{feed}" in it is
// replaced, else ?feed= is added) or a function (feed) => Promise, giving
// {token, expires, window_start, descriptor_url} as `marquee token` prints.
// The client puts the current token into every URL it follows ("next"
// events name un-tokened ones) and renews it once the next window started
// (windows overlap, so the old one serves meanwhile).
//
// Modes: "stream" reads whole segments (edges that stream to late joiners),
// "parts" reads them in parts (edges that buffer whole responses), "direct"
// reads the uncached stream (no CDN).

export const transports = {};

export function subscribe(base, feed, o = {}) {
  const noop = () => {};
  const { onState = noop, onUpdate = noop, onStatus = noop, onDrop = noop, onGap = noop } = o;
  const root = String(base || "").replace(/\/+$/, "");
  const plain = new URL(o.url || root + "/v1/feeds/" + encodeURIComponent(feed), location.href);
  let desc = plain;
  const backoff = (n) => Math.min(o.maxDelay || 15e3, (o.minDelay || 500) * 2 ** n) * (0.5 + Math.random() / 2);
  let t, timer, waiting, fails = 0, since = 0, closed = false;
  // Tokens: tok, the one in use; stale, a failure since (to an
  // EventSource a refusal is any failure); win, the window length once
  // known; renewTimer, renewFails: the next renewal, failures in a row.
  const source = tokenSource(o.token, feed);
  let tok, stale = false, renewTimer, renewFails = 0, win = Infinity;
  // Gap repair (see gap): fix is the seq the state must reach, 0 with no
  // gap; fixTimer, the next attempt; again, the attempts at this gap.
  let fix = 0, fixTimer, fixAt, lastGap = 0, tries = 0, again;

  const sub = {
    feed, mode: o.mode, state: new Map(), seq: 0, status: "", skew: 0,
    stats: { gaps: 0, repairs: 0, gapsRepaired: 0 },
    close() {
      closed = true;
      clearTimeout(timer);
      clearTimeout(fixTimer);
      clearTimeout(renewTimer);
      t && t.close();
      removeEventListener("online", hurry);
    },
  };

  const sink = {
    abs: (u) => (tok ? retoken(new URL(u, desc)) : new URL(u, desc).href),
    get skew() { return sub.skew; },
    status(s, info) {
      if (s == "live") fails = since = 0;
      if (!closed && s != sub.status) onStatus(sub.status = s, info);
    },
    // snapshot replaces the state if its seq is not below the held one, or
    // if it is authoritative: a "resync" (the origin's state now: direct,
    // or a later snapshot in a segment) or the "start" of a later segment
    // than the held one's (a lower seq: sequences restarted). An older
    // start (a rejoin mid-segment) is dropped, but the transport delivers:
    // the updates after it bring the state forward.
    snapshot(d, kind) {
      const force = kind == "resync" || (kind == "start" && d.segment > sub.segment);
      if (d.seq < sub.seq && !force) onDrop(d.seq, "snapshot");
      else {
        sub.state = new Map(Object.entries(d.entries || {}));
        sub.seq = d.seq;
        sub.time = d.time;
        sub.segment = d.segment;
        onState(sub.state, d);
        healed(force);
      }
      sink.status("live");
    },
    update(u) {
      if (u.seq <= sub.seq) return onDrop(u.seq, "update");
      if (u.prev > sub.seq) return gap(u);
      const prev = sub.state.get(u.key);
      sub.seq = u.seq;
      sub.time = u.time;
      u.value == null ? sub.state.delete(u.key) : sub.state.set(u.key, u.value);
      onUpdate(u.key, u.value, prev, u);
      healed();
    },
    // fail ends the transport and starts again after a jittered back-off.
    fail(error) {
      if (closed) return;
      t && t.close();
      t = null;
      clearTimeout(timer);
      since ||= Date.now();
      stale = true;
      const wait = backoff(fails++);
      const off = navigator.onLine === false || Date.now() - since > (o.offlineAfter || 3e4);
      sink.status(off ? "offline" : "reconnecting", { error, wait });
      waiting = true;
      timer = setTimeout(start, wait);
    },
  };

  // gap drops u and, unless an attempt is due, makes one: at once, or
  // backed off while gaps recur within 30 s.
  function gap(u) {
    onDrop(u.seq, "gap");
    if (!fix) {
      sub.stats.gaps++;
      fixAt = Date.now();
      again = 0;
      onGap({ held: sub.seq, prev: u.prev, seq: u.seq, key: u.key });
    }
    fix = Math.max(fix, u.prev);
    if (Date.now() - lastGap > 3e4) tries = 0;
    lastGap = Date.now();
    if (!fixTimer) tries ? (fixTimer = setTimeout(repair, backoff(tries))) : repair();
  }

  // repair makes one attempt and, in case it does not heal the gap, has
  // the next one due after a back-off; one at a time, so no storm, and
  // gaps seen meanwhile wait for it. Attempts alternate between the
  // transport's repair (a re-join) and the snapshot JSON.
  function repair() {
    fixTimer = setTimeout(repair, backoff(++tries));
    sub.stats.repairs++;
    if (again++ % 2 == 0 && t && t.repair) return t.repair();
    fetch(sink.abs(sub.descriptor.snapshot_url), { credentials: "omit" })
      .then((r) => (r.ok ? r.json() : Promise.reject()))
      .then((x) => fix && !closed && sink.snapshot(x), noop);
  }

  // healed ends a repair once the state reached the gap's end, or an
  // authoritative snapshot (force) replaced it.
  function healed(force) {
    if (fix && (force || sub.seq >= fix)) {
      clearTimeout(fixTimer);
      fix = fixTimer = 0;
      sub.stats.gapsRepaired++;
      onGap({ held: sub.seq, repaired: true, ms: Date.now() - fixAt, repairs: again });
    }
  }

  // retoken puts the current token after the feed's name.
  const tail = new RegExp("^(.*/" + encodeURIComponent(feed).replace(/[.*+?^${}()|[\]\\]/g, "\\$&") +
    ")(?:/t/[^/]*)?((?:/(?:segments|snapshot|events)(?:/.*)?)?)$");
  function retoken(url) {
    const m = url.pathname.match(tail);
    if (m) url.pathname = m[1] + "/t/" + tok.value + m[2];
    return url.href;
  }

  // renew fetches a token; a failure keeps the old one and tries again
  // after a back-off (unless start does: once).
  async function renew(once) {
    clearTimeout(renewTimer);
    const held = tok;
    try {
      const x = (await source()) || {};
      if (closed) return;
      const ms = (v) => (typeof v == "number" ? v : Date.parse(v));
      const value = x.token, expires = ms(x.expires), start = ms(x.window_start);
      if (typeof value != "string" || !/^[\w.-]+$/.test(value) || !isFinite(expires)) throw new Error("token source: no token");
      if (held && start > held.start) win = Math.min(win, start - held.start); // two windows tell its length
      tok = sub.token = { value, expires, start };
      desc = new URL(x.descriptor_url || plain, plain);
      retoken(desc);
      stale = false;
      const same = held && held.value == value;
      renewFails = same ? renewFails + 1 : 0;
      schedule(same);
      if (held && !same) t && t.retoken && t.retoken();
    } catch (e) {
      if (!closed && !once) renewTimer = setTimeout(() => renew().catch(noop), backoff(renewFails++));
      throw e;
    }
  }

  // schedule has the next renewal due at the next window's start (else one
  // segment before expiry: the default overlap) plus a jitter, backed off
  // when it got the same token again (too early); never after expiry.
  function schedule(same) {
    clearTimeout(renewTimer);
    const seg = (sub.descriptor?.segment_length || 10) * 1e3;
    const end = tok.expires - sub.skew, last = end - Math.min(seg / 4, 1e3);
    const next = (isFinite(win) && isFinite(tok.start) ? tok.start + win : tok.expires - seg) - sub.skew;
    const at = same ? Date.now() + backoff(renewFails) : next + Math.random() * Math.min(seg / 4, 2e3);
    renewTimer = setTimeout(() => renew().catch(noop), Math.max(Math.min(at, last) - Date.now(), 1e3));
  }

  async function start() {
    waiting = false;
    try {
      // A token first; again after a failure or near its expiry.
      if (source && (!tok || stale || tok.expires - sub.skew < Date.now() + 1e3)) await renew(true);
      const t0 = Date.now();
      let r = await fetch(desc, { credentials: "omit" });
      // Refused: a new token once, then the error (backed off).
      if (source && r.status == 403) await renew(true), (r = await fetch(desc, { credentials: "omit" }));
      if (!r.ok) throw new Error("descriptor: HTTP " + r.status);
      const d = await r.json();
      if (closed) return;
      sub.skew = d.server_time - (t0 + Date.now()) / 2;
      sub.descriptor = d;
      sub.mode = o.mode || [d.mode, ...(d.modes || [])].find((m) => transports[m]) || "stream";
      const open = transports[sub.mode];
      if (!open) throw new Error("unknown mode " + sub.mode);
      sink.status("catching-up");
      t = open(d, sink);
      if (tok) schedule();
    } catch (e) {
      sink.fail(e);
    }
  }

  // hurry cuts a back-off short when the browser comes back online.
  function hurry() {
    if (waiting && !closed) {
      clearTimeout(timer);
      start();
    }
  }

  addEventListener("online", hurry);
  sink.status("catching-up");
  start();
  return sub;
}

// tokenSource returns a fetcher of feed's tokens from src (URL or
// function), or null.
function tokenSource(src, feed) {
  if (typeof src == "function") return async () => src(feed);
  const s = String(src || "");
  return src && (async () => {
    const u = new URL(s.replaceAll("{feed}", encodeURIComponent(feed)), location.href);
    if (!s.includes("{feed}")) u.searchParams.set("feed", feed);
    const r = await fetch(u, { credentials: "include", cache: "no-store" });
    if (!r.ok) throw new Error("token source: HTTP " + r.status);
    return r.json();
  });
}

// listen opens an EventSource and calls on(type, data) while ok() holds.
function listen(url, ok, on) {
  const es = new EventSource(url);
  for (const type of ["snapshot", "update", "next"])
    es.addEventListener(type, (e) => ok() && on(type, JSON.parse(e.data)));
  es.onerror = () => ok() && on("error");
  return es;
}

// stream follows the segments: it opens segment n+1 a little before n ends
// (the origin holds it until n+1 starts), switches on n+1's snapshot and
// closes n. A finished segment is never read twice: n is closed at its
// "next" event, before EventSource could reconnect to it. A repair reads
// the current segment again.
transports.stream = (d, sink) => {
  const len = d.segment_length * 1e3;
  const lead = Math.min(5e3, Math.max(500, len / 4));
  const grace = 5e3 + d.keepalive * 1e3;
  const end = (n) => d.segment_end + (n - d.segment) * len - sink.skew;
  let cur, next, timer;

  function open(n, url) {
    const c = { n, snaps: 0 };
    c.es = listen(sink.abs(url || d.url.replace(/\d+$/, n)), () => c == cur || c == next, (type, x) => {
      if (type == "snapshot") {
        if (c == next) {
          retire(cur);
          cur = c;
          next = null;
        }
        schedule(c);
        sink.snapshot(x, c.snaps++ ? "resync" : "start");
      } else if (type == "update") sink.update(x);
      else if (type == "next") {
        if (c != cur) return;
        next ||= open(x.segment, x.url);
        retire(c);
        cur = null;
      } else if (type == "error") sink.fail(new Error("segment " + n + ": connection failed"));
    });
    return c;
  }

  function retire(c) {
    c && c.es.close();
  }

  // schedule opens the next segment early, and fails if no switch happened
  // by the end of c plus a grace period (a stalled connection).
  function schedule(c) {
    clearTimeout(timer);
    timer = setTimeout(() => {
      next ||= open(c.n + 1);
      timer = setTimeout(() => sink.fail(new Error("segment " + c.n + " did not end")), end(c.n) + grace - Date.now());
    }, end(c.n) - lead - Date.now());
  }

  cur = open(d.segment, d.url);
  return {
    repair() {
      if (cur) retire(cur), (cur = open(cur.n));
    },
    close() {
      clearTimeout(timer);
      retire(cur);
      retire(next);
      cur = next = null;
    },
  };
};

// direct reads the uncached stream. On an error it does not let
// EventSource reconnect by itself: the core backs off with jitter and opens
// a new stream, which starts with a snapshot. (Resuming by Last-Event-ID is
// for plain EventSource viewers; a snapshot is right even when the origin
// restarted or is another replica: it replaces the state.) A repair opens
// a new stream.
transports.direct = (d, sink) => {
  let es;
  const open = () => {
    es && es.close();
    const me = (es = listen(sink.abs(d.direct_url), () => es == me, (type, x) => {
      if (type == "snapshot") sink.snapshot(x, "resync");
      else if (type == "update") sink.update(x);
      else if (type == "error") sink.fail(new Error("direct stream failed"));
    }));
  };
  open();
  return {
    repair: open,
    retoken: open, // before the origin ends it at the old token's expiry
    close() {
      es.close();
      es = null;
    },
  };
};

// events parses a body of whole SSE events into [type, data] pairs. The
// data carries seq, so "id:" and "retry:" are not needed; comments, events
// without data and an event cut off at the end are dropped.
function events(text) {
  return text.replace(/\r\n?/g, "\n").split("\n\n").slice(0, -1).flatMap((e) => {
    let type = "message", data = [];
    for (const line of e.split("\n")) {
      const [, f, v] = line.match(/^([^:]*):? ?(.*)/s);
      if (f == "event") type = v;
      else if (f == "data") data.push(v);
    }
    return data.length ? [[type, data.join("\n")]] : [];
  });
}

// parts reads segments in parts, one request at a time: upto/{k} (the
// snapshot and every update to the end of part k), then parts/{k+1}, ...
// The origin holds a request for the part in progress until it ends, so
// this never asks further ahead; the part with the "next" event ends the
// segment. Finished parts never change: caches may keep them. Errors but
// an early 404 (410: fell behind; 5xx; network; a request stalled for two
// parts and 15 s) end the transport: the core backs off and joins again.
// A repair joins again through upto/{k} of the part last read.
transports.parts = (d, sink) => {
  const ac = new AbortController();
  const ms = d.part_length * 1e3;
  let n = d.segment, k = d.part, url = d.upto_url, join = true, fresh = true, early = 0, last, redo, closed;
  // part == parts: this origin serves no part of the segment in progress
  // (it opened it in its last part); join at the next segment's start.
  if (k >= d.parts) (n = n + 1), (k = 0);
  (async () => {
    for (;;) {
      if (redo) ([n, k] = last), (url = d.upto_url), (join = fresh = true), (redo = false);
      const part = n + "/" + k;
      const timer = setTimeout(() => ac.abort(new Error("part " + part + " did not end")), 2 * ms + 15e3);
      const r = await fetch(sink.abs(url.replace("{n}", n).replace("{k}", k)),
        { cache: "default", credentials: "omit", mode: "cors", signal: ac.signal });
      const body = await r.text();
      clearTimeout(timer);
      if (redo) continue;
      // 404: not started yet by the origin's clock; ask again a little later.
      if (r.status == 404 && early++ < 4) await new Promise((f) => setTimeout(f, ms / 2));
      else if (!r.ok) throw new Error("part " + part + ": HTTP " + r.status);
      else {
        early = 0;
        last = [n, k];
        url = d.part_url;
        k++;
        for (const [type, data] of events(body)) {
          const x = JSON.parse(data);
          if (closed) return;
          if (redo) break;
          if (type == "snapshot") sink.snapshot(x, fresh ? "start" : "resync"), (join = fresh = false);
          else if (type == "update" && !join) sink.update(x);
          else if (type == "next") (n = x.segment), (k = 0), (fresh = true);
        }
        if (redo) continue;
        // An origin that opened the segment after part k has no snapshot
        // in upto/k: join again rather than apply updates to nothing.
        if (join) throw new Error("upto " + part + " holds no snapshot");
        if (k >= d.parts) throw new Error("segment " + n + " ended without next");
      }
    }
  })().catch((e) => closed || sink.fail(e));
  return {
    repair() {
      redo = !!last; // else the join in flight is one
    },
    close() {
      closed = true;
      ac.abort();
    },
  };
};
