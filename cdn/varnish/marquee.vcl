vcl 4.1;
# marquee.vcl: a self-hosted edge (Varnish Cache 7.x, VCL 4.1) in front of a
# marquee origin. See docs/cdn.md for how to run it and how it is tested.
#
# What it does, in one paragraph: every public route of marquee answers the
# same bytes to every viewer, so the edge caches them under their path alone.
# A stream-mode segment (GET /v1/feeds/{feed}/segments/{n}) is fetched once
# from the origin and streamed (beresp.do_stream) to every viewer of that
# segment, including viewers who join while it is still being written: they
# wait on Varnish's waiting list until the origin has sent the headers, then
# receive the object from byte 0 and follow it live. Direct mode and health
# routes are passed through uncached, /metrics is refused at the edge, and
# errors are never cached. The routes and their classes are those of
# cdn/routes.go; e2e/edge checks this file against that table.
#
# Verified with Varnish 7.1 (Debian 12 package) by the tests in e2e/edge.
# Those tests replace the "backend default" block below with the address of
# the origin under test; operators edit it (or generate it) the same way.
#
# To emulate an edge that buffers cacheable responses (as Cloudflare does),
# use marquee-buffered.vcl, which includes this file and turns streaming off
# for cacheable responses only.

# ---------------------------------------------------------------------------
# The origin. Point .host/.port at one marquee origin or at a load balancer in
# front of several replicas (replicas produce the same segment bytes, so any
# of them may answer any fetch). For several origins without a balancer, use
# a vmod_directors round-robin or fallback director over backends like this
# (e2e/edge TestEdgeTwoReplicas runs exactly this):
#
#   import directors;
#   backend replica0 { .host = "10.0.0.1"; .port = "8080"; ... as below ... }
#   backend replica1 { .host = "10.0.0.2"; .port = "8080"; ... }
#   sub vcl_init { new replicas = directors.round_robin();
#                  replicas.add_backend(replica0); replicas.add_backend(replica1); }
#   sub vcl_recv { set req.backend_hint = replicas.backend(); }   # before this file's
#
# Give each backend a .probe on the admin listener's /readyz so a replica that
# is loading, stalled or draining gets no fetches.
backend default {
    .host = "127.0.0.1";
    .port = "8080";
    # Connecting to the origin is local-network fast; fail over quickly.
    .connect_timeout = 2s;
    # The origin withholds the headers of a segment requested a little early
    # until the segment starts (MARQUEE_EARLY_HOLD, default 10s, at most 1m),
    # and the headers of an unfinished part until the part is finished. The
    # first byte may therefore legitimately take up to a minute.
    .first_byte_timeout = 75s;
    # A segment writes at least a keepalive comment every MARQUEE_KEEPALIVE
    # (default 15s); silence for four of them means the origin is gone.
    .between_bytes_timeout = 60s;
    # Readiness goes 503 first when an origin drains, so the edge stops
    # sending it new fetches before its streams end. .initial = .threshold
    # makes a freshly started edge trust the origin at once.
    .probe = {
        .url = "/readyz";
        .interval = 2s;
        .timeout = 1s;
        .window = 5;
        .threshold = 3;
        .initial = 3;
    }
}

# ---------------------------------------------------------------------------
# Client side: classify the request and make it identical for every viewer.
sub vcl_recv {
    # One spelling per URL. Every marquee path is spelt one way, and the
    # origin refuses any other spelling (400, no-store): percent-encoding
    # (no character of a marquee path needs it, so "/segments/%31" is only
    # a second spelling of "/segments/1", and "%2f" of "%2F"), any byte
    # outside what a path may carry unencoded, an empty segment ("//", or a
    # trailing "/" after anything but the root), a "." or ".." segment, and
    # a request target that is not a path ("*"; Varnish itself turns the
    # absolute form "http://host/path" into the path and Host). Refusing
    # them here, for every method, keeps them from becoming cache objects
    # of their own or, worse, passed requests that each open an origin
    # stream: they never reach the origin. Case is left alone: feed names
    # are case-sensitive, and route words spelt in another case are no
    # route (passed below, 404 at the origin).
    if (req.url !~ "^/" ||
        req.url ~ {"^[^?#]*([^A-Za-z0-9._~!$&'()*+,;=:@/?#-]|//|/\.\.?([/?#]|$))"} ||
        req.url ~ "^/[^?#]*/([?#]|$)") {
        return (synth(400, "non-canonical path"));
    }

    # Only GET and HEAD are ever cached. Everything else (CORS preflight
    # OPTIONS, and methods the origin answers with 405) goes to the origin
    # unchanged.
    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);
    }

    # Direct mode is per viewer (it resumes from Last-Event-ID) and the
    # origin marks it no-store: pass it, with every header, streamed. A
    # protected feed's routes have the window's token after the feed's name
    # (/v1/feeds/{feed}/t/{token}/...): the edge keys on the path, token
    # included, and the origin validates every token it is asked for, so a
    # cached object is only ever served to the URL the origin accepted.
    if (req.url ~ "^/v1/feeds/[^/?#]+(/t/[^/?#]+)?/events([?#]|$)") {
        return (pass);
    }

    # Health routes must reflect the origin now, never a copy.
    if (req.url ~ "^/(healthz|readyz)([?#]|$)") {
        return (pass);
    }

    # Metrics live on the origin's admin listener, which no edge should
    # point at; refuse the path anyway, as the Cloudflare and CloudFront
    # configurations do (cdn/routes.go: EdgeDeny), so that a mistake in the
    # backend address cannot publish them.
    if (req.url ~ "^/metrics([?#/]|$)") {
        return (synth(404, "not found"));
    }

    # From here on only public, cacheable routes. The query string (cache
    # busters such as ?t=123) and any fragment never change the response, so
    # they are cut off: the origin sees, and the cache is keyed on, the path.
    set req.url = regsub(req.url, "[?#].*$", "");

    # Stream mode segments and parts-mode parts, numbers spelt as the
    # origin accepts them (no leading zero, at most 15 digits; anything else
    # is passed and refused there). Nothing a browser adds per viewer may
    # reach the shared origin fetch or split the cache:
    if (req.url ~ "^/v1/feeds/[^/]+(/t/[^/]+)?/segments/(0|[1-9][0-9]{0,14})(/(parts|upto)/(0|[1-9][0-9]{0,14}))?$") {
        # Cookies and credentials: marquee never reads them.
        unset req.http.Cookie;
        unset req.http.Authorization;
        # EventSource sends Last-Event-ID when it reconnects and
        # "Cache-Control: no-cache" always; a segment answers the same
        # bytes from byte 0 regardless.
        unset req.http.Last-Event-ID;
        unset req.http.Cache-Control;
        unset req.http.Pragma;
        # A range or conditional request has no meaning for a live stream;
        # every viewer gets the whole body.
        unset req.http.Range;
        unset req.http.If-Range;
        unset req.http.If-None-Match;
        unset req.http.If-Modified-Since;
        # Streams are never compressed (compression buffers); see also
        # vcl_backend_fetch.
        unset req.http.Accept-Encoding;
        return (hash);
    }

    # Feed list, feed descriptor, snapshot JSON, dashboard, client script
    # and static assets: public, cached as long as the origin says. Varnish
    # answers conditional and range requests for these from the cache and
    # ignores the client's Cache-Control anyway; drop what would otherwise
    # make the built-in VCL pass the request.
    if (req.url ~ "^/v1/feeds(/[^/]+(/t/[^/]+)?(/snapshot)?)?$" ||
        req.url ~ "^/$" ||
        req.url ~ "^/v1/(client|board)\.js$" ||
        req.url ~ "^/assets/[^/]+$") {
        unset req.http.Cookie;
        unset req.http.Authorization;
        unset req.http.Cache-Control;
        unset req.http.Pragma;
        return (hash);
    }

    # Anything else is not a marquee route (the origin answers 404
    # no-store): pass it rather than create cache objects for it.
    return (pass);
}

# The cache key is the path alone (query string already removed): not the
# Host header, not cookies, not any other request header. Every viewer of a
# segment therefore finds the same object, whichever hostname it used.
sub vcl_hash {
    hash_data(req.url);
    return (lookup);
}

# ---------------------------------------------------------------------------
# Backend side.
sub vcl_backend_fetch {
    # Varnish asks the origin for gzip when http_gzip_support is on (the
    # default). marquee never compresses streams, but make sure: a
    # compressed stream would be buffered by the compressor.
    if (bereq.url ~ "^/v1/feeds/[^/]+(/t/[^/]+)?/segments/") {
        unset bereq.http.Accept-Encoding;
    }
    return (fetch);
}

sub vcl_backend_response {
    # Passed requests (direct mode, health, unknown routes): stream
    # them to their one viewer as they arrive; nothing is stored.
    if (bereq.uncacheable) {
        set beresp.do_stream = true;
        set beresp.do_gzip = false;
        return (deliver);
    }

    # Errors (404 too early, 410 gone, 503 draining or at capacity, ...),
    # anything marked no-store/no-cache/private, anything with Set-Cookie,
    # and anything without a positive TTL are never cached. They become a
    # hit-for-miss object for 1s: requests for the same path in that second
    # go to the origin each (no cache, but also no serialisation of the
    # waiting list behind an uncacheable answer, which is what a TTL of 0
    # would cause), and the next cacheable answer replaces it. 1s, not the
    # built-in 120s, so that a segment refused once (say while an origin
    # drained) is collapsed again a second later.
    if (beresp.status != 200 ||
        beresp.http.Set-Cookie ||
        beresp.http.Cache-Control ~ "(?i)(no-store|no-cache|private)" ||
        beresp.ttl <= 0s) {
        set beresp.ttl = 1s;
        set beresp.grace = 0s;
        set beresp.keep = 0s;
        set beresp.uncacheable = true;
        return (deliver);
    }

    # Nothing is ever ESI-processed or (un)compressed at the edge: a body
    # filter would have to buffer, and every viewer must get the origin's
    # exact bytes.
    set beresp.do_esi = false;
    set beresp.do_gzip = false;
    set beresp.do_gunzip = false;

    if (bereq.url ~ "^/v1/feeds/[^/]+(/t/[^/]+)?/segments/[0-9]+$") {
        # Stream mode. The TTL comes from the origin's s-maxage (segment
        # end + MARQUEE_SEGMENT_MARGIN while open; long and immutable once
        # closed) and is left alone. do_stream: deliver bytes as they
        # arrive, and let every later request for the segment attach to
        # this object while it is still being fetched.
        set beresp.do_stream = true;
        # No grace: an open segment past its TTL must not be served stale
        # while a background fetch runs, and no conditional revalidation.
        set beresp.grace = 0s;
        set beresp.keep = 0s;
    } elsif (bereq.url ~ "^/v1/feeds/[^/]+(/t/[^/]+)?/segments/[0-9]+/(parts|upto)/[0-9]+$") {
        # Parts mode: complete responses with Content-Length, immutable once
        # finished. The origin holds a request for an unfinished part until
        # it is finished; concurrent requests wait on the waiting list and
        # are all served by that one fetch. Streaming changes nothing for a
        # complete response but costs nothing either.
        set beresp.do_stream = true;
        set beresp.grace = 0s;
        set beresp.keep = 0s;
    } elsif (bereq.url ~ "^/v1/feeds(/[^/]+(/t/[^/]+)?(/snapshot)?)?$") {
        # Descriptor, feed list, snapshot: max-age=1, cut by the origin so
        # it never crosses a segment boundary. Grace would hand out a
        # descriptor that points at the previous segment: none.
        set beresp.grace = 0s;
        set beresp.keep = 0s;
    }
    # Static routes keep the origin's TTL and Varnish's default grace.

    # No return here on purpose: a file that includes this one may append
    # its own vcl_backend_response (marquee-buffered.vcl turns do_stream
    # off), and Varnish's built-in vcl_backend_response runs last. It finds
    # nothing to object to in what reaches this point.
}

# The origin is unreachable or timed out: answer 503 as JSON, never cached
# (hit-for-miss for 1s, as above), with the client's retry hint.
sub vcl_backend_error {
    set beresp.http.Content-Type = "application/json";
    set beresp.http.Cache-Control = "no-store";
    set beresp.http.Retry-After = "3";
    set beresp.http.Access-Control-Allow-Origin = "*";
    set beresp.body = {"{"error":"origin unavailable","code":"} + beresp.status + {"}
"};
    set beresp.ttl = 1s;
    set beresp.grace = 0s;
    set beresp.keep = 0s;
    set beresp.uncacheable = true;
    return (deliver);
}

# Answers made by the edge itself (the /metrics and non-canonical path
# refusals): JSON like the origin's errors, never cached.
sub vcl_synth {
    set resp.http.Content-Type = "application/json";
    set resp.http.Cache-Control = "no-store";
    set resp.http.Access-Control-Allow-Origin = "*";
    set resp.body = {"{"error":""} + resp.reason + {"","code":"} + resp.status + {"}
"};
    return (deliver);
}

# ---------------------------------------------------------------------------
# Delivery: tell viewers (and cdnprobe) how the edge answered. Viewers that
# attached to a segment still being fetched count as hits.
sub vcl_deliver {
    if (obj.uncacheable) {
        set resp.http.X-Cache = "PASS";
    } elsif (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
    set resp.http.X-Cache-Hits = obj.hits;
}
