package feed

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// maxCheckEvery is the longest interval between two watchdog checks; it
// checks more often with a StallTimeout below 4 s, so that an idle stream is
// confirmed current well within the stall timeout.
const maxCheckEvery = time.Second

// checkEvery is the watchdog's interval for cfg.
func (c Config) checkEvery() time.Duration {
	return min(maxCheckEvery, c.StallTimeout/4)
}

// watch runs the watchdog until ctx is done. It is started and waited for
// by Run.
func (s *JetStreamSource) watch(ctx context.Context, js jetstream.JetStream) {
	t := time.NewTicker(s.cfg.checkEvery())
	defer t.Stop()
	var lastKick time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.check(ctx, js, &lastKick)
		s.publishHealth(time.Now())
	}
}

// watchConn replaces the consumer after every reconnect, until ctx is done:
// the consumer has one replica, and if it lived on the server that went
// away, waiting for its missed heartbeats would cost 2 s. It is a goroutine
// of its own, started and waited for by Run, so that a check blocked on a
// JetStream without a leader does not delay it.
func (s *JetStreamSource) watchConn(ctx context.Context) {
	status := s.nc.StatusChanged(nats.RECONNECTING, nats.CONNECTED)
	defer s.nc.RemoveStatusListener(status)
	reconnecting := false
	for {
		select {
		case <-ctx.Done():
			return
		case st, ok := <-status:
			if !ok {
				return // the connection was closed; Run ends soon
			}
			switch {
			case st == nats.RECONNECTING:
				reconnecting = true
			case st == nats.CONNECTED && reconnecting:
				reconnecting = false
				s.kick("reconnected")
			}
		}
	}
}

// check looks at the stream once: missing, recreated, or holding messages
// the source has not got. Nothing pending confirms progress; a stall while
// the stream answers re-creates the consumer, at most once per StallTimeout.
func (s *JetStreamSource) check(ctx context.Context, js jetstream.JetStream, lastKick *time.Time) {
	// Read before asking: a message handled meanwhile must not look like a
	// stream whose last sequence went backwards.
	seq := s.seq.Load()
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	stream, err := js.Stream(cctx, s.cfg.Stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		s.setStreamMissing(true)
		s.kick("stream missing")
		return
	case err != nil:
		// JetStream does not answer (no leader, disconnected): nothing is
		// confirmed, and Status turns Stalled by the clock.
		if ctx.Err() == nil {
			s.log.Debug("watchdog: stream info", "err", err)
		}
		return
	}
	info := stream.CachedInfo()
	s.setStreamMissing(false)
	s.mu.Lock()
	created, exclusive, consumer := s.created, s.exclusive, s.consumer
	s.mu.Unlock()
	if !created.IsZero() && (!info.Created.Equal(created) || info.State.LastSeq < seq) {
		s.kick("stream recreated")
		return
	}
	behind := info.State.LastSeq > seq
	if !exclusive && behind {
		// Other subjects' messages may be all there is after seq: ask the
		// consumer what it has pending.
		if consumer == "" {
			return
		}
		c, err := js.Consumer(cctx, s.cfg.Stream, consumer)
		if err != nil {
			return
		}
		behind = c.CachedInfo().NumPending > 0
	}
	now := time.Now()
	if !behind {
		s.markProgress(now)
		return
	}
	if consumer != "" && s.Status().Stalled && now.Sub(*lastKick) >= s.cfg.StallTimeout {
		*lastKick = now
		if s.kick("stalled") {
			s.log.Warn("watchdog: no progress although the stream holds messages not read; re-creating the consumer",
				"last_seq", seq, "stream_last_seq", info.State.LastSeq, "consumer", consumer)
		}
	}
}

// kick ends the current consumer's Next, so that Run checks the stream and
// creates a new consumer at once. It reports whether there was a consumer
// to end.
func (s *JetStreamSource) kick(why string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel == nil || s.kicked != "" {
		return false
	}
	s.kicked = why
	s.cancel()
	return true
}

// publishHealth sets the health gauges and logs when a stall begins or ends.
func (s *JetStreamSource) publishHealth(now time.Time) {
	st := s.Status()
	s.m.stalled.Set(b2f(st.Stalled))
	s.m.lastProgress.Set(float64(st.LastProgress.UnixNano()) / 1e9)
	s.mu.Lock()
	was := s.stalled
	s.stalled = st.Stalled
	s.mu.Unlock()
	switch {
	case st.Stalled && !was:
		s.log.Warn("feed stalled", "no_progress_for", now.Sub(st.LastProgress).Round(time.Millisecond), "err", st.Err)
	case !st.Stalled && was:
		s.log.Info("feed progressing again")
	}
}
