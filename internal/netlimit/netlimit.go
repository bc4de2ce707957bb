// Package netlimit caps the connections a listener keeps open: the public
// listener (origin.LimitListener, MARQUEE_MAX_CONNECTIONS) and the ingest
// listener (MARQUEE_INGEST_MAX_CONNECTIONS) share it. Standard library
// only; what it counts goes to the caller's counters.
package netlimit

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
)

// Counter counts connections refused at the cap (a prometheus.Counter).
type Counter interface{ Inc() }

// Gauge follows the connections open (a prometheus.Gauge).
type Gauge interface {
	Inc()
	Dec()
}

// ErrNoSocket: a connection over one that has no socket (not a
// *net.TCPConn); the stream hand-off needs the socket.
var ErrNoSocket = errors.New("netlimit: connection has no socket")

// ErrNoCloseWrite: a connection over one without CloseWrite.
var ErrNoCloseWrite = errors.New("netlimit: connection cannot close its write side")

// Listen returns a listener that keeps at most max connections of l open
// at once. A connection accepted while max are open is closed at once,
// before a byte of it is read, and counted in refused; Accept then waits
// for the next one, so a flood never reaches the HTTP server and never
// makes it back off. open (may be nil) follows the connections open.
// max <= 0 means no cap (connections are still followed).
//
// Wrap the plain TCP listener; TLS, if any, goes on top of the result
// (net/http recognises *tls.Conn, which this wrapper would hide). The
// connections keep what net/http and the hand-off use of a *net.TCPConn
// (SyscallConn, CloseWrite: net/http half-closes a connection whose
// request body it did not read before closing it, so that its answer is
// not lost to a reset) and free their slot exactly once, however often
// Close is called.
func Listen(l net.Listener, max int, refused Counter, open Gauge) net.Listener {
	if refused == nil {
		panic("netlimit: nil refused counter")
	}
	return &listener{Listener: l, max: int64(max), refused: refused, gauge: open}
}

type listener struct {
	net.Listener
	max     int64
	refused Counter
	gauge   Gauge // or nil
	open    atomic.Int64
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if n := l.open.Add(1); l.max > 0 && n > l.max {
			l.open.Add(-1)
			l.refused.Inc() // before Close: whoever sees the close sees the count
			c.Close()
			continue
		}
		if l.gauge != nil {
			l.gauge.Inc()
		}
		return &conn{Conn: c, l: l}, nil
	}
}

func (l *listener) release() {
	l.open.Add(-1)
	if l.gauge != nil {
		l.gauge.Dec()
	}
}

// conn is one connection holding a slot of its listener.
type conn struct {
	net.Conn
	l    *listener
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.l.release)
	return err
}

// SyscallConn returns the socket of the underlying connection when it has
// one (*net.TCPConn).
func (c *conn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, ErrNoSocket
}

// CloseWrite half-closes the connection when the underlying one can
// (*net.TCPConn).
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return ErrNoCloseWrite
}
