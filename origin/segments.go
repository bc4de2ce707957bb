package origin

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"marquee/cdn"
	"marquee/segmenter"
)

// parseIndex parses a segment or part number strictly: decimal digits only,
// no sign, no leading zeros, at most 15 digits. One canonical spelling per
// number keeps one cache key per segment at the edge.
func parseIndex(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 15 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// inWindow checks segment n against the window this origin can serve at
// the moment whose segment is cur: a segment the feed still retains, the
// current one, or the next. It compares integers only, so that no time is
// computed for a segment number from a request before it is known to be
// near now (n·D overflows for numbers of nine digits and more). It answers
// a refusal itself: 404 for a segment that has not started, 410 for one no
// longer retained, both counted as refused{reason="window"}.
func (s *Server) inWindow(w http.ResponseWriter, r *http.Request, f *segmenter.Feed, n, cur int64) bool {
	switch {
	case n > cur+1:
		s.refuse(w, r, refusedWindow, errNotStarted(n, cur))
		return false
	case n < cur:
		if _, ok := f.Segment(n); !ok {
			s.refuse(w, r, refusedWindow, errGone(n, cur))
			return false
		}
	}
	return true
}

func errNotStarted(n, cur int64) httpError {
	return httpError{Code: http.StatusNotFound, Msg: "segment " + strconv.FormatInt(n, 10) + " has not started; current is " + strconv.FormatInt(cur, 10)}
}

func errGone(n, cur int64) httpError {
	return httpError{Code: http.StatusGone, Msg: "segment " + strconv.FormatInt(n, 10) + " is no longer retained; current is " + strconv.FormatInt(cur, 10)}
}

// tickGrace bounds how long after a boundary plus the segmenter's lateness
// allowance a request waits for the segmenter to open the segment (or
// record the part) that boundary starts.
const tickGrace = 2 * time.Second

// lookupSegment finds the log of segment n for a request, holding an early
// request for the next segment until it opens. It answers errors itself.
// held reports whether the request waited for the segment to start.
func (s *Server) lookupSegment(w http.ResponseWriter, r *http.Request, f *segmenter.Feed, n int64, st *stream) (l *segmenter.Log, held, ok bool) {
	now := s.hub.Now()
	g := s.hub.Grid()
	cur := g.Index(now)
	// A segment opens at its start plus the lateness allowance at the
	// latest (earlier when an update stamped in it arrives).
	lateness := s.hub.Config().PartLateness
	switch {
	case n <= cur:
		if l, ok := f.Segment(n); ok {
			return l, false, true
		}
		if n == cur {
			// The boundary just passed and the segmenter has not ticked
			// yet (or the hub is still loading): wait a little, never past
			// a drain.
			ctx, cancel := context.WithTimeoutCause(st.ctx, lateness+tickGrace, errHoldExpired)
			defer cancel()
			if l, err := f.WaitSegment(ctx, n); err == nil {
				return l, false, true
			}
			s.writeError(w, r, errUnavailable)
			return nil, false, false
		}
		s.writeError(w, r, errGone(n, cur))
		return nil, false, false
	case n == cur+1 && g.Start(n).Sub(now) <= s.cfg.EarlyHold:
		// Held until the segment opens, bounded in case it never does
		// (a hub that is still loading opens none).
		ctx, cancel := context.WithDeadlineCause(st.ctx, g.Start(n).Add(lateness+tickGrace), errHoldExpired)
		defer cancel()
		l, err := f.WaitSegment(ctx, n)
		if err != nil {
			if errors.Is(err, segmenter.ErrClosed) || r.Context().Err() == nil {
				s.writeError(w, r, errUnavailable)
			}
			return nil, true, false
		}
		return l, true, true
	default:
		s.writeError(w, r, errNotStarted(n, cur))
		return nil, false, false
	}
}

// handleSegment serves stream mode: the segment log from byte 0, then live
// until the segment closes.
//
// Over HTTP/1.0 only a finished segment is served (whole, with its
// Content-Length): HTTP/1.0 has no chunked encoding, so a stream cut short
// by drain or an aborted segment would end like a complete response, and
// an edge or client could keep it as one.
func (s *Server) handleSegment(w http.ResponseWriter, r *http.Request) {
	f, ok := s.feed(w, r)
	if !ok {
		return
	}
	n, ok := parseIndex(r.PathValue("n"))
	if !ok {
		s.writeError(w, r, httpError{Code: http.StatusBadRequest, Msg: "segment must be a non-negative integer without leading zeros"})
		return
	}
	if !s.inWindow(w, r, f, n, s.hub.Grid().Index(s.hub.Now())) {
		return
	}
	whole := !r.ProtoAtLeast(1, 1)
	if whole {
		if l, ok := f.Segment(n); !ok || l.State() != segmenter.Closed {
			s.refuse(w, r, refusedProtocol, httpError{Code: http.StatusBadRequest,
				Msg: "stream mode needs HTTP/1.1 or later (over HTTP/1.0 a segment cut short looks complete); only finished segments are served over HTTP/1.0; use parts or direct mode"})
			return
		}
	}
	st := s.openStream(w, r, modeStream)
	if st == nil {
		return
	}
	reason := reasonClientGone
	defer func() {
		if reason != reasonHandedOff {
			s.closeStream(st, modeStream, reason)
		}
	}()

	l, held, ok := s.lookupSegment(w, r, f, n, st)
	if !ok {
		reason = reasonRefused
		if r.Context().Err() != nil {
			reason = reasonClientGone
		}
		return
	}
	now := s.hub.Now()
	h := w.Header()
	cdn.Stream(h)
	h.Set(cdn.HeaderResponseID, s.responseID())
	h.Set(cdn.HeaderSegment, strconv.FormatInt(n, 10))
	kind := segmentLive
	switch {
	case l.State() == segmenter.Closed:
		s.policy.Set(h, cdn.Finished, now, l.End)
		kind = segmentFinished
		if whole {
			h.Set("Content-Length", strconv.Itoa(l.Len())) // a closed log never changes
		}
	case l.State() == segmenter.Aborted:
		s.writeError(w, r, errUnavailable)
		reason = reasonAborted
		return
	default:
		s.policy.Set(h, cdn.OpenSegment, now, l.End)
		if held {
			kind = segmentHeld
		}
	}
	handOff := kind != segmentFinished && s.canHandOff(w, r)
	if handOff {
		closeAfter(h)
	}
	s.m.segmentResponse(f, kind)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		reason = reasonComplete
		return
	}
	reason = s.copyLog(w, l, st, handOff)
	if reason == reasonHandedOff {
		return
	}
	if reason != reasonComplete && reason != reasonClientGone {
		// The body is incomplete (aborted segment, drain, slow viewer):
		// end the response without its terminating chunk so that no edge
		// caches a truncated segment. The deferred closeStream counts it.
		panic(http.ErrAbortHandler)
	}
}

// copyLog copies the log to w until it closes, the client leaves or the
// stream is stopped, and returns why it ended. With handOff, once the
// first batch is written, the response is handed off while the segment is
// open (reasonHandedOff: the handler returns and leaves w alone).
func (s *Server) copyLog(w http.ResponseWriter, l *segmenter.Log, st *stream, handOff bool) string {
	rc := http.NewResponseController(w)
	bytes := s.m.bytesWritten.WithLabelValues(modeStream)
	off := 0
	first := true
	for {
		data, state, wake := l.Since(off)
		if len(data) > 0 || first {
			first = false
			rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
			if len(data) > 0 {
				if _, err := w.Write(data); err != nil {
					return reasonWriteError
				}
			}
			if err := rc.Flush(); err != nil {
				return reasonWriteError
			}
			off += len(data)
			bytes.Add(float64(len(data)))
			if l.Len()-off > s.cfg.MaxLagBytes {
				return reasonSlow
			}
		}
		switch state {
		case segmenter.Closed:
			return reasonComplete
		case segmenter.Aborted:
			return reasonAborted
		}
		if handOff {
			if s.handOff(w, st, modeStream, nil, l, 0, off) {
				return reasonHandedOff
			}
			handOff = false
		}
		select {
		case <-wake:
		case <-st.ctx.Done():
			return reasonOf(st.ctx) // the client left, or drain
		}
	}
}
