package feed

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"marquee/segmenter"
)

// dropCheckEvery is how often CoreSource turns the client's count of dropped
// messages into the slow_consumer metric.
const dropCheckEvery = time.Second

// CoreSource consumes plain core NATS messages on "<prefix>.>". There is no
// stored state: the source is Loaded once subscribed, and messages published
// while it is disconnected are lost. Event ids come from a counter that
// starts at the construction time in microseconds since the Unix epoch, so
// they increase within the process and, as long as the clock does, across
// restarts; they do not agree between processes. They stay below 2^53 (until
// the year 2255), so a JavaScript client reads them exactly.
//
// Messages are buffered in a channel of Config.CorePending messages; when it
// is full the NATS client drops messages, which are counted as slow_consumer.
type CoreSource struct {
	cfg  Config
	nc   *nats.Conn
	log  *slog.Logger
	m    *Metrics
	proc *processor

	running atomic.Bool
	loaded  atomic.Bool
	seq     atomic.Uint64
}

// NewCoreSource validates cfg and returns a core NATS source.
// A nil log discards; nil m uses unregistered metrics.
func NewCoreSource(cfg Config, nc *nats.Conn, sink segmenter.Sink, log *slog.Logger, m *Metrics) (*CoreSource, error) {
	if err := checkDeps(cfg, nc, sink); err != nil {
		return nil, fmt.Errorf("core source: %w", err)
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	log = orDiscard(log).With("component", "feed", "source", "core")
	s := &CoreSource{cfg: cfg, nc: nc, log: log, m: m, proc: newProcessor(cfg, sink, log, m)}
	s.seq.Store(uint64(time.Now().UnixMicro()))
	return s, nil
}

// Status reports the connection and whether the subscription is in place.
func (s *CoreSource) Status() Status {
	st := Status{Connected: s.nc.IsConnected(), Loaded: s.loaded.Load()}
	if s.nc.IsClosed() {
		st.Err = ErrConnectionClosed.Error()
	}
	return st
}

// Run subscribes and applies messages until ctx is done. The NATS client
// re-subscribes by itself after a reconnect.
func (s *CoreSource) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return fmt.Errorf("core source: %w", ErrAlreadyRunning)
	}
	subject := subjectsFor(s.cfg.SubjectPrefix)
	ch := make(chan *nats.Msg, s.cfg.CorePending)
	sub, err := s.nc.ChanSubscribe(subject, ch)
	if err != nil {
		return fmt.Errorf("core source: subscribe %s: %w", subject, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	// Make sure the server has the subscription before reporting Loaded;
	// while disconnected this fails and readiness is false anyway.
	fctx, cancel := context.WithTimeout(ctx, apiTimeout)
	if err := s.nc.FlushWithContext(fctx); err != nil && ctx.Err() == nil {
		s.log.Debug("flush after subscribe", "err", err)
	}
	cancel()
	if s.loaded.CompareAndSwap(false, true) {
		s.m.loaded.Set(1)
		s.proc.loaded()
		s.log.Info("subscribed", "subject", subject)
	}

	ticker := time.NewTicker(dropCheckEvery)
	defer ticker.Stop()
	dropped := 0
	countDrops := func() {
		if n, err := sub.Dropped(); err == nil && n > dropped {
			s.proc.dropped(n - dropped)
			dropped = n
		}
	}
	for {
		select {
		case <-ctx.Done():
			countDrops()
			return nil
		case msg := <-ch:
			s.proc.handle(msg.Subject, msg.Data, s.seq.Add(1), time.Now())
		case <-ticker.C:
			countDrops()
			if s.nc.IsClosed() {
				return wrapClosed("core source")
			}
		}
	}
}
