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

// Parts mode (LL-HLS style, for edges that buffer cacheable responses):
//
//	GET /v1/feeds/{feed}/segments/{n}/parts/{k}  the bytes written during part k
//	GET /v1/feeds/{feed}/segments/{n}/upto/{k}   the bytes from the start to the end of part k
//
// Both are complete responses with Content-Length. Once part k is finished
// they never change and are immutable. A request for the part in progress
// or the next one is held until that part is finished (blocking reload), so
// an edge's ordinary collapsing of concurrent misses does the fan-out. A
// part finishes at its end plus the segmenter's lateness allowance (or
// earlier, when an update stamped after its end arrives), so that every
// replica's copy holds the same updates.

func (s *Server) handlePart(w http.ResponseWriter, r *http.Request) { s.servePart(w, r, false) }
func (s *Server) handleUpto(w http.ResponseWriter, r *http.Request) { s.servePart(w, r, true) }

func (s *Server) servePart(w http.ResponseWriter, r *http.Request, upto bool) {
	f, ok := s.feed(w, r)
	if !ok {
		return
	}
	n, ok1 := parseIndex(r.PathValue("n"))
	k64, ok2 := parseIndex(r.PathValue("k"))
	parts := s.hub.Config().Parts()
	if !ok1 || !ok2 {
		s.writeError(w, r, httpError{Code: http.StatusBadRequest, Msg: "segment and part must be non-negative integers without leading zeros"})
		return
	}
	if k64 >= int64(parts) {
		s.writeError(w, r, httpError{Code: http.StatusNotFound, Msg: "part " + strconv.FormatInt(k64, 10) + " out of range: a segment has " + strconv.Itoa(parts) + " parts"})
		return
	}
	k := int(k64)
	g := s.hub.Grid()
	now := s.hub.Now()
	cur := g.Index(now)
	// n is known to be retained, current or next before any time of it is
	// computed: PartEnd of a segment number far out saturates (it used to
	// wrap around to some time near now and hold the request).
	if !s.inWindow(w, r, f, n, cur) {
		return
	}
	partEnd := g.PartEnd(n, k)
	// The part in progress ends within one part length; the next one within two.
	if partEnd.Sub(now) > 2*g.Part {
		s.writeError(w, r, httpError{Code: http.StatusNotFound, Msg: "part has not started; current segment is " + strconv.FormatInt(cur, 10)})
		return
	}

	st := s.openStream(w, r, modePart)
	if st == nil {
		return
	}
	reason := reasonComplete
	defer func() { s.closeStream(st, modePart, reason) }()

	// Every hold is bounded: the part ends at partEnd, at most two parts
	// from now, closes once its lateness allowance ran out, and the
	// segmenter records that within tickGrace.
	lateness := s.hub.Config().PartLateness
	ctx, cancel := context.WithDeadlineCause(st.ctx, partEnd.Add(lateness+tickGrace), errHoldExpired)
	defer cancel()

	l, found := f.Segment(n)
	if !found {
		if n < cur {
			// Expired since inWindow looked.
			reason = reasonRefused
			s.writeError(w, r, errGone(n, cur))
			return
		}
		// The current segment not opened yet, or the next one: wait for it.
		var err error
		if l, err = f.WaitSegment(ctx, n); err != nil {
			reason = s.heldFailed(ctx, w, r, err)
			return
		}
	}
	if k < l.FirstPart() {
		reason = reasonRefused
		s.writeError(w, r, httpError{Code: http.StatusGone, Msg: "part " + strconv.Itoa(k) + " predates this origin's copy of segment " + strconv.FormatInt(n, 10) + "; join at the current part"})
		return
	}
	held := false
	for {
		var (
			data  []byte
			ready bool
			state segmenter.LogState
			wake  <-chan struct{}
		)
		if upto {
			data, ready, state, wake = l.UpTo(k)
		} else {
			data, ready, state, wake = l.Part(k)
		}
		if ready {
			s.writePart(w, r, f, data, upto, held)
			return
		}
		if state == segmenter.Aborted || wake == nil {
			reason = reasonAborted
			s.writeError(w, r, errUnavailable)
			return
		}
		held = true
		select {
		case <-wake:
		case <-ctx.Done():
			reason = s.heldFailed(ctx, w, r, ctx.Err())
			return
		}
	}
}

// heldFailed answers a held request that could not be completed (its wait
// under ctx ended with err) and returns the close reason.
func (s *Server) heldFailed(ctx context.Context, w http.ResponseWriter, r *http.Request, err error) string {
	if r.Context().Err() != nil {
		return reasonClientGone
	}
	s.writeError(w, r, errUnavailable)
	if errors.Is(err, segmenter.ErrClosed) {
		return reasonAborted
	}
	return reasonOf(ctx) // drain, or the hold expired (refused)
}

func (s *Server) writePart(w http.ResponseWriter, r *http.Request, f *segmenter.Feed, data []byte, upto, held bool) {
	h := w.Header()
	cdn.Stream(h)
	s.policy.Set(h, cdn.Finished, time.Time{}, time.Time{})
	h.Set(cdn.HeaderResponseID, s.responseID())
	h.Set("Content-Length", strconv.Itoa(len(data)))
	s.m.partResponse(f, upto, held)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	if n, err := w.Write(data); err == nil {
		s.m.bytesWritten.WithLabelValues(modePart).Add(float64(n))
	}
}
