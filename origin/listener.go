package origin

import (
	"net"
	"sync"
	"sync/atomic"
	"syscall"
)

// LimitListener returns a listener that keeps at most max connections of l
// open at once. A connection accepted while max are open is closed at once,
// before a byte of it is read, and counted in
// marquee_http_connections_refused_total; Accept then waits for the next
// one, so a flood never reaches the HTTP server and never makes it back
// off. marquee_http_connections is the number open. max <= 0 means no cap
// (connections are still counted).
//
// Wrap the plain TCP listener; TLS, if any, goes on top of the result
// (net/http recognises *tls.Conn, which this wrapper would hide). The
// returned connections close the slot they hold exactly once, however
// often Close is called.
func LimitListener(l net.Listener, max int, m *Metrics) net.Listener {
	if m == nil {
		panic("origin: nil metrics")
	}
	return &limitListener{Listener: l, max: int64(max), m: m}
}

type limitListener struct {
	net.Listener
	max  int64
	m    *Metrics
	open atomic.Int64
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if n := l.open.Add(1); l.max > 0 && n > l.max {
			l.open.Add(-1)
			c.Close()
			l.m.connsRefused.Inc()
			continue
		}
		l.m.conns.Inc()
		return &limitConn{Conn: c, l: l}, nil
	}
}

func (l *limitListener) release() {
	l.open.Add(-1)
	l.m.conns.Dec()
}

// limitConn is one connection holding a slot of its listener.
type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.l.release)
	return err
}

// SyscallConn returns the socket of the underlying connection when it has
// one (*net.TCPConn): the stream hand-off writes to it without blocking
// and watches it for the peer's hang-up.
func (c *limitConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errNotTaken
}

// CloseWrite half-closes the connection when the underlying one can
// (*net.TCPConn): net/http does so before closing a connection whose
// request body it did not read, so that the response is not lost to a
// reset.
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errNoCloseWrite
}
