// marquee browser client: one ES module, no dependencies, no build step.
//
//   import { subscribe } from "https://marquee.example/v1/client.js";
//   const feed = subscribe("https://marquee.example", "scores", {
//     onState(state, snap) {},          // a snapshot replaced the state (Map key -> value)
//     onUpdate(key, value, prev, u) {}, // one update applied; value null: key deleted
//     onStatus(status, info) {},        // "catching-up" | "live" | "reconnecting" | "offline"
//     onDrop(seq, kind) {},             // a duplicate or old event was ignored
//     mode: "parts",                    // default: the descriptor's mode (else "stream")
//   });
//   feed.state; feed.seq; feed.status; feed.skew; feed.mode; feed.close();
//
// State is the latest snapshot, then the updates whose seq is higher than
// held; anything else is dropped, so nothing is applied twice. The core
// below owns state, status and back-off; a transport only opens
// connections and hands events to the sink. To add one, set
// transports.name = (descriptor, sink) => ({ close() {} }).
//
// Modes: "stream" reads whole segments (edges that stream to late joiners),
// "parts" reads them in parts (edges that buffer whole responses), "direct"
// reads the uncached stream (no CDN).

export const transports = {};

export function subscribe(base, feed, o = {}) {
  const noop = () => {};
  const { onState = noop, onUpdate = noop, onStatus = noop, onDrop = noop } = o;
  const desc = new URL(o.url || String(base || "").replace(/\/+$/, "") + "/v1/feeds/" + encodeURIComponent(feed), location.href);
  let t, timer, waiting, fails = 0, since = 0, closed = false;

  const sub = {
    feed, mode: o.mode, state: new Map(), seq: 0, status: "", skew: 0,
    close() {
      closed = true;
      clearTimeout(timer);
      t && t.close();
      removeEventListener("online", hurry);
    },
  };

  const sink = {
    abs: (u) => new URL(u, desc).href,
    get skew() { return sub.skew; },
    status(s, info) {
      if (s == "live") fails = since = 0;
      if (!closed && s != sub.status) onStatus(sub.status = s, info);
    },
    // An older snapshot (a rejoin mid-segment) is dropped, but the
    // transport delivers: the updates after it bring the state forward.
    snapshot(d) {
      if (d.seq < sub.seq) onDrop(d.seq, "snapshot");
      else {
        sub.state = new Map(Object.entries(d.entries || {}));
        sub.seq = d.seq;
        sub.time = d.time;
        onState(sub.state, d);
      }
      sink.status("live");
    },
    update(u) {
      if (u.seq <= sub.seq) return onDrop(u.seq, "update");
      const prev = sub.state.get(u.key);
      sub.seq = u.seq;
      sub.time = u.time;
      u.value == null ? sub.state.delete(u.key) : sub.state.set(u.key, u.value);
      onUpdate(u.key, u.value, prev, u);
    },
    // fail ends the transport and starts again after a jittered back-off.
    fail(error) {
      if (closed) return;
      t && t.close();
      t = null;
      clearTimeout(timer);
      since ||= Date.now();
      const wait = Math.min(o.maxDelay || 15e3, (o.minDelay || 500) * 2 ** fails++) * (0.5 + Math.random() / 2);
      const off = navigator.onLine === false || Date.now() - since > (o.offlineAfter || 3e4);
      sink.status(off ? "offline" : "reconnecting", { error, wait });
      waiting = true;
      timer = setTimeout(start, wait);
    },
  };

  async function start() {
    waiting = false;
    try {
      const t0 = Date.now();
      const r = await fetch(desc, { credentials: "omit" });
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
// "next" event, before EventSource could reconnect to it.
transports.stream = (d, sink) => {
  const len = d.segment_length * 1e3;
  const lead = Math.min(5e3, Math.max(500, len / 4));
  const grace = 5e3 + d.keepalive * 1e3;
  const end = (n) => d.segment_end + (n - d.segment) * len - sink.skew;
  let cur, next, timer;

  function open(n, url) {
    const c = { n };
    c.es = listen(sink.abs(url || d.url.replace(/\d+$/, n)), () => c == cur || c == next, (type, x) => {
      if (type == "snapshot") {
        if (c == next) {
          retire(cur);
          cur = c;
          next = null;
        }
        schedule(c);
        sink.snapshot(x);
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
// restarted or is another replica.)
transports.direct = (d, sink) => {
  let ok = true;
  const es = listen(sink.abs(d.direct_url), () => ok, (type, x) => {
    if (type == "snapshot") sink.snapshot(x);
    else if (type == "update") sink.update(x);
    else if (type == "error") sink.fail(new Error("direct stream failed"));
  });
  return {
    close() {
      ok = false;
      es.close();
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
transports.parts = (d, sink) => {
  const ac = new AbortController();
  const ms = d.part_length * 1e3;
  let n = d.segment, k = d.part, url = d.upto_url, join = true, early = 0, closed;
  (async () => {
    for (;;) {
      const part = n + "/" + k;
      const timer = setTimeout(() => ac.abort(new Error("part " + part + " did not end")), 2 * ms + 15e3);
      const r = await fetch(sink.abs(url.replace("{n}", n).replace("{k}", k)),
        { cache: "default", credentials: "omit", mode: "cors", signal: ac.signal });
      const body = await r.text();
      clearTimeout(timer);
      // 404: not started yet by the origin's clock; ask again a little later.
      if (r.status == 404 && early++ < 4) await new Promise((f) => setTimeout(f, ms / 2));
      else if (!r.ok) throw new Error("part " + part + ": HTTP " + r.status);
      else {
        early = 0;
        url = d.part_url;
        k++;
        for (const [type, data] of events(body)) {
          const x = JSON.parse(data);
          if (closed) return;
          if (type == "snapshot") (join = false), sink.snapshot(x);
          else if (type == "update") sink.update(x);
          else if (type == "next") (n = x.segment), (k = 0);
        }
        // An origin that opened the segment after part k has no snapshot
        // in upto/k: join again rather than apply updates to nothing.
        if (join) throw new Error("upto " + part + " holds no snapshot");
        if (k >= d.parts) throw new Error("segment " + n + " ended without next");
      }
    }
  })().catch((e) => closed || sink.fail(e));
  return {
    close() {
      closed = true;
      ac.abort();
    },
  };
};
