package origin

import (
	"context"
	"errors"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"marquee/segmenter"
)

// Hand-off: after its first batch, a live stream-mode or direct-mode
// response over plain HTTP/1.1 leaves its handler. The handler hijacks the
// connection (net/http's connection goroutine, its background reader and
// its 4 KiB read and write buffers go away with it) and hands it to the
// writers of its source: a few goroutines per feed (direct mode) or per
// open segment log (stream mode), GOMAXPROCS at most, each owning a share
// of the source's connections. On every change of the source each writer
// wakes once, takes the source's immutable view with one atomic load, and
// for each of its connections writes what is new as one HTTP/1.1 chunk,
// straight from the shared bytes (writev of the chunk header, the shared
// slice and the trailer: no per-viewer copy, no per-viewer buffer, no
// allocation), without blocking: a socket whose buffer is full takes what
// fits and its viewer moves to a goroutine of its own that finishes the
// write with the write deadline (the slow path, where the policies of
// slowness apply as before), and rejoins its writer once caught up.
//
// A connection costs its socket and one small struct. Nobody reads it: the
// peer going away is noticed by a watcher (one epoll instance for the
// whole server, edge-triggered on the peer's hang-up) or by the next
// write. Drain and the hub's abort reach a connection through its stream
// (stream.end: no goroutine, no context machinery) or the source's view.
//
// Close reasons, metrics, the slow-reader policy, drain and aborted
// segments behave as in the handlers' own loops: a clean end writes the
// terminating chunk, an aborted one cuts the connection without it. What
// differs: the connection is closed after the response ends (it cannot go
// back to net/http; the response says Connection: close, and the next
// request opens a new one), and the keepalive of a direct viewer is
// written by its writer, whose clock is read once per pass.
//
// Only responses whose connection can be taken over are handed off: plain
// HTTP/1.1 (not HTTP/2, not HTTP/1.0, not TLS), through a ResponseWriter
// that can be hijacked, on a platform with the non-blocking writer (Linux),
// with Config.HandOff on. Every other response stays in its handler.

// reasonHandedOff is copyLog's answer when the response left the handler
// (not a close reason: the hand-off counts the real one when it ends).
const reasonHandedOff = "handed_off"

var (
	crlf        = []byte("\r\n")
	crlfLast    = []byte("\r\n0\r\n\r\n") // a chunk's trailer, then the terminating chunk
	lastChunk   = []byte("0\r\n\r\n")
	errBlocked  = errors.New("origin: socket buffer full")
	errNotTaken = errors.New("origin: connection cannot be handed off")
)

// handoff owns the writers, their groups and the watcher of one Server.
type handoff struct {
	s         *Server
	keepalive time.Duration // direct mode's keepalive interval
	shards    int           // writers per source, at most
	watch     *watcher

	mu     sync.Mutex     // guards groups; taken before any shard's mu
	groups map[any]*group // by *segmenter.Feed (direct) or *segmenter.Log (stream)

	// running counts every goroutine of the hand-off (writers, slow paths,
	// the watcher). Each ends by itself once its work is gone: writers when
	// their shard has no viewer, slow paths when their viewer rejoins or
	// ends, the watcher when nothing is registered. Drain ends every
	// viewer, then waits for running to reach 0 (wait).
	running atomic.Int64
}

// wait returns once every goroutine of the hand-off has ended (Drain, once
// every stream is closed), or with ctx's error.
func (h *handoff) wait(ctx context.Context) error {
	for h.running.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// spawn runs f on a goroutine counted in running.
func (h *handoff) spawn(f func()) {
	h.running.Add(1)
	go func() {
		defer h.running.Add(-1)
		f()
	}()
}

func newHandoff(s *Server, keepalive time.Duration) *handoff {
	h := &handoff{
		s:         s,
		keepalive: keepalive,
		shards:    min(max(runtime.GOMAXPROCS(0), 1), 16),
		groups:    make(map[any]*group),
	}
	h.watch = newWatcher(h.spawn)
	return h
}

// group is one source's connections, spread over its shards.
type group struct {
	key    any
	feed   *segmenter.Feed // direct mode, else nil
	log    *segmenter.Log  // stream mode, else nil
	mode   string
	shards []*shard
}

// shard is one writer goroutine of a group and the connections it owns.
type shard struct {
	h    *handoff
	g    *group
	kick chan struct{} // wakes the writer: joiners, stopped viewers, finished slow paths

	mu      sync.Mutex // guards the fields below
	joining []*sub     // handed off or back from the slow path, not yet taken by the writer
	n       int        // viewers of this shard: in the writer, joining, or on the slow path
	running bool       // the writer goroutine runs

	// The writer goroutine's own.
	subs  []*sub
	w     *rawWriter
	hdr   [20]byte
	bytes int // body bytes written since the last metrics update
}

// sub is one handed-off response.
type sub struct {
	sh    *shard
	st    *stream
	mode  string
	conn  net.Conn
	rc    syscall.RawConn
	token uint64 // the watcher's registration, 0 for none

	stopped atomic.Bool // st.ctx ended or the peer hung up: end at the next step
	gone    atomic.Bool // the peer hung up

	// The position, owned by whoever runs the viewer: its writer, or its
	// slow-path goroutine.
	cursor uint64    // direct: the last sequence sent
	off    int       // stream: the log offset sent up to
	last   time.Time // direct: the last write (keepalive)
}

// unlinked is a stream's unlink once it has been unlinked.
func unlinked() bool { return false }

// poke wakes the shard's writer (never blocks).
func (sh *shard) poke() {
	select {
	case sh.kick <- struct{}{}:
	default:
	}
}

func (sb *sub) stop() {
	sb.stopped.Store(true)
	sb.sh.poke()
}

// stopReason is the close reason of a stopped viewer.
func (sb *sub) stopReason() string {
	if sb.gone.Load() || sb.st.ctx.Err() == nil {
		return reasonClientGone
	}
	return reasonOf(sb.st.ctx)
}

// canHandOff reports whether the response can be handed off once its
// first batch is written: decided before the header is sent.
func (s *Server) canHandOff(w http.ResponseWriter, r *http.Request) bool {
	if !handoffSupported || !s.cfg.HandOff || r.ProtoMajor != 1 || r.ProtoMinor != 1 || r.TLS != nil || r.Method != http.MethodGet {
		return false
	}
	for {
		if _, ok := w.(http.Hijacker); ok {
			return true
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return false
		}
		w = u.Unwrap()
	}
}

// closeAfter says in the header of a response that may be handed off that
// its connection closes after it (RFC 9112 §9.6): a handed-off connection
// never goes back to net/http, and a client or edge that took it for a
// persistent one would send its next request into a closing socket.
func closeAfter(h http.Header) { h.Set("Connection", "close") }

// handOff takes the response's connection over (its header and first
// batch written and flushed, the body chunked) and gives it to the
// writers of its source: f for direct mode (the viewer has sent up to
// cursor), l for stream mode (up to off). When it returns false nothing
// changed and the handler keeps serving the response. When it returns
// true the handler must return at once without touching w again: the
// stream is closed (and counted) when the hand-off ends it.
func (s *Server) handOff(w http.ResponseWriter, st *stream, mode string, f *segmenter.Feed, l *segmenter.Log, cursor uint64, off int) bool {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false
	}
	_ = brw // holds nothing of ours: the header and first batch were flushed; client bytes are ignored
	h := s.hand
	sb := &sub{st: st, mode: mode, conn: conn, cursor: cursor, off: off, last: time.Now()}
	if !st.unlink() {
		// The client left before the hand-off; its context is ending.
		conn.Close()
		s.closeStream(st, mode, reasonClientGone)
		return true
	}
	st.unlink = unlinked // and let the request's context go
	sc, ok := conn.(syscall.Conn)
	if ok {
		sb.rc, err = sc.SyscallConn()
	}
	if !ok || err != nil {
		// Cannot happen with the listeners marquee serves (TCP, or
		// LimitListener over TCP): without the socket there is no
		// non-blocking write. End the response cleanly; the viewer
		// reconnects.
		conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		reason := reasonDrain
		if mode == modeStream {
			reason = reasonAborted
		} else {
			conn.Write(lastChunk)
		}
		conn.Close()
		s.log.Warn("stream hand-off: connection without a socket", "err", errNotTaken)
		s.closeStream(st, mode, reason)
		return true
	}
	key := any(f)
	if l != nil {
		key = l
	}
	h.mu.Lock()
	g := h.groups[key]
	if g == nil {
		g = &group{key: key, feed: f, log: l, mode: mode, shards: make([]*shard, h.shards)}
		for i := range g.shards {
			g.shards[i] = &shard{h: h, g: g, kick: make(chan struct{}, 1)}
		}
		h.groups[key] = g
	}
	sh := g.shards[0]
	for _, c := range g.shards[1:] {
		c.mu.Lock()
		n := c.n
		c.mu.Unlock()
		sh.mu.Lock()
		least := sh.n
		sh.mu.Unlock()
		if n < least {
			sh = c
		}
	}
	sb.sh = sh
	sh.mu.Lock()
	sh.n++
	start := !sh.running
	sh.running = true
	sh.mu.Unlock()
	// Registered before the writer can see the viewer (and only once its
	// shard is known: either may stop it at once). Drain ends the stream
	// (stream.end) by cancelling its context, then stopping st.sub: one of
	// the two sees the other's write.
	sb.token = h.watch.add(sb)
	st.sub.Store(sb)
	if st.ctx.Err() != nil {
		sb.stop()
	}
	sh.mu.Lock()
	sh.joining = append(sh.joining, sb)
	sh.mu.Unlock()
	if start {
		h.spawn(sh.run)
	}
	h.mu.Unlock()
	s.m.handedOff.WithLabelValues(mode).Inc()
	sh.poke()
	return true
}

// run is a shard's writer: a pass over its viewers at every change of the
// source, at every kick and (direct mode) when a keepalive is due. It
// returns once the shard has no viewer left.
func (sh *shard) run() {
	sh.w = newRawWriter()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		sh.mu.Lock()
		sh.subs = append(sh.subs, sh.joining...)
		clear(sh.joining)
		sh.joining = sh.joining[:0]
		empty := sh.n == 0
		sh.mu.Unlock()
		if empty && sh.exit() {
			return
		}
		var (
			wake <-chan struct{}
			due  time.Time
		)
		if sh.g.feed != nil {
			wake, due = sh.passDirect()
		} else {
			wake = sh.passStream()
		}
		if sh.bytes > 0 {
			sh.h.s.m.bytesWritten.WithLabelValues(sh.g.mode).Add(float64(sh.bytes))
			sh.bytes = 0
		}
		var tick <-chan time.Time
		if !due.IsZero() && len(sh.subs) > 0 {
			d := max(time.Until(due), time.Millisecond)
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			tick = timer.C
		}
		select {
		case <-wake:
		case <-sh.kick:
		case <-tick:
		}
	}
}

// exit ends the writer if the shard is still empty, dropping the group
// once none of its shards runs. Lock order: the hand-off's, then the shard's.
func (sh *shard) exit() bool {
	h := sh.h
	h.mu.Lock()
	defer h.mu.Unlock()
	sh.mu.Lock()
	if sh.n > 0 || len(sh.joining) > 0 {
		sh.mu.Unlock()
		return false
	}
	sh.running = false
	sh.mu.Unlock()
	for _, c := range sh.g.shards {
		c.mu.Lock()
		running := c.running
		c.mu.Unlock()
		if running {
			return true
		}
	}
	if h.groups[sh.g.key] == sh.g {
		delete(h.groups, sh.g.key)
	}
	return true
}

// step is what a viewer is sent next: data as one chunk (nil for none),
// then, when end is set, the response ends with that close reason,
// cleanly (the terminating chunk) or cut (no terminating chunk, so that no
// edge keeps a truncated segment).
type step struct {
	data  []byte
	end   string
	clean bool
}

// nextDirect is a direct viewer's next step against view v at time now,
// its position advanced past it.
func (sb *sub) nextDirect(v *segmenter.DirectView, now time.Time, keepalive time.Duration) step {
	switch {
	case sb.stopped.Load():
		return step{end: sb.stopReason(), clean: !sb.gone.Load()}
	case v.Closed():
		return step{end: reasonDrain, clean: true}
	}
	data, last, ok := v.Since(sb.cursor)
	if !ok {
		// The viewer fell out of the history: it was too slow. It
		// reconnects with Last-Event-ID and gets a snapshot.
		return step{end: reasonSlow, clean: true}
	}
	if len(data) == 0 {
		if now.Sub(sb.last) < keepalive {
			return step{}
		}
		data = keepaliveFrame
	}
	sb.cursor, sb.last = last, now
	return step{data: data}
}

// nextStream is a stream viewer's next step, its offset advanced past it.
func (sb *sub) nextStream(l *segmenter.Log, maxLag int) step {
	if sb.stopped.Load() {
		return step{end: sb.stopReason()} // drain or the client gone: cut
	}
	data, state, _ := l.Since(sb.off)
	switch {
	case state == segmenter.Aborted:
		return step{end: reasonAborted}
	case len(data) > maxLag:
		return step{end: reasonSlow}
	}
	sb.off += len(data)
	if state == segmenter.Closed {
		return step{data: data, end: reasonComplete, clean: true}
	}
	return step{data: data}
}

// passDirect runs one pass over a direct shard's viewers; it returns the
// channel of the next change and when the next keepalive is due.
func (sh *shard) passDirect() (<-chan struct{}, time.Time) {
	v := sh.g.feed.Direct()
	now := time.Now()
	ka := sh.h.keepalive
	due := now.Add(ka)
	for i := 0; i < len(sh.subs); {
		sb := sh.subs[i]
		if sh.apply(sb, sb.nextDirect(v, now, ka)) {
			if d := sb.last.Add(ka); d.Before(due) {
				due = d
			}
			i++
			continue
		}
		sh.remove(i)
	}
	return v.Wake(), due
}

// passStream runs one pass over a stream shard's viewers.
func (sh *shard) passStream() <-chan struct{} {
	l := sh.g.log
	_, _, wake := l.Since(l.Len()) // before reading: a change after this closes it
	maxLag := sh.h.s.cfg.MaxLagBytes
	for i := 0; i < len(sh.subs); {
		sb := sh.subs[i]
		if sh.apply(sb, sb.nextStream(l, maxLag)) {
			i++
			continue
		}
		sh.remove(i)
	}
	return wake
}

// remove drops viewer i from the writer's list (it ended or went slow).
func (sh *shard) remove(i int) {
	last := len(sh.subs) - 1
	sh.subs[i] = sh.subs[last]
	sh.subs[last] = nil
	sh.subs = sh.subs[:last]
}

// frame returns the pieces of one step on the wire: the chunk header, the
// data and the trailer (with the terminating chunk on a clean end). hdr
// is scratch space for the header.
func frame(hdr []byte, s step) (h, data, tail []byte) {
	switch {
	case len(s.data) > 0:
		h = append(strconv.AppendInt(hdr[:0], int64(len(s.data)), 16), '\r', '\n')
		tail = crlf
		if s.end != "" && s.clean {
			tail = crlfLast
		}
		return h, s.data, tail
	case s.end != "" && s.clean:
		return nil, nil, lastChunk
	}
	return nil, nil, nil
}

// apply carries out one step of a viewer in the writer. It reports whether
// the viewer stays in the writer's list.
func (sh *shard) apply(sb *sub, s step) bool {
	h, data, tail := frame(sh.hdr[:], s)
	total := len(h) + len(data) + len(tail)
	if total == 0 {
		if s.end != "" {
			sh.finish(sb, s.end)
			return false
		}
		return true
	}
	sh.bytes += len(data)
	n, err := sh.w.write(sb.rc, h, data, tail)
	switch {
	case n == total:
		if s.end != "" {
			sh.finish(sb, s.end)
			return false
		}
		return true
	case err == nil || errors.Is(err, errBlocked):
		// The socket took n bytes: the rest goes out on the slow path,
		// blocking with the write deadline. The header is scratch space:
		// copy what is left of it.
		pending := make(net.Buffers, 0, 3)
		for _, p := range [][]byte{h, data, tail} {
			switch {
			case n >= len(p):
				n -= len(p)
			case &p[0] == &sh.hdr[0]:
				pending = append(pending, append([]byte(nil), p[n:]...))
				n = 0
			default:
				pending = append(pending, p[n:])
				n = 0
			}
		}
		sh.h.spawn(func() { sh.slow(sb, pending, s.end) })
		return false
	default:
		sh.finish(sb, writeFailure(err))
		return false
	}
}

// slow is a viewer's slow path: it writes pending with the write deadline,
// then keeps writing what the source has for it, blocking, until it has
// caught up (it rejoins its writer) or its response ends. end, when set,
// is the close reason after pending.
func (sh *shard) slow(sb *sub, pending net.Buffers, end string) {
	s := sh.h.s
	var hdr [20]byte
	for {
		sb.conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		if _, err := pending.WriteTo(sb.conn); err != nil {
			sh.finish(sb, writeFailure(err))
			return
		}
		if end != "" {
			sh.finish(sb, end)
			return
		}
		var st step
		if sh.g.feed != nil {
			st = sb.nextDirect(sh.g.feed.Direct(), time.Now(), sh.h.keepalive)
		} else {
			st = sb.nextStream(sh.g.log, s.cfg.MaxLagBytes)
		}
		h, data, tail := frame(hdr[:], st)
		if len(h)+len(data)+len(tail) == 0 {
			if st.end != "" {
				sh.finish(sb, st.end)
				return
			}
			// Caught up: back to the writer, without a deadline (a
			// deadline would fail the writer's non-blocking writes).
			sb.conn.SetWriteDeadline(time.Time{})
			sh.mu.Lock()
			sh.joining = append(sh.joining, sb)
			sh.mu.Unlock()
			sh.poke()
			return
		}
		s.m.bytesWritten.WithLabelValues(sh.g.mode).Add(float64(len(data)))
		pending = append(pending[:0], h, data, tail)
		end = st.end
	}
}

// finish ends a viewer: the watcher forgets it, the connection closes, the
// stream is counted closed with reason, and its shard has one viewer less.
func (sh *shard) finish(sb *sub, reason string) {
	sh.h.watch.remove(sb)
	sb.conn.Close()
	sh.h.s.closeStream(sb.st, sb.mode, reason)
	sh.mu.Lock()
	sh.n--
	sh.mu.Unlock()
	sh.poke() // an empty writer exits
}

// writeFailure is the close reason of a failed write: the peer gone, or
// (a timeout, anything else) a write error.
func writeFailure(err error) string {
	if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
		return reasonClientGone
	}
	return reasonWriteError
}
