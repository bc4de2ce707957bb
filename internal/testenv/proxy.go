package testenv

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// Proxy is a TCP proxy on loopback in front of one target address that a
// test can pause: while paused, bytes in both directions are held (not
// lost) and delivered when it resumes, as a network stall or a stopped
// process would. Tests use it to make one origin replica read its NATS
// messages late.
type Proxy struct {
	t      testing.TB
	ln     net.Listener
	target string

	mu     sync.Mutex    // guards the fields below
	resume chan struct{} // closed while not paused
	conns  []net.Conn
	wg     sync.WaitGroup
}

// StartProxy listens on a random loopback port and forwards every
// connection to target (host:port, or a URL such as nats://host:port). It
// is closed at test cleanup.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	if _, rest, ok := strings.Cut(target, "://"); ok {
		target = rest
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{t: t, ln: ln, target: target, resume: make(chan struct{})}
	close(p.resume)
	p.wg.Go(p.accept)
	t.Cleanup(p.Close)
	return p
}

// Addr returns the proxy's address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL returns nats://addr.
func (p *Proxy) URL() string { return "nats://" + p.Addr() }

// Pause holds all traffic for d, then lets it through; it returns at once.
func (p *Proxy) Pause(d time.Duration) {
	p.mu.Lock()
	ch := make(chan struct{})
	p.resume = ch
	p.mu.Unlock()
	time.AfterFunc(d, func() { close(ch) })
}

func (p *Proxy) gate() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.resume
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(up, c) })
		p.wg.Go(func() { p.pipe(c, up) })
	}
}

// pipe copies src to dst, waiting at each read while the proxy is paused.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			<-p.gate()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				src.Close()
			}
			return
		}
	}
}

// Close stops the proxy and cuts every connection (idempotent).
func (p *Proxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}
