package origin

import (
	"net/http"
	"strconv"
	"strings"

	"marquee/token"
)

// Protected feeds (MARQUEE_PROTECTED_FEEDS). Every feed route has a twin
// with the token of the current window after the feed's name:
//
//	/v1/feeds/{feed}/...           public feeds only; a protected feed: 403
//	/v1/feeds/{feed}/t/{token}/... protected feeds only; a public feed: 404
//
// so that every object has one URL, and all viewers holding the same
// window's token request the same URLs (one cache object per segment per
// window). The token is checked by time alone: any route, any segment
// number the origin would otherwise serve. Refusals are no-store and
// counted in marquee_token_refused_total{reason}; valid tokens cost one
// HMAC and no metric.

// Tokens returns the origin's keyring: which feeds are protected, and the
// keys to mint and validate their tokens with.
func (s *Server) Tokens() *token.Keyring { return s.tokens }

// tokenPublicFeed is the refusal reason of a public feed's tokened route.
const tokenPublicFeed = "public_feed"

// public guards a public route: a protected feed is refused (403 missing).
func (s *Server) public(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if name := r.PathValue("feed"); s.tokens.Protected(name) {
			s.refuseToken(w, r, token.ReasonMissing, httpError{Code: http.StatusForbidden,
				Msg: "feed " + name + " is protected: request it with a token, " + s.hub.Config().URLPrefix + "/" + name + "/t/{token}"})
			return
		}
		h(w, r)
	}
}

// tokened guards a tokened route: the feed must be protected (else 404)
// and the token valid for it now (else 403).
func (s *Server) tokened(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("feed")
		if !s.tokens.Protected(name) {
			twin := strings.Replace(r.URL.Path, "/t/"+r.PathValue("token"), "", 1)
			s.refuseToken(w, r, tokenPublicFeed, httpError{Code: http.StatusNotFound,
				Msg: "feed " + name + " is public; use " + twin})
			return
		}
		if err := s.tokens.Validate(name, r.PathValue("token"), s.hub.Now()); err != nil {
			s.refuseToken(w, r, token.ReasonOf(err), httpError{Code: http.StatusForbidden,
				Msg: "token refused (" + token.ReasonOf(err) + "): fetch a new one"})
			return
		}
		h(w, r)
	}
}

// refuseToken answers e (no-store) and counts it under reason.
func (s *Server) refuseToken(w http.ResponseWriter, r *http.Request, reason string, e httpError) {
	s.m.tokenRefused.WithLabelValues(reason).Inc()
	s.writeError(w, r, e)
}

// requestToken returns the token of a tokened route's request, already
// checked by tokened, with its expiry; ok is false on a public route (or
// when it expired since tokened looked).
func (s *Server) requestToken(r *http.Request) (token.Token, bool) {
	v := r.PathValue("token")
	if v == "" {
		return token.Token{}, false
	}
	t, err := s.tokens.Check(r.PathValue("feed"), v, s.hub.Now())
	return t, err == nil
}

// feedBase returns the path prefix of a feed's routes as the request
// reached them: {URL prefix}/{feed}, plus /t/{token} on a tokened route.
func (s *Server) feedBase(r *http.Request, feed string) string {
	base := s.hub.Config().URLPrefix + "/" + feed
	if v := r.PathValue("token"); v != "" {
		base += "/t/" + v
	}
	return base
}

// segmentPath is the path of segment n under a feed's base.
func segmentPath(base string, n int64) string {
	return base + "/segments/" + strconv.FormatInt(n, 10)
}
