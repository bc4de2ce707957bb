package feed

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"marquee/segmenter"
)

const (
	// apiTimeout bounds one JetStream API call (create stream, consumer).
	apiTimeout = 10 * time.Second
	// maxRetryWait caps the pause between attempts to re-create a consumer.
	maxRetryWait = 30 * time.Second
)

// JetStreamSource consumes a JetStream stream with an ordered consumer. At
// start-up it delivers the last message per subject, which rebuilds every
// feed's state, then follows live. Event ids are stream sequences.
//
// The ordered consumer re-creates itself after a reconnect, a missed
// heartbeat or a deleted consumer, resuming after the last delivered
// sequence, so nothing is lost or applied twice. When that fails (JetStream
// not back yet), Run creates a new ordered consumer from the same position
// after a pause that starts at Config.ReconnectWait and doubles up to 30 s.
//
// Limitation: if the stream is deleted and created again, its sequences
// start over at 1; the sink refuses them as duplicates until the origin is
// restarted.
type JetStreamSource struct {
	cfg  Config
	nc   *nats.Conn
	log  *slog.Logger
	m    *Metrics
	proc *processor

	running atomic.Bool
	loaded  atomic.Bool

	mu  sync.Mutex // guards err
	err string

	// lastSeq is the stream sequence of the last message handled; only the
	// Run goroutine touches it.
	lastSeq uint64
}

// NewJetStreamSource validates cfg and returns a source of cfg.Stream.
// A nil log discards; nil m uses unregistered metrics.
func NewJetStreamSource(cfg Config, nc *nats.Conn, sink segmenter.Sink, log *slog.Logger, m *Metrics) (*JetStreamSource, error) {
	if err := checkDeps(cfg, nc, sink); err != nil {
		return nil, fmt.Errorf("jetstream source: %w", err)
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	log = orDiscard(log).With("component", "feed", "source", "jetstream", "stream", cfg.Stream)
	return &JetStreamSource{cfg: cfg, nc: nc, log: log, m: m, proc: newProcessor(cfg, sink, log, m)}, nil
}

// Status reports the connection, whether the initial catch-up is complete,
// and the last error that interrupted consuming.
func (s *JetStreamSource) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Status{Connected: s.nc.IsConnected(), Loaded: s.loaded.Load(), Err: s.err}
}

func (s *JetStreamSource) setErr(err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	s.mu.Lock()
	s.err = msg
	s.mu.Unlock()
}

func (s *JetStreamSource) setLoaded() {
	if s.loaded.CompareAndSwap(false, true) {
		s.m.loaded.Set(1)
		s.proc.loaded()
		s.log.Info("feed state loaded", "last_seq", s.lastSeq)
	}
}

// Run creates the stream if configured, then consumes until ctx is done.
func (s *JetStreamSource) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return fmt.Errorf("jetstream source: %w", ErrAlreadyRunning)
	}
	js, err := jetstream.New(s.nc)
	if err != nil {
		return fmt.Errorf("jetstream source: %w", err)
	}
	wait := s.cfg.ReconnectWait
	for {
		progressed, err := s.consume(ctx, js)
		if ctx.Err() != nil {
			return nil
		}
		if s.nc.IsClosed() {
			s.setErr(ErrConnectionClosed)
			return wrapClosed("jetstream source")
		}
		if progressed {
			wait = s.cfg.ReconnectWait
		}
		s.setErr(err)
		s.proc.warnLimited("consume", "jetstream consumer stopped, retrying", "err", err, "retry_in", wait, "last_seq", s.lastSeq)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		wait = min(2*wait, maxRetryWait)
	}
}

// consume runs one ordered consumer until it fails or ctx is done. It
// reports whether any message was delivered.
func (s *JetStreamSource) consume(ctx context.Context, js jetstream.JetStream) (progressed bool, err error) {
	cons, err := s.orderedConsumer(ctx, js)
	if err != nil {
		return false, err
	}
	s.setErr(nil)
	if info := cons.CachedInfo(); info != nil && info.NumPending == 0 {
		s.setLoaded() // nothing stored to catch up with
	}
	// MaxResetAttempts is 1 (see orderedConsumer), so Next never waits for
	// long without looking at ctx: a failed reset returns an error here and
	// Run retries with its own, cancellable back-off.
	it, err := cons.Messages()
	if err != nil {
		return false, fmt.Errorf("jetstream source: messages: %w", err)
	}
	defer func() {
		it.Stop()
		if ctx.Err() != nil {
			s.deleteConsumer(js, cons)
		}
	}()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return progressed, fmt.Errorf("jetstream source: next: %w", err)
		}
		progressed = true
		s.handle(msg)
	}
}

// deleteConsumer removes the ordered consumer's server-side consumer on
// shutdown, best effort; the server would drop it after 5 minutes of
// inactivity anyway.
func (s *JetStreamSource) deleteConsumer(js jetstream.JetStream, cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil || !s.nc.IsConnected() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := js.DeleteConsumer(ctx, s.cfg.Stream, info.Name); err != nil {
		s.log.Debug("delete consumer on shutdown", "consumer", info.Name, "err", err)
	}
}

func (s *JetStreamSource) orderedConsumer(ctx context.Context, js jetstream.JetStream) (jetstream.Consumer, error) {
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	subjects := subjectsFor(s.cfg.SubjectPrefix)
	if s.cfg.CreateStream {
		_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:              s.cfg.Stream,
			Description:       "marquee feeds: the last messages per subject",
			Subjects:          []string{subjects},
			Storage:           jetstream.FileStorage,
			Retention:         jetstream.LimitsPolicy,
			MaxMsgsPerSubject: s.cfg.MaxMsgsPerSubject,
			Discard:           jetstream.DiscardOld,
		})
		if err != nil {
			return nil, fmt.Errorf("jetstream source: create stream %s: %w", s.cfg.Stream, err)
		}
	}
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subjects},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
		// One attempt per reset: with unlimited attempts the library retries
		// forever without looking at ctx, and stopping it between attempts
		// is unsafe in nats.go v1.55. Run does the retrying instead.
		MaxResetAttempts: 1,
	}
	if s.lastSeq > 0 { // resume where the previous consumer stopped
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = s.lastSeq + 1
	}
	cons, err := js.OrderedConsumer(ctx, s.cfg.Stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("jetstream source: create consumer on %s: %w", s.cfg.Stream, err)
	}
	return cons, nil
}

func (s *JetStreamSource) handle(msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		s.proc.reject(ReasonBadMetadata, msg.Subject(), len(msg.Data()), 0, err)
		return
	}
	seq := md.Sequence.Stream
	s.lastSeq = seq
	s.m.pending.Set(float64(md.NumPending))
	s.proc.handle(msg.Subject(), msg.Data(), seq, md.Timestamp)
	if md.NumPending == 0 {
		s.setLoaded()
	}
}
