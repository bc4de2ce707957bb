package origin

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"marquee/cdn"
	"marquee/segmenter"
	"marquee/token"
)

const noStore = cdn.NoStore

// Server serves the public HTTP API of marquee.
type Server struct {
	cfg    Config
	hub    *segmenter.Hub
	ready  func() error
	policy cdn.Policy
	m      *Metrics
	log    *slog.Logger
	mux    *http.ServeMux
	page   *asset         // the dashboard, with this server's allowed origins
	hand   *handoff       // the writers of handed-off responses (handoff.go)
	tokens *token.Keyring // protected feeds and their keys (tokens.go)

	draining atomic.Bool // set by Drain with mu held; read without it by readiness

	mu      sync.Mutex           // guards the fields below
	streams map[*stream]struct{} // open streams; none is added once draining is set
	drained chan struct{}        // closed once draining is set and streams is empty

	// testHookAdmit, when set, runs in openStream just before a stream is
	// admitted (tests only: it lets a test run Drain at that point).
	testHookAdmit func()
}

// stream is one open streaming response (or held part request),
// registered for drain.
type stream struct {
	// ctx ends when the client goes away (the request's context ends,
	// until the response is handed off: see unlink), when Drain ends the
	// stream (errDrained) or when the stream is closed (errStreamDone).
	// It is not derived from the request's context, which net/http
	// cancels when the handler returns (also for a hijacked connection)
	// and which a handed-off stream must not keep alive, and carries none
	// of its values.
	ctx    context.Context
	cancel context.CancelCauseFunc
	// unlink stops the request's context from ending ctx (the hand-off:
	// the handler returns while the stream goes on). False when it
	// already has.
	unlink func() bool
	// sub is the handed-off response, told when Drain ends the stream.
	sub atomic.Pointer[sub]
	// expiry, set before the response is handed off, ends a tokened
	// direct-mode stream when its token expires; closeStream stops it.
	expiry *time.Timer
}

// end ends the stream with cause (Drain): its context, and its handed-off
// response if it has one.
func (st *stream) end(cause error) {
	st.cancel(cause)
	if sb := st.sub.Load(); sb != nil {
		sb.stop()
	}
}

// reasonOf returns the close reason of a stream whose context (or a
// context derived from it) is done, from its cause.
func reasonOf(ctx context.Context) string {
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errDrained):
		return reasonDrain
	case errors.Is(cause, errHoldExpired):
		return reasonRefused
	case errors.Is(cause, errTokenExpired):
		return reasonExpired
	default:
		return reasonClientGone
	}
}

// New returns a Server. ready reports whether the origin can serve current
// state (NATS connected and state loaded); nil means always ready. It
// panics when a route of cdn.PublicRoutes has no handler or a handler has
// no route (a programming error, caught by any test that calls New).
func New(cfg Config, hub *segmenter.Hub, ready func() error, m *Metrics, log *slog.Logger) *Server {
	if ready == nil {
		ready = func() error { return nil }
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		panic("origin: nil metrics")
	}
	p := cdn.DefaultPolicy()
	p.SegmentMargin = cfg.SegmentMargin
	// Checked by internal/app against the segment length before New.
	tokens, err := token.New(cfg.Tokens, hub.Config().SegmentLength)
	if err != nil {
		panic("origin: " + err.Error())
	}
	s := &Server{
		cfg:     cfg,
		hub:     hub,
		ready:   ready,
		policy:  p,
		m:       m,
		log:     log.With("component", "origin"),
		page:    dashboardPage(cfg.DashboardOrigins),
		streams: make(map[*stream]struct{}),
		drained: make(chan struct{}),
		tokens:  tokens,
	}
	mux, err := s.newMux(cdn.PublicRoutes, s.handlers())
	if err != nil {
		panic(err)
	}
	s.mux = mux
	s.hand = newHandoff(s, hub.Config().Keepalive)
	if tokens.Any() {
		s.log.Info("protected feeds", "feeds", cfg.Tokens.ProtectedFeeds, "key_ids", tokens.KeyIDs(), "window", tokens.Window(), "overlap", tokens.Overlap())
	}
	return s
}

// handlers returns the handler of every GET route, by the route's pattern
// in cdn.PublicRoutes.
func (s *Server) handlers() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"/{$}":                          s.handleDashboard,
		"/v1/client.js":                 s.handleClient,
		"/v1/board.js":                  s.handleBoard,
		"/v1/openapi.json":              s.handleOpenAPI,
		"/assets/{file}":                s.handleAsset,
		"/v1/feeds":                     s.handleFeeds,
		"/v1/feeds/{feed}":              s.public(s.handleDescriptor),
		"/v1/feeds/{feed}/snapshot":     s.public(s.handleSnapshot),
		"/v1/feeds/{feed}/segments/{n}": s.public(s.handleSegment),
		"/v1/feeds/{feed}/segments/{n}/parts/{k}":           s.public(s.handlePart),
		"/v1/feeds/{feed}/segments/{n}/upto/{k}":            s.public(s.handleUpto),
		"/v1/feeds/{feed}/events":                           s.public(s.handleDirect),
		"/v1/feeds/{feed}/t/{token}":                        s.tokened(s.handleDescriptor),
		"/v1/feeds/{feed}/t/{token}/snapshot":               s.tokened(s.handleSnapshot),
		"/v1/feeds/{feed}/t/{token}/segments/{n}":           s.tokened(s.handleSegment),
		"/v1/feeds/{feed}/t/{token}/segments/{n}/parts/{k}": s.tokened(s.handlePart),
		"/v1/feeds/{feed}/t/{token}/segments/{n}/upto/{k}":  s.tokened(s.handleUpto),
		"/v1/feeds/{feed}/t/{token}/events":                 s.tokened(s.handleDirect),
		"/healthz":                                          s.handleHealth,
		"/readyz":                                           s.handleReady,
	}
}

// newMux builds the public mux from a route table: the GET route of every
// entry of routes, served by handlers[pattern]. A route without a handler,
// a handler without a route, and a route listed twice are errors, so no
// route exists without an edge policy. Other methods: OPTIONS preflight
// under /v1/, and a JSON 404 for anything unmatched.
func (s *Server) newMux(routes []cdn.Route, handlers map[string]http.HandlerFunc) (*http.ServeMux, error) {
	mux := http.NewServeMux()
	listed := make(map[string]bool, len(routes))
	for _, rt := range routes {
		if listed[rt.Pattern] {
			return nil, fmt.Errorf("origin: route %s is listed twice", rt.Pattern)
		}
		listed[rt.Pattern] = true
		h, ok := handlers[rt.Pattern]
		if !ok {
			return nil, fmt.Errorf("origin: route %s has no handler", rt.Pattern)
		}
		mux.HandleFunc(http.MethodGet+" "+rt.Pattern, h)
	}
	var extra []string
	for p := range handlers {
		if !listed[p] {
			extra = append(extra, p)
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		return nil, fmt.Errorf("origin: handlers without a route in the table: %s", strings.Join(extra, ", "))
	}
	mux.HandleFunc("OPTIONS /v1/", s.handlePreflight)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, httpError{Code: http.StatusNotFound, Msg: "not found"})
	})
	return mux, nil
}

// Handler returns the HTTP handler of the public API.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &recorder{ResponseWriter: w}
	// Defaults for anything that does not set its own: never cached.
	s.policy.Set(w.Header(), noStore, time.Time{}, time.Time{})
	defer func() {
		route := r.Pattern
		if route == "" || route == "/" {
			route = "unmatched"
		}
		code := rec.code
		if code == 0 {
			code = http.StatusOK
		}
		s.m.requests.WithLabelValues(route, strconv.Itoa(code/100)+"xx").Inc()
	}()
	// marquee's public API takes no request bodies. A request that
	// announces one is refused below, whatever else is wrong with it; its
	// connection is closed after the answer and never waits long for a
	// body that may never come (net/http discards a little of it first).
	hasBody := r.ContentLength != 0 || len(r.TransferEncoding) > 0
	if hasBody {
		boundBody(rec, r)
	}
	// Refusals that need no route, before the mux sees the request (it
	// would redirect a path it cleans, and answer with a body).
	if !canonicalPath(r) {
		s.refuse(rec, r, refusedPath, httpError{Code: http.StatusBadRequest, Msg: "non-canonical path: percent-encoding, empty, \".\" and \"..\" segments are refused; request the path as marquee spells it"})
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodOptions {
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		s.refuse(rec, r, refusedMethod, httpError{Code: http.StatusMethodNotAllowed, Msg: "method not allowed"})
		return
	}
	if hasBody {
		s.refuse(rec, r, refusedBody, httpError{Code: http.StatusBadRequest, Msg: "a " + r.Method + " request must not have a body"})
		return
	}
	s.mux.ServeHTTP(rec, r)
}

// canonicalPath reports whether the request's path is spelt the one way
// marquee spells its URLs (CanonicalPath of what the client sent).
func canonicalPath(r *http.Request) bool { return CanonicalPath(r.URL.EscapedPath()) }

// CanonicalPath reports whether escaped, a request path as the client sent
// it (percent-encoding kept, as url.URL.EscapedPath returns it), is the one
// spelling marquee uses for that path, so that no edge keeps two cache
// objects (or opens two origin streams) for one resource. It is not when
// it holds any percent-encoding (no character of a marquee path needs
// one, so an escape is always a second spelling: "%31" of "1", "%2f" of
// "%2F") or any byte a path may not carry unencoded, an empty segment (a
// double slash, or a trailing slash after anything but the root), or a "."
// or ".." segment, or when it does not start with "/". Case is left
// alone: feed names are case-sensitive, and a route's words spelt in
// another case are simply not a route (404).
//
// The origin refuses every other spelling with 400 (no-store); the edge
// configurations (cdn/varnish, terraform/) refuse the same paths, as far
// as each can express the rule.
func CanonicalPath(escaped string) bool {
	if !strings.HasPrefix(escaped, "/") {
		return false
	}
	for i := 0; i < len(escaped); i++ {
		if !pathByte(escaped[i]) {
			return false
		}
	}
	if escaped == "/" {
		return true
	}
	for seg := range strings.SplitSeq(escaped[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// pathByte reports whether c may appear unencoded in a canonical path: an
// unreserved character, a sub-delimiter, ':', '@' or '/' (RFC 3986 pchar
// without pct-encoded).
func pathByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@/", c) >= 0
}

// bodyDrainTimeout bounds what net/http does with the body of a request
// refused for having one: after the handler returns it discards up to
// 256 KiB (its maxPostHandlerReadBytes; nothing when a larger body is
// declared) before closing the connection, so that the refusal is not lost
// to a TCP reset. Past this deadline it stops waiting for the body.
const bodyDrainTimeout = time.Second

// boundBody makes the connection of a request with a body close after the
// answer, and bounds how long net/http waits for the body it discards.
// The handler never reads the body.
func boundBody(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
		http.NewResponseController(w).SetReadDeadline(time.Now().Add(bodyDrainTimeout))
	}
}

// refuse answers e and counts the refusal under reason.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, reason string, e httpError) {
	s.m.refused.WithLabelValues(reason).Inc()
	s.writeError(w, r, e)
}

// recorder records the status code; Unwrap keeps http.ResponseController
// (flush, write deadlines) working through it.
type recorder struct {
	http.ResponseWriter
	code int
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (s *Server) handlePreflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Last-Event-ID, Cache-Control")
	h.Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, map[string]string{"status": "ok"})
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		s.writeError(w, r, httpError{Code: http.StatusServiceUnavailable, Msg: "draining"})
		return
	}
	if err := s.ready(); err != nil {
		s.writeError(w, r, httpError{Code: http.StatusServiceUnavailable, Msg: "not ready: " + err.Error()})
		return
	}
	s.writeJSON(w, map[string]string{"status": "ready"})
}

// responseID returns a new origin response id: 128 random bits (26
// characters of base32), so that ids say nothing about this process or
// how many responses it made, and two are the same only by a chance no
// deployment will meet.
func (s *Server) responseID() string { return rand.Text() }

// openStream registers a streaming response for drain. When the server is
// draining or at its stream cap it answers 503 itself and returns nil.
func (s *Server) openStream(w http.ResponseWriter, r *http.Request, mode string) *stream {
	if s.testHookAdmit != nil {
		s.testHookAdmit()
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	rctx := r.Context()
	st := &stream{ctx: ctx, cancel: cancel}
	st.unlink = context.AfterFunc(rctx, func() { cancel(context.Cause(rctx)) })
	if !s.admit(st) {
		st.unlink()
		cancel(errStreamDone)
		s.writeError(w, r, errUnavailable)
		return nil
	}
	s.m.openStreams.WithLabelValues(mode).Inc()
	return st
}

// admit registers st unless the server is draining or at its stream cap.
// Checking and registering under one lock, the lock under which Drain sets
// draining and takes its list, means a stream is either refused or ended
// by Drain: none slips in between.
func (s *Server) admit(st *stream) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining.Load() || (s.cfg.MaxStreams > 0 && len(s.streams) >= s.cfg.MaxStreams) {
		return false
	}
	s.streams[st] = struct{}{}
	return true
}

func (s *Server) closeStream(st *stream, mode, reason string) {
	if st.expiry != nil {
		st.expiry.Stop()
	}
	st.unlink()
	st.cancel(errStreamDone)
	s.mu.Lock()
	if _, ok := s.streams[st]; ok {
		delete(s.streams, st)
		if s.draining.Load() && len(s.streams) == 0 {
			close(s.drained)
		}
	}
	s.mu.Unlock()
	s.m.openStreams.WithLabelValues(mode).Dec()
	s.m.streamClosed.WithLabelValues(mode, reason).Inc()
	if reason == reasonSlow || reason == reasonWriteError {
		s.m.slowClosed.WithLabelValues(mode).Inc()
	}
}

var errUnavailable = httpError{Code: http.StatusServiceUnavailable, Msg: "server is draining or at capacity; retry"}

// Draining reports whether Drain has started.
func (s *Server) Draining() bool { return s.draining.Load() }

// Drain prepares shutdown: readiness reports 503 at once, new streams are
// refused, and after DrainDelay the open streams are ended in DrainBatches
// batches spread over DrainSpread (a stream of an unfinished segment is
// aborted). It returns when every stream has ended or ctx is done. A second
// call only waits for the same. Call http.Server.Shutdown afterwards.
func (s *Server) Drain(ctx context.Context) error {
	s.mu.Lock()
	first := !s.draining.Load()
	if first {
		s.draining.Store(true)
		if len(s.streams) == 0 {
			close(s.drained)
		}
	}
	open := len(s.streams)
	s.mu.Unlock()
	if first {
		s.log.Info("draining", "delay", s.cfg.DrainDelay, "spread", s.cfg.DrainSpread, "streams", open)
		if err := s.endStreams(ctx); err != nil {
			return err
		}
	}
	select {
	case <-s.drained:
		// Every stream is closed; the hand-off's goroutines end with them.
		if err := s.hand.wait(ctx); err != nil {
			return fmt.Errorf("origin: drain: %d hand-off goroutines still running: %w", s.hand.running.Load(), err)
		}
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		open = len(s.streams)
		s.mu.Unlock()
		return fmt.Errorf("origin: drain: %d streams still open: %w", open, ctx.Err())
	}
}

// endStreams waits DrainDelay, then ends the open streams in batches.
func (s *Server) endStreams(ctx context.Context) error {
	if err := sleep(ctx, s.cfg.DrainDelay); err != nil {
		return err
	}
	s.mu.Lock()
	all := make([]*stream, 0, len(s.streams))
	for st := range s.streams {
		all = append(all, st)
	}
	s.mu.Unlock()
	batches := max(s.cfg.DrainBatches, 1)
	per := (len(all) + batches - 1) / batches
	for i := 0; i < batches && len(all) > 0; i++ {
		n := min(per, len(all))
		for _, st := range all[:n] {
			st.end(errDrained)
		}
		all = all[n:]
		if len(all) > 0 {
			if err := sleep(ctx, s.cfg.DrainSpread/time.Duration(batches)); err != nil {
				return err
			}
		}
	}
	return nil
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// feed resolves the {feed} path value, answering 404 itself when unknown.
func (s *Server) feed(w http.ResponseWriter, r *http.Request) (*segmenter.Feed, bool) {
	name := r.PathValue("feed")
	f, ok := s.hub.Feed(name)
	if !ok {
		s.writeError(w, r, httpError{Code: http.StatusNotFound, Msg: "unknown feed"})
		return nil, false
	}
	s.m.feedSeen(f)
	return f, true
}
