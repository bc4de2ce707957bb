package origin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"marquee/cdn"
	"marquee/segmenter"
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
	idBase string // random per process, so response ids differ across replicas

	respSeq  atomic.Uint64
	draining atomic.Bool
	nstreams atomic.Int64

	mu      sync.Mutex // guards the fields below
	streams map[*stream]struct{}
	seen    map[string]bool // feeds whose metric labels exist
}

// stream is one open streaming response, registered for drain.
type stream struct {
	stop chan struct{} // closed by Drain
}

// context returns a child of parent that is also cancelled when Drain
// stops the stream (for waits that do not select on stop themselves).
func (st *stream) context(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	go func() {
		select {
		case <-st.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// New returns a Server. ready reports whether the origin can serve current
// state (NATS connected and state loaded); nil means always ready.
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
	var rb [4]byte
	rand.Read(rb[:])
	p := cdn.DefaultPolicy()
	p.SegmentMargin = cfg.SegmentMargin
	s := &Server{
		cfg:     cfg,
		hub:     hub,
		ready:   ready,
		policy:  p,
		m:       m,
		log:     log.With("component", "origin"),
		idBase:  hex.EncodeToString(rb[:]),
		streams: make(map[*stream]struct{}),
		seen:    make(map[string]bool),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/feeds", s.handleFeeds)
	mux.HandleFunc("GET /v1/feeds/{feed}", s.handleDescriptor)
	mux.HandleFunc("GET /v1/feeds/{feed}/snapshot", s.handleSnapshot)
	mux.HandleFunc("GET /v1/feeds/{feed}/segments/{n}", s.handleSegment)
	mux.HandleFunc("GET /v1/feeds/{feed}/segments/{n}/parts/{k}", s.handlePart)
	mux.HandleFunc("GET /v1/feeds/{feed}/segments/{n}/upto/{k}", s.handleUpto)
	mux.HandleFunc("GET /v1/feeds/{feed}/events", s.handleDirect)
	mux.HandleFunc("OPTIONS /v1/", s.handlePreflight)
	mux.HandleFunc("GET /{$}", s.handleDashboard)
	mux.HandleFunc("GET /v1/client.js", s.handleClient)
	mux.HandleFunc("GET /assets/{file}", s.handleAsset)
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.HandleFunc("GET /readyz", s.handleReady)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, httpError{Code: http.StatusNotFound, Msg: "not found"})
	})
	s.mux = mux
	return s
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
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodOptions {
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		s.writeError(rec, r, httpError{Code: http.StatusMethodNotAllowed, Msg: "method not allowed"})
		return
	}
	s.mux.ServeHTTP(rec, r)
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

// responseID returns a new origin response id.
func (s *Server) responseID() string {
	return s.idBase + "-" + strconv.FormatUint(s.respSeq.Add(1), 10)
}

// openStream registers a streaming response for drain. When the server is
// draining or at its stream cap it answers 503 itself and returns nil.
func (s *Server) openStream(w http.ResponseWriter, r *http.Request, mode string) *stream {
	if s.draining.Load() {
		s.writeError(w, r, errUnavailable)
		return nil
	}
	if n := s.nstreams.Add(1); s.cfg.MaxStreams > 0 && n > int64(s.cfg.MaxStreams) {
		s.nstreams.Add(-1)
		s.writeError(w, r, errUnavailable)
		return nil
	}
	st := &stream{stop: make(chan struct{})}
	s.mu.Lock()
	s.streams[st] = struct{}{}
	s.mu.Unlock()
	s.m.openStreams.WithLabelValues(mode).Inc()
	return st
}

func (s *Server) closeStream(st *stream, mode, reason string) {
	s.mu.Lock()
	delete(s.streams, st)
	s.mu.Unlock()
	s.nstreams.Add(-1)
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
// batches spread over DrainSpread. It returns when every stream has ended or
// ctx is done. Call http.Server.Shutdown afterwards.
func (s *Server) Drain(ctx context.Context) error {
	if s.draining.Swap(true) {
		return nil
	}
	s.log.Info("draining", "delay", s.cfg.DrainDelay, "spread", s.cfg.DrainSpread, "streams", s.nstreams.Load())
	if err := sleep(ctx, s.cfg.DrainDelay); err != nil {
		return err
	}
	s.mu.Lock()
	all := make([]*stream, 0, len(s.streams))
	for st := range s.streams {
		all = append(all, st)
	}
	s.mu.Unlock()
	batches := s.cfg.DrainBatches
	per := (len(all) + batches - 1) / batches
	for i := 0; i < batches && len(all) > 0; i++ {
		n := min(per, len(all))
		for _, st := range all[:n] {
			close(st.stop)
		}
		all = all[n:]
		if len(all) > 0 {
			if err := sleep(ctx, s.cfg.DrainSpread/time.Duration(batches)); err != nil {
				return err
			}
		}
	}
	for s.nstreams.Load() > 0 {
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return errors.Join(err, errors.New("streams still open"))
		}
	}
	return nil
}

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
	s.mu.Lock()
	if !s.seen[name] {
		s.seen[name] = true
		s.m.feedSeen(name)
	}
	s.mu.Unlock()
	return f, true
}
