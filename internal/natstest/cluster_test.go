package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"marquee/internal/leakcheck"
)

func TestMain(m *testing.M) {
	leakcheck.Main(m)
}

func connect(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// publish publishes until the stream takes the message (it may have no
// leader for a while) and returns the stream sequence.
func publish(t *testing.T, js jetstream.JetStream, subject string) uint64 {
	t.Helper()
	deadline := time.Now().Add(DefaultWait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		ack, err := js.Publish(ctx, subject, []byte(`{}`))
		cancel()
		if err == nil {
			return ack.Sequence
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish %s: %v", subject, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestClusterKillRestart(t *testing.T) {
	c := StartCluster(t)
	if got := c.Size(); got != 3 {
		t.Fatalf("Size() = %d", got)
	}
	if c.MetaLeader() < 0 {
		t.Fatal("no meta leader after StartCluster")
	}
	js := connect(t, c.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	leader := c.WaitStreamReady("S")
	s1 := publish(t, js, "s.a")
	clientPorts := c.URLs()

	for _, how := range []struct {
		name string
		stop func(int)
	}{{"kill", c.Kill}, {"stop", c.Stop}} {
		start := time.Now()
		how.stop(leader)
		if c.Running(leader) || c.Server(leader) != nil {
			t.Fatalf("%s: node %d still running", how.name, leader)
		}
		next := -1
		for next < 0 || next == leader {
			if time.Since(start) > DefaultWait {
				t.Fatalf("%s: no new stream leader", how.name)
			}
			time.Sleep(10 * time.Millisecond)
			next = c.StreamLeader("S")
		}
		t.Logf("%s node %d: new stream leader node %d after %v", how.name, leader, next, time.Since(start).Round(time.Millisecond))
		s2 := publish(t, js, "s.a")
		if s2 <= s1 {
			t.Fatalf("sequence %d after %d", s2, s1)
		}
		s1 = s2
		c.Restart(leader)
		if !c.Running(leader) {
			t.Fatalf("node %d not running after Restart", leader)
		}
		c.WaitStreamReady("S")
		leader = next
	}
	if got := c.URLs(); len(got) != 3 || got[0] != clientPorts[0] || got[1] != clientPorts[1] || got[2] != clientPorts[2] {
		t.Fatalf("client URLs changed over restarts: %v, then %v", clientPorts, got)
	}
	// The restarted nodes kept their stores: all replicas hold the messages.
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := js.Stream(ctx, "S")
	if err != nil {
		t.Fatal(err)
	}
	if got := info.CachedInfo().State.Msgs; got != 3 {
		t.Fatalf("stream holds %d messages, want 3", got)
	}
	c.Shutdown()
	c.Shutdown() // idempotent
}

func TestStartServer(t *testing.T) {
	c := StartServer(t)
	if c.Size() != 1 || c.MetaLeader() != -1 {
		t.Fatalf("Size %d, MetaLeader %d", c.Size(), c.MetaLeader())
	}
	js := connect(t, c.URL())
	if got := c.StreamLeader("S"); got != -1 {
		t.Fatalf("StreamLeader of a missing stream = %d", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}}); err != nil {
		t.Fatal(err)
	}
	if got := c.WaitStreamReady("S"); got != 0 {
		t.Fatalf("WaitStreamReady = %d", got)
	}
	s1 := publish(t, js, "s.a")
	c.Kill(0)
	c.Restart(0)
	c.WaitReady()
	if s2 := publish(t, js, "s.a"); s2 != s1+1 {
		t.Fatalf("sequence %d after %d: store not kept", s2, s1)
	}
}
