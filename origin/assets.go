package origin

import "net/http"

// Placeholder until the browser client and dashboard land (issue 3).

func (s *Server) handleDashboard(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, httpError{Code: http.StatusNotFound, Msg: "dashboard not built yet"})
}

func (s *Server) handleClient(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, httpError{Code: http.StatusNotFound, Msg: "client not built yet"})
}

func (s *Server) handleAsset(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, httpError{Code: http.StatusNotFound, Msg: "not found"})
}
