package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"marquee/feed"
	"marquee/feed/demogen"
)

// TestMain fails the run when a goroutine outlives the package's tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startNATS starts an embedded server, shut down at the end of the test.
func startNATS(t *testing.T) string {
	t.Helper()
	srv, err := feed.StartEmbedded(feed.EmbeddedConfig{DataDir: t.TempDir(), Port: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv.ClientURL()
}

// TestRunPublishes runs feedsim for a moment and checks it published the
// generator's sequence for its seed under its prefix, then stopped by itself.
func TestRunPublishes(t *testing.T) {
	url := startNATS(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("sim.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	args := []string{"-nats", url, "-rate", "200", "-seed", "5", "-prefix", "sim", "-duration", "500ms"}
	if err := run(context.Background(), args, &stderr); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}

	gen := demogen.New(5)
	want := gen.Initial(time.Now())
	for len(want) < 60 {
		want = append(want, gen.Step(time.Now())...)
	}
	for i, w := range want[:60] {
		msg, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("message %d: %v (stderr: %s)", i, err, stderr.String())
		}
		if got, want := msg.Subject, "sim."+w.Subject; got != want {
			t.Fatalf("message %d: subject %s, want %s", i, got, want)
		}
		if got, want := len(msg.Data) == 0, w.Body == nil; got != want {
			t.Fatalf("message %d (%s): delete %v, want %v", i, msg.Subject, got, want)
		}
	}
	if !strings.Contains(stderr.String(), "publishing") {
		t.Errorf("no start line logged: %s", stderr.String())
	}
}

func TestRunRefuses(t *testing.T) {
	var stderr bytes.Buffer
	if err := run(context.Background(), []string{"-h"}, &stderr); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v, want flag.ErrHelp", err)
	}
	if err := run(context.Background(), []string{"-rate", "0"}, &stderr); err == nil || !strings.Contains(err.Error(), "DEMO_RATE") {
		t.Errorf("-rate 0: %v, want an error about the rate", err)
	}
	if err := run(context.Background(), []string{"-prefix", "a..b"}, &stderr); err == nil {
		t.Error("-prefix a..b accepted")
	}

	// A port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	if err := run(context.Background(), []string{"-nats", "nats://" + addr}, &stderr); err == nil || !strings.Contains(err.Error(), "connect") {
		t.Errorf("no server: %v, want a connect error", err)
	}
}
