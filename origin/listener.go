package origin

import (
	"net"

	"marquee/internal/netlimit"
)

// LimitListener returns a listener that keeps at most max connections of l
// open at once (see netlimit.Listen). A connection accepted while max are
// open is closed at once, before a byte of it is read, and counted in
// marquee_http_connections_refused_total; marquee_http_connections is the
// number open. max <= 0 means no cap (connections are still counted).
//
// Wrap the plain TCP listener; TLS, if any, goes on top of the result. The
// returned connections keep the socket (the stream hand-off uses it) and
// CloseWrite.
func LimitListener(l net.Listener, max int, m *Metrics) net.Listener {
	if m == nil {
		panic("origin: nil metrics")
	}
	return netlimit.Listen(l, max, m.connsRefused, m.conns)
}
