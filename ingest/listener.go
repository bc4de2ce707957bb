package ingest

import (
	"net"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// limitListener keeps at most max connections open at once: a connection
// accepted while max are open is closed at once, before a byte of it is
// read, and counted; Accept then waits for the next one.
type limitListener struct {
	net.Listener
	max     int64
	refused prometheus.Counter
	open    atomic.Int64
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if n := l.open.Add(1); n > l.max {
			l.open.Add(-1)
			c.Close()
			l.refused.Inc()
			continue
		}
		return &limitConn{Conn: c, l: l}, nil
	}
}

// limitConn is one connection holding a slot of its listener; Close frees
// the slot exactly once.
type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}
