package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"marquee/feed"
	"marquee/feed/demogen"
	"marquee/internal/app"
	"marquee/internal/leakcheck"
	"marquee/internal/testenv"
	"marquee/wire"
)

// TestMain fails the run when a goroutine outlives the package's tests.
func TestMain(m *testing.M) {
	leakcheck.Main(m)
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

// TestRunWebhook runs feedsim in webhook mode against a real origin with
// its ingest listener: the demo's state arrives signed, and a wrong secret
// stops feedsim with the refusal.
func TestRunWebhook(t *testing.T) {
	defer http.DefaultClient.CloseIdleConnections()
	secret := "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("s"), 32))
	n := testenv.StartNATS(t)
	o := testenv.StartOrigin(t, n, testenv.Options{Config: func(c *app.Config) {
		c.Ingest.ListenAddr = "127.0.0.1:0"
		c.Ingest.Secrets = []string{secret}
	}})
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	args := []string{"-webhook", o.IngestURL, "-secret", "@" + file, "-rate", "50", "-seed", "5", "-duration", "700ms"}
	if err := run(context.Background(), args, &stderr); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	prices := 0
	for _, m := range demogen.New(5).Initial(time.Now()) {
		if strings.HasPrefix(m.Subject, demogen.PricesFeed+".") {
			prices++
		}
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		var s wire.Snapshot
		testenv.GetJSON(t, o.URL+"/v1/feeds/prices/snapshot", &s)
		if len(s.Entries) != prices {
			return fmt.Errorf("%d prices, want %d", len(s.Entries), prices)
		}
		return nil
	})
	if got := o.Metric("marquee_ingest_requests_total", map[string]string{"result": "ok"}); got < 3 {
		t.Errorf("%v requests ok, want the initial state and some ticks", got)
	}

	other := "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("o"), 32))
	err := run(context.Background(), []string{"-webhook", o.IngestURL, "-secret", other, "-duration", "1s"}, &stderr)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong secret: %v, want the 401 refusal", err)
	}
	if err := run(context.Background(), []string{"-webhook", o.IngestURL, "-secret", "nope"}, &stderr); err == nil || !strings.Contains(err.Error(), "-secret") {
		t.Errorf("bad secret: %v", err)
	}
}
