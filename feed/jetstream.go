package feed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
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
	// apiTimeout bounds the JetStream calls that may legitimately take a
	// while: creating or updating a (replicated) stream; and core NATS'
	// flush after subscribing.
	apiTimeout = 10 * time.Second
	// callTimeout bounds each of the watchdog's checks. (The calls on the
	// way to a consumer are hedged: see apiHedge.)
	callTimeout = 2 * time.Second
	// retryMin and retryMax bound the pause before re-creating a failed
	// consumer: it starts at retryMin, doubles per failure without progress
	// up to retryMax, and starts over once a message was handled.
	retryMin = 100 * time.Millisecond
	retryMax = time.Second
	// pullHeartbeat is the idle heartbeat the server sends on the open pull
	// request; two missed ones end the consumer, so that a consumer that
	// went down with its server is replaced within 2 s rather than after
	// the client library's default of twice 5 s (ordered) or 15 s (pull).
	pullHeartbeat = time.Second
	// pullExpiry is the lifetime of one pull request, renewed as it runs
	// out; at least twice pullHeartbeat.
	pullExpiry = 5 * time.Second
	// consumerInactive is how long the server keeps a consumer nobody pulls
	// from: orphans of a crashed replica go away after it.
	consumerInactive = time.Minute
	// deleteTimeout bounds the best-effort deletion of a replaced consumer.
	deleteTimeout = 2 * time.Second
)

// errLostInFlight: the consumer's delivery sequence skipped, so messages
// were lost between server and client; a new consumer resumes after the
// last one handled.
var errLostInFlight = errors.New("delivery sequence skipped: messages lost in flight")

// JetStreamSource consumes a JetStream stream. At start-up it replays the
// last message per subject, which rebuilds every feed's state, then follows
// live. Event ids are stream sequences.
//
// It runs its own ephemeral pull consumers (memory storage, one replica,
// no acks, heartbeat every second) so that it decides every re-creation
// itself: after a reconnect that lost the consumer, two missed heartbeats,
// a deleted consumer or a lost delivery, Run creates a new consumer that
// resumes after the last sequence handled, after a pause that starts at
// 100 ms and doubles up to 1 s while nothing is handled. The JetStream
// calls on that way (stream info, consumer creation) are sent again every
// 500 ms while unanswered, because JetStream drops requests that arrive
// while the stream or the meta layer has no leader; a call in flight is also
// cut short by the stream's LEADER_ELECTED advisory, and the consumer is
// replaced right after every reconnect. So consuming resumes within about
// half a second of a new leader (measured: see the failover test). Every
// copy of a creation names a consumer of its own (a name sent again would
// wait for the server holding that consumer, which may be the one that
// crashed); those whose answer went unused are deleted once one succeeded.
//
// Gaps. A skipped stream sequence means the stream removed messages before
// the source read them (limits such as MaxMsgsPerSubject or MaxAge, a
// delete or a purge). The rule:
//
//   - While replaying (from the start of a load or reload until the first
//     catch-up), skips are what a last-per-subject replay is made of: not
//     counted.
//   - On resume (a new consumer after the previous one stopped, until it
//     caught up): skips are counted in marquee_feed_skipped_messages_total
//     and the state is reloaded (reason gap). Nobody knows what went missing
//     meanwhile; it may be a key's last value or its deletion, so only a
//     fresh replay is sure to equal the stream. The same holds when the
//     stream's first sequence has moved past the next one to read, or (for
//     an exclusive stream) when the new consumer has fewer messages pending
//     than the stream has after the last sequence handled.
//   - While following live (the consumer caught up at least once): skips
//     are counted and logged, not reloaded. The server delivers in order, so
//     a live skip is a message deleted or purged before delivery, or
//     discarded by the limits while this replica lagged; with the stream's
//     discard-old-per-subject limit, a newer value of the same subject is
//     still ahead. Reloading on every such skip could loop under load.
//   - Purges of messages already read are invisible and harmless: the state
//     keeps the values, as it did.
//
// Skips are only meaningful when every subject the stream captures lies
// within "<prefix>.>" (the stream marquee creates): otherwise other
// subjects' sequences are skipped by design, and only the first-sequence
// check applies (a warning at start-up says so).
//
// Recreated stream. A stream deleted and created again restarts its
// sequences at 1, which the sink would refuse as duplicates. When the
// stream's creation time differs from the one consumed, its last sequence
// is below the last one handled, or a consumer delivers a sequence not
// above it, the source reloads (reason recreated) without a restart.
//
// A reload calls Sink.Reload, replays the last message per subject from
// scratch and calls Sink.Loaded once caught up; Status is not ready
// meanwhile.
//
// Health. A watchdog goroutine owned by Run checks the stream (and, for a
// non-exclusive stream, the consumer) about every second with bounded calls:
// it finds the stream missing or recreated, confirms progress when nothing
// is left to read, reports Stalled when no progress was made for longer
// than Config.StallTimeout, and re-creates a consumer that is stalled
// although the stream answers. It never touches the message path.
type JetStreamSource struct {
	cfg  Config
	nc   *nats.Conn
	log  *slog.Logger
	m    *Metrics
	proc *processor

	running atomic.Bool
	// Written by the Run goroutine, read by the watchdog and Status.
	seq      atomic.Uint64 // lastSeq
	progress atomic.Int64  // UnixNano of the last progress: a message handled or a check that found nothing to read
	bg       sync.WaitGroup

	mu            sync.Mutex // guards the fields below
	active        bool       // Run is running
	loaded        bool
	reloading     ReloadReason
	streamMissing bool
	stalled       bool               // as last published by the watchdog
	err           string             // the last error that stopped consuming
	created       time.Time          // creation time of the stream consumed; zero before the first
	exclusive     bool               // the stream captures only feed subjects
	consumer      string             // the current consumer's name, "" between consumers
	cancel        context.CancelFunc // ends the current consumer's Next; nil between consumers
	kicked        string             // why the watchdog called cancel, "" if it did not
	attempt       context.CancelFunc // ends the API calls on the way to a consumer; nil otherwise

	elected chan struct{} // a new stream leader was elected (capacity 1)

	// Only the Run goroutine touches the fields below.
	lastSeq   uint64    // stream sequence of the last message handled; 0 before any, or after a reload
	delivered uint64    // the current consumer's last delivery sequence
	phase     phase     // what a skip means
	excl      bool      // a copy of exclusive
	announced time.Time // creation time of the stream last logged
	prefix    string    // of consumer names
	serial    int       // of consumer names; also written by the copies of a hedged create, under their own lock
	// unconfirmed holds the names of consumers whose creation may have
	// reached the server without its answer reaching Run (a copy that timed
	// out or was cancelled, or lost to another copy): they are deleted, best
	// effort, once a consumer was created (see createConsumer).
	unconfirmed []string
}

// maxUnconfirmed bounds JetStreamSource.unconfirmed; older names are left
// to the server's InactiveThreshold.
const maxUnconfirmed = 64

// phase is what the source does, which decides what a skipped sequence
// means (see JetStreamSource).
type phase uint8

const (
	phaseReplay phase = iota // (re)loading, until the first catch-up: skips expected
	phaseResume              // a new consumer after a failure, until it caught up: skips reload
	phaseLive                // caught up: skips counted
)

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
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &JetStreamSource{
		cfg: cfg, nc: nc, log: log, m: m, proc: newProcessor(cfg, sink, log, m),
		prefix:  "marquee_" + hex.EncodeToString(b[:]),
		elected: make(chan struct{}, 1),
	}, nil
}

// Status reports the connection, the state's load, the stream and whether
// consuming is stalled, and the last error that interrupted consuming.
func (s *JetStreamSource) Status() Status {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{
		Connected:     s.nc.IsConnected(),
		Loaded:        s.loaded,
		Reloading:     s.reloading != ReloadNone,
		ReloadReason:  s.reloading,
		StreamMissing: s.streamMissing,
		Err:           s.err,
	}
	if s.active {
		st.LastProgress = time.Unix(0, s.progress.Load())
		st.Stalled = now.Sub(st.LastProgress) > s.cfg.StallTimeout
	}
	return st
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

func (s *JetStreamSource) setStreamMissing(missing bool) {
	s.mu.Lock()
	was := s.streamMissing
	s.streamMissing = missing
	s.mu.Unlock()
	if missing != was {
		s.m.streamMissing.Set(b2f(missing))
		if missing {
			s.log.Warn("jetstream stream missing", "create", s.cfg.CreateStream)
		} else {
			s.log.Info("jetstream stream present")
		}
	}
}

func (s *JetStreamSource) markProgress(t time.Time) {
	n := t.UnixNano()
	for {
		old := s.progress.Load()
		if old >= n || s.progress.CompareAndSwap(old, n) {
			return
		}
	}
}

// setLoaded ends a load or reload: the sink swaps the replayed state in
// before Status says so.
func (s *JetStreamSource) setLoaded() {
	s.mu.Lock()
	done := s.loaded
	s.mu.Unlock()
	if done {
		return
	}
	s.proc.loaded()
	s.mu.Lock()
	s.loaded, s.reloading = true, ReloadNone
	s.mu.Unlock()
	s.m.loaded.Set(1)
	s.log.Info("feed state loaded", "last_seq", s.lastSeq)
}

// reload starts a complete replay: Status is not ready from now on, the
// sink folds into fresh state, and the next consumer delivers the last
// message per subject.
func (s *JetStreamSource) reload(r ReloadReason, attrs ...any) {
	s.m.reloads[r].Inc()
	s.mu.Lock()
	s.loaded, s.reloading = false, r
	s.mu.Unlock()
	s.m.loaded.Set(0)
	s.log.Warn("reloading feed state", append([]any{"reason", r.String(), "last_seq", s.lastSeq}, attrs...)...)
	s.proc.reload()
	s.lastSeq = 0
	s.seq.Store(0)
	s.phase = phaseReplay
}

// caughtUp is called when the consumer has nothing more pending.
func (s *JetStreamSource) caughtUp() {
	switch s.phase {
	case phaseReplay:
		s.phase = phaseLive
		s.setLoaded()
	case phaseResume:
		s.phase = phaseLive
	}
	s.markProgress(time.Now())
}

// Run consumes until ctx is done. It creates the stream if it is missing
// and configured to, and runs the watchdog alongside.
func (s *JetStreamSource) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return fmt.Errorf("jetstream source: %w", ErrAlreadyRunning)
	}
	js, err := jetstream.New(s.nc)
	if err != nil {
		return fmt.Errorf("jetstream source: %w", err)
	}
	s.markProgress(time.Now())
	s.mu.Lock()
	s.active = true
	s.mu.Unlock()
	// A new stream leader answers at once: do not wait for the calls that
	// were sent while there was none to time out. Best effort: without the
	// permission to subscribe, the bounded calls and back-off remain.
	adv, err := s.nc.Subscribe(advisoryLeaderElected+"."+s.cfg.Stream, func(*nats.Msg) { s.leaderElected() })
	if err != nil {
		s.log.Debug("subscribe to stream leader advisories", "err", err)
	}
	wctx, stopWatch := context.WithCancel(ctx)
	var watch sync.WaitGroup
	watch.Go(func() { s.watch(wctx, js) })
	watch.Go(func() { s.watchConn(wctx) })
	defer func() {
		if adv != nil {
			_ = adv.Unsubscribe()
		}
		stopWatch()
		watch.Wait()
		for _, n := range s.unconfirmed { // in parallel, waited for below
			s.deleteConsumer(context.Background(), js, n)
		}
		s.unconfirmed = nil
		s.bg.Wait()
		s.mu.Lock()
		s.active = false
		s.mu.Unlock()
		s.m.stalled.Set(0)
	}()

	wait := retryMin
	for {
		progressed, again, err := s.consume(ctx, js)
		if ctx.Err() != nil {
			return nil
		}
		if s.nc.IsClosed() {
			s.setErr(ErrConnectionClosed)
			return wrapClosed("jetstream source")
		}
		if progressed {
			wait = retryMin
		}
		if again { // a reload or a kick: a new consumer at once
			continue
		}
		select {
		case <-s.elected: // the attempt was cut short for a new leader
			s.log.Debug("new stream leader: retrying at once", "err", err)
			wait = retryMin
			continue
		default:
		}
		s.setErr(err)
		s.proc.warnLimited("consume", "jetstream consumer stopped, retrying", "err", err, "retry_in", wait, "last_seq", s.lastSeq)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-s.elected:
			t.Stop()
			s.log.Debug("new stream leader: retrying at once")
			wait = retryMin
			continue
		case <-t.C:
		}
		wait = min(2*wait, retryMax)
	}
}

// advisoryLeaderElected is the subject prefix of JetStream's advisory that
// a replicated stream elected a leader (followed by ".<stream>").
const advisoryLeaderElected = "$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED"

// leaderElected runs on the NATS client's goroutine when the stream has a
// new leader: it ends the API calls in flight (sent while there was no
// leader, they would only time out) and wakes Run's back-off.
func (s *JetStreamSource) leaderElected() {
	s.mu.Lock()
	cancel := s.attempt
	s.mu.Unlock()
	select {
	case s.elected <- struct{}{}:
	default:
	}
	if cancel != nil {
		cancel()
	}
}

// consume checks the stream, runs one consumer until it fails, is kicked by
// the watchdog or ctx is done, and reports whether a message was handled
// and whether to start again at once (after a reload or a kick).
func (s *JetStreamSource) consume(ctx context.Context, js jetstream.JetStream) (progressed, again bool, err error) {
	cons, info, err := s.prepare(ctx, js)
	if err != nil {
		return false, false, err
	}
	ci := cons.CachedInfo()
	if s.phase == phaseResume {
		if r, attrs := s.checkResume(info, ci); r != ReloadNone {
			s.deleteConsumer(ctx, js, ci.Name)
			s.reload(r, attrs...)
			return false, true, nil
		}
	}
	s.setErr(nil)
	if ci.NumPending == 0 {
		s.caughtUp() // nothing stored to catch up with
	}
	it, err := cons.Messages(jetstream.PullHeartbeat(pullHeartbeat), jetstream.PullExpiry(pullExpiry))
	if err != nil {
		s.deleteConsumer(ctx, js, ci.Name)
		return false, false, fmt.Errorf("jetstream source: messages: %w", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	s.mu.Lock()
	s.consumer, s.cancel, s.kicked = ci.Name, cancel, ""
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.consumer, s.cancel = "", nil
		s.mu.Unlock()
		cancel()
		it.Stop()
		s.deleteConsumer(ctx, js, ci.Name)
		if ctx.Err() == nil && !again {
			s.m.restarts.Inc()
		}
	}()
	for {
		msg, err := it.Next(jetstream.NextContext(cctx))
		if err != nil {
			if ctx.Err() != nil {
				return progressed, false, nil
			}
			s.mu.Lock()
			kicked := s.kicked
			s.mu.Unlock()
			if kicked != "" {
				s.m.restarts.Inc() // counted here: again skips the count below
				return progressed, true, fmt.Errorf("jetstream source: watchdog: %s", kicked)
			}
			return progressed, false, fmt.Errorf("jetstream source: next: %w", err)
		}
		r, attrs, err := s.handle(msg)
		if err != nil {
			return progressed, false, err
		}
		if r != ReloadNone {
			s.reload(r, attrs...)
			return progressed, true, nil
		}
		progressed = true
	}
}

// prepare checks the stream and creates the next consumer, with calls that
// a new stream leader cuts short (see leaderElected).
func (s *JetStreamSource) prepare(ctx context.Context, js jetstream.JetStream) (jetstream.Consumer, *jetstream.StreamInfo, error) {
	actx, cancel := context.WithCancel(ctx)
	s.mu.Lock()
	s.attempt = cancel
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.attempt = nil
		s.mu.Unlock()
		cancel()
	}()
	info, err := s.ensureStream(ctx, actx, js)
	if err != nil {
		return nil, nil, err
	}
	s.checkStream(info)
	cons, err := s.createConsumer(actx, js)
	if err != nil {
		return nil, nil, err
	}
	return cons, info, nil
}

// checkStream compares the stream with the one consumed so far: if it was
// created anew, or its last sequence is below the last one handled, the
// source reloads (reason recreated). It records the stream's identity.
func (s *JetStreamSource) checkStream(info *jetstream.StreamInfo) {
	s.mu.Lock()
	known := s.created
	s.created = info.Created
	s.exclusive = streamExclusive(info.Config.Subjects, s.cfg.SubjectPrefix)
	s.excl = s.exclusive
	s.mu.Unlock()
	switch {
	case !known.IsZero() && !info.Created.Equal(known):
		s.reload(ReloadRecreated, "was_created", known, "created", info.Created, "stream_last_seq", info.State.LastSeq)
	case info.State.LastSeq < s.lastSeq:
		s.reload(ReloadRecreated, "stream_last_seq", info.State.LastSeq)
	}
}

// checkResume looks at a new consumer that resumes after lastSeq: did the
// stream remove messages after lastSeq meanwhile? It returns ReloadGap (and
// log attributes) if so, after counting them.
func (s *JetStreamSource) checkResume(info *jetstream.StreamInfo, ci *jetstream.ConsumerInfo) (ReloadReason, []any) {
	var skipped uint64
	switch {
	case info.State.FirstSeq > s.lastSeq+1:
		skipped = info.State.FirstSeq - s.lastSeq - 1
	case s.excl && info.State.LastSeq > s.lastSeq && ci.NumPending < info.State.LastSeq-s.lastSeq:
		// Every sequence after lastSeq is a feed message, and new ones
		// only add to NumPending: fewer pending means removed.
		skipped = info.State.LastSeq - s.lastSeq - ci.NumPending
	default:
		return ReloadNone, nil
	}
	s.m.skipped.Add(float64(skipped))
	return ReloadGap, []any{"skipped", skipped, "stream_first_seq", info.State.FirstSeq, "stream_last_seq", info.State.LastSeq, "pending", ci.NumPending}
}

// createConsumer creates the next consumer: last message per subject when
// (re)loading from scratch, else from the sequence after the last handled.
// The call is hedged (see apiHedge), and every copy, like every attempt,
// creates a consumer of its own, with a fresh name. A name is never sent
// twice: a create with the name of an existing consumer is an update of
// that consumer's assignment, answered by the server the consumer lives on.
// If that server crashed (the meta leader places a new consumer on a peer
// it still believes alive for a few seconds after a crash: the peer is only
// marked offline minutes later), every create with that name goes
// unanswered, until the orphan's InactiveThreshold, which the dead server
// cannot enforce. The copies that may have created a consumer without their
// answer being used are deleted once a consumer was created.
func (s *JetStreamSource) createConsumer(ctx context.Context, js jetstream.JetStream) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		DeliverPolicy:     jetstream.DeliverLastPerSubjectPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		FilterSubject:     subjectsFor(s.cfg.SubjectPrefix),
		InactiveThreshold: consumerInactive,
		Replicas:          1,
		MemoryStorage:     true,
	}
	if s.lastSeq > 0 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = s.lastSeq + 1
		if s.phase == phaseLive {
			s.phase = phaseResume
		}
	} else {
		s.phase = phaseReplay
	}
	s.delivered = 0
	var (
		mu    sync.Mutex
		maybe []string // names whose creation may have reached the server
	)
	cons, err := hedged(ctx, apiHedge, func(ctx context.Context) (jetstream.Consumer, error) {
		c := cfg
		mu.Lock()
		s.serial++
		c.Name = fmt.Sprintf("%s_%d", s.prefix, s.serial)
		mu.Unlock()
		cons, err := js.CreateConsumer(ctx, s.cfg.Stream, c)
		var apiErr *jetstream.APIError
		if err == nil || !errors.As(err, &apiErr) { // an API error: the server answered, nothing created
			mu.Lock()
			maybe = append(maybe, c.Name)
			mu.Unlock()
		}
		return cons, err
	})
	// hedged waited for every copy: maybe and serial are Run's again.
	var name string
	if err == nil {
		name = cons.CachedInfo().Name
	}
	for _, n := range maybe {
		if n != name {
			s.unconfirmed = append(s.unconfirmed, n)
		}
	}
	if k := len(s.unconfirmed) - maxUnconfirmed; k > 0 {
		s.unconfirmed = append(s.unconfirmed[:0], s.unconfirmed[k:]...)
	}
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			s.setStreamMissing(true)
		}
		return nil, fmt.Errorf("jetstream source: create consumer on %s: %w", s.cfg.Stream, err)
	}
	// JetStream answers again: the consumers that may have been created
	// without an answer go now (best effort, in the background).
	for _, n := range s.unconfirmed {
		s.deleteConsumer(ctx, js, n)
	}
	s.unconfirmed = s.unconfirmed[:0]
	s.log.Debug("consumer created", "consumer", name, "deliver", cfg.DeliverPolicy.String(), "start_seq", cfg.OptStartSeq,
		"pending", cons.CachedInfo().NumPending)
	return cons, nil
}

// deleteConsumer removes a consumer that is no longer used, best effort:
// the server would drop it after consumerInactive anyway. On shutdown (ctx
// done) it waits for the call; otherwise the call runs in the background,
// so that a JetStream that does not answer does not delay the next
// consumer, and Run waits for it before returning.
func (s *JetStreamSource) deleteConsumer(ctx context.Context, js jetstream.JetStream, name string) {
	if !s.nc.IsConnected() {
		return
	}
	del := func() {
		dctx, cancel := context.WithTimeout(context.Background(), deleteTimeout)
		defer cancel()
		if err := js.DeleteConsumer(dctx, s.cfg.Stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			s.log.Debug("delete consumer", "consumer", name, "err", err)
		}
	}
	if ctx.Err() != nil {
		del()
		return
	}
	s.bg.Go(del)
}

// handle applies one message. It returns a reload reason (with log
// attributes) when the message shows the state must be replayed, or an
// error when the consumer must be replaced (messages lost in flight).
func (s *JetStreamSource) handle(msg jetstream.Msg) (ReloadReason, []any, error) {
	md, err := msg.Metadata()
	if err != nil {
		s.proc.reject(ReasonBadMetadata, msg.Subject(), len(msg.Data()), 0, err)
		return ReloadNone, nil, nil
	}
	if md.Sequence.Consumer != s.delivered+1 {
		return ReloadNone, nil, fmt.Errorf("jetstream source: %w (delivery %d after %d)", errLostInFlight, md.Sequence.Consumer, s.delivered)
	}
	s.delivered = md.Sequence.Consumer
	seq := md.Sequence.Stream
	if s.lastSeq > 0 && seq <= s.lastSeq {
		// A consumer starts after lastSeq and never goes backwards: the
		// stream's sequences restarted.
		return ReloadRecreated, []any{"seq", seq}, nil
	}
	if s.lastSeq > 0 && seq > s.lastSeq+1 && s.phase != phaseReplay && s.excl {
		skipped := seq - s.lastSeq - 1
		s.m.skipped.Add(float64(skipped))
		if s.phase == phaseResume {
			return ReloadGap, []any{"skipped", skipped, "seq", seq}, nil
		}
		s.proc.warnLimited("skipped", "messages removed before they were delivered (deleted, purged, or discarded by the stream's limits while this replica lagged)",
			"skipped", skipped, "last_seq", s.lastSeq, "seq", seq)
	}
	s.lastSeq = seq
	s.seq.Store(seq)
	s.markProgress(time.Now())
	s.m.pending.Set(float64(md.NumPending))
	s.proc.handle(msg.Subject(), msg.Data(), seq, md.Timestamp)
	if md.NumPending == 0 {
		s.caughtUp()
	}
	return ReloadNone, nil, nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
