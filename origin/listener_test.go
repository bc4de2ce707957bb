package origin

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestLimitListener: with max connections open, a further one is closed
// at once without a byte read, counted, and Accept goes on to the next;
// closing a connection (twice, even) frees one slot.
func TestLimitListener(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := LimitListener(inner, 2, m)
	defer l.Close()
	accepted := make(chan net.Conn)
	go func() {
		defer close(accepted)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	wantGauge := func(want float64) {
		t.Helper()
		if got := counter(m.conns); got != want {
			t.Errorf("marquee_http_connections = %v, want %v", got, want)
		}
	}
	a, b := dial(), dial()
	srvA, srvB := <-accepted, <-accepted
	wantGauge(2)

	refused := dial()
	refused.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := refused.Read(make([]byte, 1)); n != 0 || (err != io.EOF && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset")) {
		t.Errorf("connection beyond the cap: read %d, %v; want it closed", n, err)
	}
	if got := counter(m.connsRefused); got != 1 {
		t.Errorf("marquee_http_connections_refused_total = %v, want 1", got)
	}
	wantGauge(2)

	srvA.Close()
	srvA.Close() // a second Close frees nothing more
	wantGauge(1)
	c := dial()
	srvC := <-accepted
	wantGauge(2)
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	srvC.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(srvC, buf); err != nil || buf[0] != 'x' {
		t.Errorf("accepted connection: %q, %v", buf, err)
	}
	if err := srvC.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Errorf("CloseWrite: %v", err)
	}
	srvB.Close()
	srvC.Close()
	wantGauge(0)
	a.Close()
	b.Close()

	if lint, err := testutil.GatherAndLint(reg); err != nil || len(lint) > 0 {
		t.Errorf("metrics lint: %v %v", lint, err)
	}
}

// TestLimitListenerNoCap: max <= 0 caps nothing but still counts.
func TestLimitListenerNoCap(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := LimitListener(inner, 0, m)
	defer l.Close()
	var conns []net.Conn
	for range 5 {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, s)
	}
	if got := counter(m.conns); got != 5 {
		t.Errorf("marquee_http_connections = %v, want 5", got)
	}
	for _, c := range conns {
		c.Close()
	}
	if got := counter(m.conns); got != 0 || counter(m.connsRefused) != 0 {
		t.Errorf("after closing: %v open, %v refused", got, counter(m.connsRefused))
	}
}
