package origin

import (
	"encoding/json"
	"errors"
	"net/http"

	"marquee/wire"
)

// Causes of a stream's context ending (see reasonOf).
var (
	errDrained      = errors.New("origin: stream ended by drain")
	errStreamDone   = errors.New("origin: stream handler returned")
	errHoldExpired  = errors.New("origin: held request was not released in time")
	errTokenExpired = errors.New("origin: the stream's token expired")
)

// httpError separates what a client is told from the cause that is logged.
type httpError struct {
	Code  int
	Msg   string // shown to the client
	Cause error  // logged, never shown
}

// writeError answers with a JSON error body and no-store: errors are never
// cached at an edge.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, e httpError) {
	if e.Cause != nil {
		s.log.Warn("request failed", "path", r.URL.Path, "code", e.Code, "msg", e.Msg, "err", e.Cause)
	} else {
		s.log.Debug("request refused", "path", r.URL.Path, "code", e.Code, "msg", e.Msg)
	}
	h := w.Header()
	s.policy.Set(h, noStore, s.hub.Now(), s.hub.Now())
	h.Set("Content-Type", "application/json")
	w.WriteHeader(e.Code)
	b, _ := json.Marshal(wire.Error{Message: e.Msg, Code: e.Code})
	w.Write(append(b, '\n'))
}

func (s *Server) writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.log.Error("encode json", "err", err)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(b, '\n'))
}
