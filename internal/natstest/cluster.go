package natstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"marquee/internal/porthold"
)

// Account is the account every client of these servers uses: the global
// account of a server without authorization.
const Account = server.DEFAULT_GLOBAL_ACCOUNT

// DefaultWait bounds WaitReady and WaitStreamReady.
// A JetStream cluster elects its meta leader only after Raft's election
// timeout (4–9 s in nats-server), so it is generous.
const DefaultWait = 30 * time.Second

// startWait bounds how long one node may take to accept connections; a node
// that could not bind its ports never does.
const startWait = 15 * time.Second

// Options configure StartWith.
type Options struct {
	// Nodes is the number of servers: 1 is a standalone JetStream server,
	// more form a JetStream cluster (3 for R3 streams). Default 3.
	Nodes int
	// Name is the cluster name and the prefix of the server names
	// ("<name>-0", ...). Default "natstest".
	Name string
	// Log sends the servers' notices, warnings and errors to tb.Log (only
	// with go test -v). Default false: the servers do not log.
	Log bool
}

// Cluster is a set of in-process NATS servers with JetStream. Node indexes
// are 0..Size()-1.
type Cluster struct {
	tb   testing.TB
	opts Options
	log  *tbLog

	mu      sync.Mutex // guards the fields below
	nodes   []*node
	proxies map[[2]int]*proxy // route proxies by (from, to)
	closed  bool
}

type node struct {
	name        string
	dir         string
	clientPort  int
	clusterPort int
	srv         *server.Server   // nil while down
	holds       []*porthold.Hold // its ports, held while it is down
}

// hold holds n's ports while it is down (best effort: a port taken in
// the moment since its server let it go stays unheld). Called with c.mu
// held, or before the cluster is shared.
func (n *node) hold() {
	n.release()
	for _, port := range []int{n.clientPort, n.clusterPort} {
		if port > 0 {
			if h, _, err := porthold.Port(port); err == nil {
				n.holds = append(n.holds, h)
			}
		}
	}
}

// release lets n's held ports go.
func (n *node) release() {
	for _, h := range n.holds {
		h.Release()
	}
	n.holds = nil
}

// StartCluster starts a three-node JetStream cluster and waits until it has a
// meta leader. It is shut down when the test ends.
func StartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	return StartWith(tb, Options{Nodes: 3})
}

// StartServer starts one standalone JetStream server (Size 1). It is shut down
// when the test ends.
func StartServer(tb testing.TB) *Cluster {
	tb.Helper()
	return StartWith(tb, Options{Nodes: 1})
}

// StartWith starts the servers opts describes and waits until JetStream is
// ready on all of them. It is shut down when the test ends. A node that does
// not come up (its cluster port, reserved a moment before, was taken by
// another test process in between) makes it start over on fresh ports, at
// most three times.
func StartWith(tb testing.TB, opts Options) *Cluster {
	tb.Helper()
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		var c *Cluster
		if c, err = startWith(tb, opts); err == nil {
			return c
		}
		tb.Logf("natstest: attempt %d: %v; starting over on fresh ports", attempt, err)
	}
	tb.Fatalf("natstest: %v", err)
	return nil
}

func startWith(tb testing.TB, opts Options) (*Cluster, error) {
	tb.Helper()
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.Nodes < 1 {
		tb.Fatalf("natstest: %d nodes", opts.Nodes)
	}
	if opts.Name == "" {
		opts.Name = "natstest"
	}
	// TempDir before Cleanup: cleanups run last-registered first, and the
	// stores must outlive the servers.
	base := tb.TempDir()
	c := &Cluster{tb: tb, opts: opts, log: newTBLog(tb, opts.Log), proxies: make(map[[2]int]*proxy)}
	tb.Cleanup(c.Shutdown)
	for i := range opts.Nodes {
		c.nodes = append(c.nodes, &node{
			name:        fmt.Sprintf("%s-%d", opts.Name, i),
			dir:         filepath.Join(base, fmt.Sprintf("n%d", i)),
			clientPort:  -1,
			clusterPort: -1,
		})
	}
	// Every node's ports are chosen and held before anything starts (the
	// proxies to a node need its cluster port), and held whenever it is
	// down, so that a restarted node gets them back.
	for _, n := range c.nodes {
		n.clientPort = reservePort(tb, n)
		if opts.Nodes > 1 {
			n.clusterPort = reservePort(tb, n)
		}
	}
	if opts.Nodes > 1 {
		for i := range c.nodes {
			for j, to := range c.nodes {
				if i == j {
					continue
				}
				p, err := newProxy(fmt.Sprintf("127.0.0.1:%d", to.clusterPort))
				if err != nil {
					tb.Fatalf("natstest: route proxy: %v", err)
				}
				c.proxies[[2]int{i, j}] = p
			}
		}
	}
	for i := range c.nodes {
		if err := c.start(i); err != nil {
			c.Shutdown()
			return nil, err
		}
	}
	c.WaitReady()
	return c, nil
}

// reservePort picks a free loopback port and holds it for n.
func reservePort(tb testing.TB, n *node) int {
	tb.Helper()
	h, port, err := porthold.Port(0)
	if err != nil {
		tb.Fatalf("natstest: reserve port: %v", err)
	}
	n.holds = append(n.holds, h)
	return port
}

// start starts node i with its store and ports, recording the ports it got.
func (c *Cluster) start(i int) error {
	c.mu.Lock()
	n := c.nodes[i]
	o := &server.Options{
		ServerName:             n.name,
		Host:                   "127.0.0.1",
		Port:                   n.clientPort,
		JetStream:              true,
		StoreDir:               n.dir,
		NoSigs:                 true,
		NoLog:                  !c.log.on,
		DisableJetStreamBanner: true,
	}
	if len(c.nodes) > 1 {
		o.Cluster = server.ClusterOpts{
			Name: c.opts.Name,
			Host: "127.0.0.1",
			Port: n.clusterPort,
			// Peers reach this node only through the route proxies: an
			// address nobody listens on keeps them from dialling it
			// directly when they learn about it from another node.
			Advertise:      "127.0.0.1:1",
			ConnectRetries: 0,
		}
		for j := range c.nodes {
			if j != i {
				o.Routes = append(o.Routes, &url.URL{Scheme: "nats-route", Host: c.proxies[[2]int{i, j}].addr()})
			}
		}
	}
	c.mu.Unlock()

	srv, err := server.NewServer(o)
	if err != nil {
		return fmt.Errorf("node %d: %w", i, err)
	}
	if c.log.on {
		srv.SetLoggerV2(c.log.with(n.name), false, false, false)
	}
	go srv.Start() // returns once listening; the server owns its goroutines until Shutdown
	if !srv.ReadyForConnections(startWait) {
		srv.Shutdown()
		srv.WaitForShutdown()
		why := ""
		for _, port := range []int{o.Port, o.Cluster.Port} {
			if port <= 0 {
				continue
			}
			if h, _, err := porthold.Port(port); err != nil {
				why += fmt.Sprintf("; port %d is taken by another socket (%v)", port, err)
			} else {
				h.Release()
			}
		}
		return fmt.Errorf("node %d (%s) not ready for connections within %v%s", i, n.name, startWait, why)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		srv.Shutdown()
		srv.WaitForShutdown()
		return fmt.Errorf("node %d: cluster shut down", i)
	}
	n.srv = srv
	n.clientPort = srv.Addr().(*net.TCPAddr).Port
	if a := srv.ClusterAddr(); a != nil {
		n.clusterPort = a.Port
	}
	n.release() // the server listens on them now
	return nil
}

// Size is the number of nodes, running or not.
func (c *Cluster) Size() int { return len(c.nodes) }

// URLs are the client URLs of all nodes, also of those that are down (a
// client with all of them reconnects to whichever runs).
func (c *Cluster) URLs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	urls := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		urls[i] = fmt.Sprintf("nats://127.0.0.1:%d", n.clientPort)
	}
	return urls
}

// URL is URLs joined with commas, as nats.Connect takes them.
func (c *Cluster) URL() string { return strings.Join(c.URLs(), ",") }

// ClientURL is the client URL of node i.
func (c *Cluster) ClientURL(i int) string { return c.URLs()[i] }

// Server returns node i's server, nil while it is down.
func (c *Cluster) Server(i int) *server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].srv
}

// Running reports whether node i is up.
func (c *Cluster) Running(i int) bool { return c.Server(i) != nil }

// Kill stops node i like a crash: it is cut off from its peers first, so it
// hands over no Raft leadership, then shut down, which closes its clients'
// connections. Its peers notice through missed Raft heartbeats and elect new
// leaders after the election timeout. No-op if the node is down.
func (c *Cluster) Kill(i int) {
	c.mu.Lock()
	srv := c.nodes[i].srv
	if srv == nil {
		c.mu.Unlock()
		return
	}
	c.nodes[i].srv = nil
	c.setCutLocked(i, true)
	c.mu.Unlock()
	srv.Shutdown()
	srv.WaitForShutdown()
	c.mu.Lock()
	if !c.closed {
		c.nodes[i].hold()
	}
	c.mu.Unlock()
}

// Stop shuts node i down gracefully: it steps down from its Raft leaderships
// first, so new leaders take over at once. No-op if the node is down.
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	srv := c.nodes[i].srv
	c.nodes[i].srv = nil
	c.mu.Unlock()
	if srv == nil {
		return
	}
	srv.Shutdown()
	srv.WaitForShutdown()
	c.mu.Lock()
	c.setCutLocked(i, true) // nothing to carry any more; Restart restores
	if !c.closed {
		c.nodes[i].hold()
	}
	c.mu.Unlock()
}

// Restart starts node i again with the same name, store and ports, and
// waits until it accepts connections (not until it caught up: see
// WaitStreamReady). It fails the test if the node does not start.
func (c *Cluster) Restart(i int) {
	c.tb.Helper()
	c.mu.Lock()
	if c.nodes[i].srv != nil {
		c.mu.Unlock()
		c.tb.Fatalf("natstest: Restart(%d): node is running", i)
	}
	c.setCutLocked(i, false)
	c.mu.Unlock()
	if err := c.start(i); err != nil {
		c.tb.Fatalf("natstest: restart: %v", err)
	}
}

func (c *Cluster) setCutLocked(i int, cut bool) {
	for k, p := range c.proxies {
		if k[0] == i || k[1] == i {
			p.setCut(cut)
		}
	}
}

// StreamLeader returns the index of the node that leads stream (in
// Account), -1 if none does right now. A standalone server (Size 1) leads
// every stream it has.
func (c *Cluster) StreamLeader(stream string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.nodes) == 1 {
		srv := c.nodes[0].srv
		if srv == nil {
			return -1
		}
		if !hasReplica(srv, stream) {
			return -1
		}
		return 0
	}
	for i, n := range c.nodes {
		if n.srv != nil && n.srv.JetStreamIsStreamLeader(Account, stream) {
			return i
		}
	}
	return -1
}

// MetaLeader returns the index of the JetStream meta leader, -1 if none
// (or Size is 1).
func (c *Cluster) MetaLeader() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.nodes) == 1 {
		return -1
	}
	for i, n := range c.nodes {
		if n.srv != nil && n.srv.JetStreamIsLeader() {
			return i
		}
	}
	return -1
}

// WaitReady waits until every running node has JetStream enabled and, in a
// cluster, every running node agrees there is a meta leader and is current
// with it, and the meta leader can place a stream on every running node (it
// creates and deletes a probe stream for that). It fails the test after
// DefaultWait.
func (c *Cluster) WaitReady() {
	c.tb.Helper()
	c.waitMeta()
	if c.Size() > 1 {
		c.waitPlacement()
	}
}

// waitPlacement creates (and deletes) a stream with a replica on every
// running node until the meta leader accepts it: it places streams only on
// peers it has heard from, a little after they joined.
func (c *Cluster) waitPlacement() {
	c.tb.Helper()
	running := 0
	for i := range c.Size() {
		if c.Running(i) {
			running++
		}
	}
	nc, err := nats.Connect(c.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		c.tb.Fatalf("natstest: connect: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		c.tb.Fatalf("natstest: %v", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "natstest_probe_" + hex.EncodeToString(b[:])
	deadline := time.Now().Add(DefaultWait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{
			Name: name, Subjects: []string{"natstest.probe." + name}, Replicas: running, Storage: jetstream.MemoryStorage,
		})
		if err == nil {
			err = js.DeleteStream(ctx, name)
		}
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.tb.Fatalf("natstest: timed out after %s waiting for streams placeable on every node: %v", DefaultWait, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitMeta waits for JetStream and, in a cluster, its meta leader.
func (c *Cluster) waitMeta() {
	c.tb.Helper()
	c.waitFor("JetStream ready", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		leaders := 0
		for _, n := range c.nodes {
			if n.srv == nil {
				continue
			}
			if !n.srv.JetStreamEnabled() {
				return false
			}
			if len(c.nodes) == 1 {
				continue
			}
			if !n.srv.JetStreamIsCurrent() {
				return false
			}
			if n.srv.JetStreamIsLeader() {
				leaders++
			}
		}
		return len(c.nodes) == 1 || leaders == 1
	})
}

// WaitStreamReady waits until stream has a leader and every running node
// that holds a replica of it is current, and returns the leader's index. It
// fails the test after DefaultWait.
func (c *Cluster) WaitStreamReady(stream string) int {
	c.tb.Helper()
	leader := -1
	c.waitFor("stream "+stream+" ready", func() bool {
		leader = c.StreamLeader(stream)
		if leader < 0 {
			return false
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.nodes) == 1 {
			return true
		}
		for _, n := range c.nodes {
			if n.srv == nil {
				continue
			}
			if hasReplica(n.srv, stream) && !n.srv.JetStreamIsStreamCurrent(Account, stream) {
				return false
			}
		}
		return true
	})
	return leader
}

// hasReplica reports whether srv holds a replica of stream.
func hasReplica(srv *server.Server, stream string) bool {
	info, err := srv.Jsz(&server.JSzOptions{Account: Account, Streams: true})
	if err != nil {
		return false
	}
	for _, acc := range info.AccountDetails {
		for _, sd := range acc.Streams {
			if sd.Name == stream {
				return true
			}
		}
	}
	return false
}

func (c *Cluster) waitFor(what string, cond func() bool) {
	c.tb.Helper()
	deadline := time.Now().Add(DefaultWait)
	for !cond() {
		if time.Now().After(deadline) {
			c.tb.Fatalf("natstest: timed out after %s waiting for %s", DefaultWait, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Shutdown stops every node and proxy and waits for their goroutines.
// Idempotent; registered with tb.Cleanup by the constructors.
func (c *Cluster) Shutdown() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	var srvs []*server.Server
	for _, n := range c.nodes {
		if n.srv != nil {
			srvs = append(srvs, n.srv)
			n.srv = nil
		}
	}
	proxies := c.proxies
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, srv := range srvs {
		wg.Go(func() { srv.Shutdown(); srv.WaitForShutdown() })
	}
	wg.Wait()
	c.mu.Lock()
	for _, n := range c.nodes {
		n.release()
	}
	c.mu.Unlock()
	for _, p := range proxies {
		p.close()
	}
	c.log.stop()
}
