package origin

import (
	"net/http"
	"strconv"
	"time"

	"marquee/cdn"
	"marquee/segmenter"
	"marquee/sse"
)

// keepaliveFrame is the comment direct mode writes to an idle viewer,
// encoded once for all of them.
var keepaliveFrame = sse.AppendComment(nil, "keepalive")

// handleDirect serves direct mode: uncached SSE for deployments without a
// CDN. It resumes from Last-Event-ID out of the feed's bounded history, or
// starts with a snapshot, then follows live with its own keepalives.
func (s *Server) handleDirect(w http.ResponseWriter, r *http.Request) {
	f, ok := s.feed(w, r)
	if !ok {
		return
	}
	st := s.openStream(w, r, modeDirect)
	if st == nil {
		return
	}
	reason := reasonClientGone
	handed := false
	defer func() {
		if !handed {
			s.closeStream(st, modeDirect, reason)
		}
	}()
	handOff := s.canHandOff(w, r)
	if r.PathValue("token") != "" {
		// A tokened stream ends when its token expires: the viewer
		// reconnects with a fresh token and Last-Event-ID, and loses
		// nothing. Handed off or not, ending the stream ends it.
		tok, ok := s.requestToken(r)
		if !ok {
			reason = reasonExpired
			s.writeError(w, r, httpError{Code: http.StatusForbidden, Msg: "token refused (expired): fetch a new one"})
			return
		}
		st.expiry = time.AfterFunc(tok.Expires.Sub(s.hub.Now()), func() { st.end(errTokenExpired) })
	}

	h := w.Header()
	cdn.Stream(h)
	s.policy.Set(h, cdn.NoStore, time.Time{}, time.Time{})
	h.Set(cdn.HeaderResponseID, s.responseID())
	if handOff {
		closeAfter(h)
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		reason = reasonComplete
		return
	}

	cfg := s.hub.Config()
	// Sized by what goes into it (a handed-off viewer keeps nothing of it).
	buf := sse.AppendRetry(nil, int(cfg.Retry/time.Millisecond))
	var cursor uint64
	resumed := false
	// Last-Event-ID that is not a plain sequence number is ignored: the
	// viewer gets a snapshot, which is always correct.
	if id, err := strconv.ParseUint(r.Header.Get("Last-Event-ID"), 10, 64); err == nil {
		s.catchUp(st, f, id)
		var ok bool
		buf, cursor, ok, _, _ = f.DirectSince(id, buf)
		resumed = ok
		if !ok {
			cursor = 0
		}
	}
	// The snapshot frame is the feed's cached one, shared by every viewer
	// and written as it is: a copy per viewer would cost the whole state
	// per connection for as long as it stays open.
	var snapshot []byte
	if !resumed {
		snapshot, cursor = f.SnapshotFrame(s.hub.Now())
	}

	rc := http.NewResponseController(w)
	bytes := s.m.bytesWritten.WithLabelValues(modeDirect)
	keepalive := time.NewTimer(cfg.Keepalive)
	defer keepalive.Stop()
	for {
		if len(buf) > 0 || len(snapshot) > 0 {
			rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
			for _, b := range [][]byte{buf, snapshot} {
				if len(b) == 0 {
					continue
				}
				if _, err := w.Write(b); err != nil {
					reason = reasonWriteError
					return
				}
			}
			if err := rc.Flush(); err != nil {
				reason = reasonWriteError
				return
			}
			bytes.Add(float64(len(buf) + len(snapshot)))
			snapshot = nil
			keepalive.Reset(cfg.Keepalive)
			if handOff {
				// The first batch is out: the writers take it from here.
				if handed = s.handOff(w, st, modeDirect, f, nil, cursor, 0); handed {
					return
				}
				handOff = false
			}
		}
		var (
			wake   <-chan struct{}
			closed bool
		)
		buf, cursor, ok, wake, closed = f.DirectSince(cursor, buf[:0])
		if !ok {
			// The viewer fell out of the history: it was too slow. It
			// reconnects with Last-Event-ID and gets a snapshot.
			reason = reasonSlow
			return
		}
		if closed {
			// The feed ended: the hub shut down, or evicted or expired
			// the feed. A reconnect finds out which (404 for a feed gone).
			reason = reasonAborted
			return
		}
		if len(buf) > 0 {
			continue
		}
		select {
		case <-wake:
		case <-keepalive.C:
			buf = append(buf, keepaliveFrame...)
		case <-st.ctx.Done():
			reason = reasonOf(st.ctx) // the client left, or drain
			return
		}
	}
}

// directCatchUp bounds how long a direct viewer resuming from an id this
// replica has not applied yet waits for it. Behind a load balancer a viewer
// may reconnect to a replica a little behind the one it left; waiting
// lets it resume exactly where it was instead of stepping back to an older
// snapshot and seeing updates again. An id that never comes (a bogus one,
// or one from before the stream was recreated) costs this wait, then a
// snapshot.
const directCatchUp = 2 * time.Second

// catchUp waits until the feed has applied id, for at most directCatchUp,
// the stream's end (drain, client gone) or shutdown.
func (s *Server) catchUp(st *stream, f *segmenter.Feed, id uint64) {
	if f.Seq() >= id {
		return
	}
	timer := time.NewTimer(directCatchUp)
	defer timer.Stop()
	for {
		_, _, _, wake, closed := f.DirectSince(id, nil)
		if closed || f.Seq() >= id {
			return
		}
		select {
		case <-wake:
		case <-timer.C:
			return
		case <-st.ctx.Done():
			return
		}
	}
}
