package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"marquee/feed"
	"marquee/internal/netlimit"
	"marquee/openapi"
	"marquee/wire"
)

// Timeouts and sizes of the ingest listener's HTTP server (fixed).
const (
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout = 5 * time.Second
	// ReadTimeout bounds reading a whole request, body included.
	ReadTimeout = 15 * time.Second
	// IdleTimeout closes idle keep-alive connections.
	IdleTimeout = time.Minute
	// MaxHeaderBytes bounds a request's headers.
	MaxHeaderBytes = 16 << 10
)

// Path is the route of an ingest request; {feed} is the feed's name.
const Path = "/v1/ingest/{feed}"

// Deps are what a Server is given rather than builds.
type Deps struct {
	// NATS is the connection to publish on (the app's). Required.
	NATS *nats.Conn
	// JetStream must be true: with core NATS a retried delivery could not
	// be deduplicated, so New refuses (ErrNeedsJetStream).
	JetStream bool
	// Feed is the feed configuration whose validation, subject prefix,
	// allow-list and stream the ingest listener shares with the consumer.
	Feed feed.Config
	// Now is the clock of timestamp checks and rate limits. Nil: time.Now.
	Now func() time.Time
	// Metrics are required (NewMetrics).
	Metrics *Metrics
	// Log receives the listener's logs. Nil discards.
	Log *slog.Logger
}

// Server is the ingest listener: POST /v1/ingest/{feed} and GET
// /v1/openapi.json on its own address.
type Server struct {
	cfg   Config
	fcfg  feed.Config
	lim   feed.Limits
	nc    *nats.Conn
	js    jetstream.JetStream
	ver   *verifier
	rate  *limiter
	now   func() time.Time
	m     *Metrics
	log   *slog.Logger
	ln    net.Listener
	http  *http.Server
	apiJS []byte
}

// New validates cfg, binds the listener and returns the Server; nothing is
// served until Serve.
func New(cfg Config, deps Deps) (*Server, error) {
	if !cfg.Enabled() {
		return nil, errors.New("ingest: MARQUEE_INGEST_ADDR is empty")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !deps.JetStream {
		return nil, fmt.Errorf("%w: MARQUEE_INGEST_ADDR is set but MARQUEE_NATS_JETSTREAM is false; ingest publishes each update with its webhook-id as the JetStream message id so a retried delivery is stored once, which core NATS cannot do", ErrNeedsJetStream)
	}
	if deps.NATS == nil || deps.Metrics == nil {
		return nil, errors.New("ingest: nil nats connection or metrics")
	}
	ver, err := newVerifier(cfg.Secrets, cfg.Tolerance)
	if err != nil {
		return nil, fmt.Errorf("MARQUEE_INGEST_SECRETS: %w", err)
	}
	js, err := jetstream.New(deps.NATS,
		jetstream.WithPublishAsyncMaxPending(4*MaxUpdatesLimit),
		jetstream.WithPublishAsyncTimeout(cfg.RequestTimeout))
	if err != nil {
		return nil, fmt.Errorf("ingest: jetstream: %w", err)
	}
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	s := &Server{
		cfg: cfg, fcfg: deps.Feed, lim: deps.Feed.Limits(), nc: deps.NATS, js: js, ver: ver,
		rate: newLimiter(cfg.SenderRate, cfg.SenderBurst), now: now, m: deps.Metrics,
		log: log.With("component", "ingest"), apiJS: openapi.JSON(),
	}
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("MARQUEE_INGEST_ADDR: listen %s: %w", cfg.ListenAddr, err)
	}
	s.ln = netlimit.Listen(ln, cfg.MaxConns, s.m.refused, nil)
	s.http = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      cfg.RequestTimeout + 5*time.Second,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// Addr returns the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves until Shutdown or Close; it returns nil after either.
func (s *Server) Serve() error {
	if err := s.http.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops accepting requests and waits for those in flight (each
// bounded by MARQUEE_INGEST_TIMEOUT) until ctx ends, then closes the rest.
// Call it before the NATS connection closes. Idempotent.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	if err != nil {
		s.http.Close()
	}
	return err
}

// Close closes the listener at once (for a Server that was never served).
func (s *Server) Close() error {
	s.http.Close()
	return s.ln.Close()
}

// CheckStream logs a warning when the stream's duplicate window is shorter
// than Config.DuplicateWindow: a request replayed later than the window but
// within the tolerance would then be stored twice.
func (s *Server) CheckStream(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := s.js.Stream(ctx, s.fcfg.Stream)
	if err != nil {
		s.log.Warn("could not read the stream's duplicate window", "stream", s.fcfg.Stream, "err", err)
		return
	}
	if have, want := st.CachedInfo().Config.Duplicates, s.cfg.DuplicateWindow(); have < want {
		s.log.Warn("the stream's duplicate window is shorter than twice MARQUEE_INGEST_TOLERANCE: a replayed webhook may be stored twice; raise the stream's duplicate window (or set MARQUEE_NATS_MANAGE_STREAM=true) or lower the tolerance",
			"stream", s.fcfg.Stream, "duplicate_window", have, "want", want)
	}
}

// Handler returns the ingest listener's HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(Path, s.handleIngest)
	mux.HandleFunc("/v1/openapi.json", s.handleOpenAPI)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.refuse(w, resultNotFound, http.StatusNotFound, "not found")
	})
	return mux
}

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		s.refuse(w, resultMethod, http.StatusMethodNotAllowed, "method not allowed: GET the description")
		return
	}
	s.m.requests[resultOpenAPI].Inc()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Length", strconv.Itoa(len(s.apiJS)))
	if r.Method == http.MethodGet {
		w.Write(s.apiJS)
	}
}

// message is one validated update, ready to publish.
type message struct {
	subject string
	data    []byte // compacted JSON object; empty deletes the key
	suffix  string // of the message id: "" for one update, ":<index>" in a batch
}

// Ack is the body of a 200 answer.
type Ack struct {
	// Accepted is the number of updates newly stored.
	Accepted int `json:"accepted"`
	// Duplicates is the number of updates JetStream already held under
	// their message id (a retried or replayed delivery).
	Duplicates int `json:"duplicates"`
}

func (s *Server) handleIngest(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		s.refuse(w, resultMethod, http.StatusMethodNotAllowed, "method not allowed: POST an update")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	now := s.now()
	if ok, wait := s.rate.allow(senderOf(r.RemoteAddr), now); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
		w.Header().Set("Connection", "close")
		s.refuse(w, resultRateLimited, http.StatusTooManyRequests, "too many requests from this address")
		return
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		w.Header().Set("Connection", "close")
		s.refuse(w, resultTooLarge, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than MARQUEE_INGEST_MAX_BODY (%d bytes)", s.cfg.MaxBodyBytes))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.refuse(w, resultTooLarge, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than MARQUEE_INGEST_MAX_BODY (%d bytes)", s.cfg.MaxBodyBytes))
			return
		}
		s.refuse(w, resultBadRequest, http.StatusBadRequest, "could not read the body")
		return
	}
	id, err := s.ver.verify(r.Header, body, now)
	if err != nil {
		s.unauthorized(w, err)
		return
	}
	name := r.PathValue("feed")
	if !feed.ValidFeedName(name) {
		s.refuse(w, resultBadRequest, http.StatusBadRequest, fmt.Sprintf("feed name must be [A-Za-z0-9_-]{1,%d}", feed.MaxFeedNameLen))
		return
	}
	msgs, res, code, msg := s.parse(name, body)
	if res != resultOK {
		s.refuse(w, res, code, msg)
		return
	}
	if !s.nc.IsConnected() {
		w.Header().Set("Retry-After", "1")
		s.refuse(w, resultUnavailable, http.StatusServiceUnavailable, "jetstream unavailable, retry")
		return
	}
	ack, res, err := s.publish(ctx, id, msgs)
	switch res {
	case resultOK:
	case resultTimeout:
		s.log.Warn("ingest: jetstream did not acknowledge in time", "feed", name, "updates", len(msgs), "err", err)
		w.Header().Set("Retry-After", "1")
		s.refuse(w, res, http.StatusGatewayTimeout, "jetstream did not acknowledge in time, retry with the same webhook-id")
		return
	default:
		s.log.Warn("ingest: publish failed", "feed", name, "updates", len(msgs), "err", err)
		w.Header().Set("Retry-After", "1")
		s.refuse(w, res, http.StatusServiceUnavailable, "jetstream unavailable, retry with the same webhook-id")
		return
	}
	s.m.requests[resultOK].Inc()
	s.m.accepted.Add(float64(ack.Accepted))
	s.m.duplicates.Add(float64(ack.Duplicates))
	b, _ := json.Marshal(ack)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.Write(append(b, '\n'))
}

func (s *Server) unauthorized(w http.ResponseWriter, err error) {
	res, msg := resultBadSignature, "no signature matches"
	switch {
	case errors.Is(err, errMissingHeaders):
		res, msg = resultMissingHeaders, "webhook-id, webhook-timestamp and webhook-signature are required"
	case errors.Is(err, errBadHeaders):
		res, msg = resultBadHeaders, fmt.Sprintf("webhook-timestamp must be Unix seconds and webhook-id 1..%d printable characters", maxIDLen)
	case errors.Is(err, errStale):
		res, msg = resultStale, "webhook-timestamp is outside the tolerance"
	}
	w.Header().Set("WWW-Authenticate", `Webhook-Signature realm="marquee-ingest"`)
	s.refuse(w, res, http.StatusUnauthorized, msg)
}

// item is one update of a request body: {"key": K, "value": {...}|null}.
type item struct {
	Key   *string         `json:"key"`
	Value json.RawMessage `json:"value"`
}

// request is a request body: one item, or {"updates": [item, ...]}.
type request struct {
	Key     *string         `json:"key"`
	Value   json.RawMessage `json:"value"`
	Updates []item          `json:"updates"`
}

// parse decodes and validates body for feed name with the consumer's own
// rules (feed.Parse on the subject and body the update will have) and
// returns the messages to publish, or the refusal.
func (s *Server) parse(name string, body []byte) ([]message, result, int, string) {
	var req request
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, resultBadRequest, http.StatusBadRequest, "body: " + jsonProblem(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, resultBadRequest, http.StatusBadRequest, "body: one JSON object expected, found more"
	}
	var items []item
	prefix := ""
	switch single := req.Key != nil || req.Value != nil; {
	case single && req.Updates != nil:
		return nil, resultBadRequest, http.StatusBadRequest, `body: either "key" and "value" or "updates", not both`
	case single:
		items = []item{{Key: req.Key, Value: req.Value}}
	case req.Updates == nil:
		return nil, resultBadRequest, http.StatusBadRequest, `body: {"key": …, "value": {…}} or {"updates": [...]} expected`
	case len(req.Updates) == 0:
		return nil, resultBadRequest, http.StatusBadRequest, "updates: must not be empty"
	case len(req.Updates) > s.cfg.MaxUpdates:
		return nil, resultTooLarge, http.StatusRequestEntityTooLarge, fmt.Sprintf("updates: more than MARQUEE_INGEST_MAX_UPDATES (%d)", s.cfg.MaxUpdates)
	default:
		items = req.Updates
	}
	msgs := make([]message, len(items))
	for i, it := range items {
		suffix := ""
		if req.Updates != nil {
			prefix = "updates[" + strconv.Itoa(i) + "]."
			suffix = ":" + strconv.Itoa(i)
		}
		if it.Key == nil {
			return nil, resultBadRequest, http.StatusBadRequest, prefix + "key: required"
		}
		if it.Value == nil {
			return nil, resultBadRequest, http.StatusBadRequest, prefix + "value: required: a JSON object, or null to delete the key"
		}
		data := []byte(it.Value)
		if string(data) == "null" {
			data = nil
		}
		subject := s.lim.SubjectPrefix + "." + name + "." + *it.Key
		_, u, reason := feed.Parse(subject, data, s.lim)
		switch reason {
		case feed.ReasonNone:
		case feed.ReasonTooLarge:
			return nil, resultTooLarge, http.StatusRequestEntityTooLarge, fmt.Sprintf("%svalue: larger than MARQUEE_NATS_MAX_MESSAGE_BYTES (%d bytes)", prefix, s.lim.MaxMessageBytes)
		case feed.ReasonUnknownFeed:
			return nil, resultUnknownFeed, http.StatusNotFound, "unknown feed: not in MARQUEE_FEEDS"
		case feed.ReasonBadKey, feed.ReasonBadSubject:
			return nil, resultBadRequest, http.StatusBadRequest, fmt.Sprintf("%skey: must be 1..%d bytes of [A-Za-z0-9_.-] without an empty dot-separated part", prefix, s.lim.MaxKeyLen)
		case feed.ReasonBadJSON, feed.ReasonNotObject:
			return nil, resultBadRequest, http.StatusBadRequest, prefix + "value: must be a JSON object, or null to delete the key"
		default:
			return nil, resultBadRequest, http.StatusBadRequest, prefix + "invalid: " + reason.String()
		}
		msgs[i] = message{subject: subject, data: u.Value, suffix: suffix}
	}
	return msgs, resultOK, 0, ""
}

// jsonProblem says what is wrong with a body in a few words, without
// echoing more than a field name of it.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("%s: must be %s, got %s", typ.Field, typeName(typ.Type.String()), typ.Value)
		}
		return "must be a JSON object, got " + typ.Value
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "empty or truncated JSON"
	default:
		// DisallowUnknownFields: `json: unknown field "x"`.
		return err.Error()
	}
}

func typeName(goType string) string {
	switch goType {
	case "string", "*string":
		return "a string"
	case "[]ingest.item":
		return "an array"
	case "ingest.item":
		return "an object"
	}
	return goType
}

// publish publishes msgs to JetStream, each with the message id id (one
// update) or id:index (an update of a batch), and waits for every acknowledgement
// until ctx ends.
func (s *Server) publish(ctx context.Context, id string, msgs []message) (Ack, result, error) {
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		msg := nats.NewMsg(m.subject)
		msg.Data = m.data
		msg.Header.Set(jetstream.MsgIDHeader, id+m.suffix)
		f, err := s.js.PublishMsgAsync(msg, jetstream.WithExpectStream(s.fcfg.Stream))
		if err != nil {
			return Ack{}, resultUnavailable, fmt.Errorf("publish %s: %w", m.subject, err)
		}
		futures = append(futures, f)
	}
	var ack Ack
	for _, f := range futures {
		select {
		case pa := <-f.Ok():
			if pa.Duplicate {
				ack.Duplicates++
			} else {
				ack.Accepted++
			}
		case err := <-f.Err():
			if errors.Is(err, jetstream.ErrAsyncPublishTimeout) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
				return Ack{}, resultTimeout, err
			}
			return Ack{}, resultUnavailable, err
		case <-ctx.Done():
			return Ack{}, resultTimeout, ctx.Err()
		}
	}
	return ack, resultOK, nil
}

// refuse answers with a JSON error (never cached) and counts res.
func (s *Server) refuse(w http.ResponseWriter, res result, code int, msg string) {
	s.m.requests[res].Inc()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	b, _ := json.Marshal(wire.Error{Message: msg, Code: code})
	w.Write(append(b, '\n'))
}
