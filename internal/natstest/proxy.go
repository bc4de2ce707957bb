package natstest

import (
	"io"
	"net"
	"sync"
	"time"
)

// proxy forwards TCP connections from its loopback listener to target. While
// cut, it closes every connection it carries and every new one at once, like
// a network partition that also refuses connections.
type proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup // the accept loop and every forwarding goroutine

	mu     sync.Mutex // guards the fields below
	cut    bool
	closed bool
	conns  map[net.Conn]struct{}
}

func newProxy(target string) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{ln: ln, target: target, conns: make(map[net.Conn]struct{})}
	p.wg.Go(p.serve)
	return p, nil
}

// addr is the proxy's listening address, host:port.
func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.mu.Lock()
		if p.cut || p.closed {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c] = struct{}{}
		p.wg.Go(func() { p.forward(c) })
		p.mu.Unlock()
	}
}

func (p *proxy) forward(c net.Conn) {
	defer p.drop(c)
	d, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	if err != nil {
		return
	}
	if !p.track(d) {
		d.Close()
		return
	}
	defer p.drop(d)
	done := make(chan struct{})
	go func() { // owned: forward waits for it below
		defer close(done)
		_, _ = io.Copy(d, c)
		d.Close()
		c.Close()
	}()
	_, _ = io.Copy(c, d)
	c.Close()
	d.Close()
	<-done
}

// track adds c to the carried connections unless the proxy was cut or
// closed meanwhile.
func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut || p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) drop(c net.Conn) {
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// setCut cuts the proxy (closing what it carries) or restores it.
func (p *proxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		p.closeConnsLocked()
	}
}

func (p *proxy) closeConnsLocked() {
	for c := range p.conns {
		c.Close()
	}
}

// close stops the proxy and waits for its goroutines.
func (p *proxy) close() {
	p.mu.Lock()
	p.closed = true
	p.closeConnsLocked()
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}
