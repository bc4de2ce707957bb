package feed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"marquee/segmenter"
)

// Source consumes feed messages from NATS into a segmenter.Sink.
type Source interface {
	// Run consumes until ctx is done, then returns nil. It survives NATS
	// reconnects; it returns an error only when it cannot go on (the NATS
	// connection was closed, or Run was already called).
	Run(ctx context.Context) error
	// Status reports the source's health for /readyz. Safe to call at any time.
	Status() Status
}

// Status is a Source's health: what /readyz needs to say whether this
// replica serves current, correct state. The fields after Loaded are only
// ever set by the JetStream source.
type Status struct {
	// Connected: the NATS connection is up.
	Connected bool
	// Loaded: the sink holds a complete replay of the stored state
	// (JetStream; false again from a reload's Sink.Reload until its
	// Sink.Loaded), or the subscription is in place (core).
	Loaded bool
	// Reloading: the source called Sink.Reload and the replay it started is
	// not complete yet; ReloadReason says why. The sink still serves the old
	// state meanwhile, which is known to be wrong or stale.
	Reloading    bool
	ReloadReason ReloadReason
	// Stalled: the source has made no progress for longer than
	// Config.StallTimeout although the stream holds messages it has not got,
	// or the JetStream API does not answer (so nobody can tell).
	Stalled bool
	// StreamMissing: the stream does not exist (as last seen by the source
	// or its watchdog, about every second).
	StreamMissing bool
	// LastProgress is when the source last handled a message or found
	// nothing left to read; zero while Run is not running.
	LastProgress time.Time
	// Err is the last error that stopped consuming, "" while consuming
	// normally.
	Err string
}

// Ready reports whether the source serves current, correct data: Reason()
// is empty.
func (s Status) Ready() bool { return s.Reason() == "" }

// Reason says in a few words why the source is not ready, for /readyz and
// logs ("" when it is ready), the most fundamental cause first: "nats
// disconnected", "jetstream stream missing", "reloading state (gap)",
// "loading state", "feed stalled: no progress for 7.2s". Err is appended
// where it explains the cause.
func (s Status) Reason() string {
	withErr := func(r string) string {
		if s.Err != "" {
			return r + ": " + s.Err
		}
		return r
	}
	switch {
	case !s.Connected:
		return "nats disconnected"
	case s.StreamMissing:
		return withErr("jetstream stream missing")
	case s.Reloading:
		return "reloading state (" + s.ReloadReason.String() + ")"
	case !s.Loaded:
		return withErr("loading state")
	case s.Stalled:
		r := "feed stalled"
		if !s.LastProgress.IsZero() {
			r += ": no progress for " + time.Since(s.LastProgress).Round(100*time.Millisecond).String()
		}
		return withErr(r)
	}
	return ""
}

var (
	_ Source = (*JetStreamSource)(nil)
	_ Source = (*CoreSource)(nil)
)

// NewSource validates cfg and returns a JetStreamSource if cfg.JetStream,
// else a CoreSource. nc is typically from Connect; the caller closes it after
// Run returned. A nil log discards; nil m uses unregistered metrics.
func NewSource(cfg Config, nc *nats.Conn, sink segmenter.Sink, log *slog.Logger, m *Metrics) (Source, error) {
	if cfg.JetStream {
		return NewJetStreamSource(cfg, nc, sink, log, m)
	}
	return NewCoreSource(cfg, nc, sink, log, m)
}

func checkDeps(cfg Config, nc *nats.Conn, sink segmenter.Sink) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if nc == nil {
		return errors.New("feed: nil nats connection")
	}
	if sink == nil {
		return errors.New("feed: nil sink")
	}
	return nil
}

func orDiscard(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}

// loaded tells the sink that the replay is complete.
func (p *processor) loaded() { p.sink.Loaded() }

// reload tells the sink that a complete replay starts.
func (p *processor) reload() { p.sink.Reload() }

// processor validates messages and applies them to the sink. Its handle
// method is called from one goroutine only (the source's Run).
type processor struct {
	sink    segmenter.Sink
	lim     Limits
	log     *slog.Logger
	m       *Metrics
	limiter *logLimiter
	// feeds looks a feed up when its accepted series is made, so that a
	// feed removed meanwhile gets none (see Metrics.accept); nil when the
	// sink's feeds never go away.
	feeds func(name string) (*segmenter.Feed, bool)
}

// feedSet is implemented by sinks whose feeds can go away (*segmenter.Hub
// evicts and expires feeds; its OnRemove tells Metrics.FeedRemoved).
type feedSet interface {
	Feed(name string) (*segmenter.Feed, bool)
}

var _ feedSet = (*segmenter.Hub)(nil)

func newProcessor(cfg Config, sink segmenter.Sink, log *slog.Logger, m *Metrics) *processor {
	p := &processor{
		sink:    sink,
		lim:     cfg.Limits(),
		log:     log,
		m:       m,
		limiter: newLogLimiter(logEvery),
	}
	if fs, ok := sink.(feedSet); ok {
		p.feeds = fs.Feed
	}
	return p
}

// handle validates one message and applies it with seq and t.
func (p *processor) handle(subject string, data []byte, seq uint64, t time.Time) {
	p.m.lastSeq.Set(float64(seq))
	feed, u, reason := Parse(subject, data, p.lim)
	if reason != ReasonNone {
		p.reject(reason, subject, len(data), seq, nil)
		return
	}
	u.Seq, u.Time = seq, t
	err := p.sink.Apply(feed, u)
	var capErr *segmenter.BytesError
	switch {
	case err == nil:
		p.m.accept(feed, p.feeds)
	case errors.As(err, &capErr):
		// Rate-limited per cap, so that each cap that refuses shows up.
		p.m.reject(ReasonTooManyBytes)
		p.warnLimited(ReasonTooManyBytes.String()+" "+capErr.Var, "dropped message: feed state at its byte cap",
			"reason", ReasonTooManyBytes.String(), "feed", capErr.Feed, "cap", capErr.Var, "cap_bytes", capErr.Limit,
			"would_be_bytes", capErr.Would, "subject", truncate(subject, 200), "bytes", len(data), "seq", seq)
	case errors.Is(err, segmenter.ErrTooManyBytes):
		p.reject(ReasonTooManyBytes, subject, len(data), seq, err)
	case errors.Is(err, segmenter.ErrUnknownFeed):
		p.reject(ReasonNoFeed, subject, len(data), seq, err)
	case errors.Is(err, segmenter.ErrDuplicate):
		p.reject(ReasonDuplicate, subject, len(data), seq, err)
	case errors.Is(err, segmenter.ErrTooManyFeeds):
		p.reject(ReasonTooManyFeeds, subject, len(data), seq, err)
	case errors.Is(err, segmenter.ErrTooManyKeys):
		p.reject(ReasonTooManyKeys, subject, len(data), seq, err)
	default:
		p.reject(ReasonSinkError, subject, len(data), seq, err)
	}
}

// reject counts a dropped message and logs it: duplicates and deletes for
// feeds that do not exist at debug level (they are expected after
// reconnects and at start-up), everything else as a warning at most once
// per reason per logEvery.
func (p *processor) reject(r Reason, subject string, size int, seq uint64, err error) {
	p.m.reject(r)
	attrs := []any{"reason", r.String(), "subject", truncate(subject, 200), "bytes", size, "seq", seq}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	if r == ReasonDuplicate || r == ReasonNoFeed {
		p.log.Debug("dropped message", attrs...)
		return
	}
	p.warnLimited(r.String(), "dropped message", attrs...)
}

// dropped counts n messages dropped by the NATS client (slow consumer).
func (p *processor) dropped(n int) {
	if n <= 0 {
		return
	}
	p.m.rejected[ReasonSlowConsumer].Add(float64(n))
	p.warnLimited(ReasonSlowConsumer.String(), "dropped messages: subscription buffer full", "reason", ReasonSlowConsumer.String(), "count", n)
}

func (p *processor) warnLimited(key, msg string, attrs ...any) {
	ok, suppressed := p.limiter.allow(key)
	if !ok {
		return
	}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	p.log.Warn(msg, attrs...)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func subjectsFor(prefix string) string { return prefix + ".>" }

func wrapClosed(component string) error {
	return fmt.Errorf("%s: %w", component, ErrConnectionClosed)
}
