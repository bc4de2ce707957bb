package feed

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats.go"
)

func TestStartEmbedded(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "data")
	srv := startServer(t, dir, -1)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("data dir not created: %v", err)
	}
	if !srv.JetStreamEnabled() {
		t.Fatal("JetStream not enabled")
	}
	if port := serverPort(t, srv); port <= 0 {
		t.Fatalf("port %d", port)
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("x")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("x", []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.NextMsg(5e9); err != nil {
		t.Fatal(err)
	}
}

func TestStartEmbeddedErrors(t *testing.T) {
	if _, err := StartEmbedded(EmbeddedConfig{DataDir: t.TempDir(), Port: 0}, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("port 0: %v", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := StartEmbedded(EmbeddedConfig{DataDir: filepath.Join(file, "sub"), Port: -1}, nil); err == nil {
		t.Error("data dir below a file accepted")
	}
	// A port in use: the server cannot listen and does not become ready.
	srv := startServer(t, t.TempDir(), -1)
	if s, err := StartEmbedded(EmbeddedConfig{DataDir: t.TempDir(), Port: serverPort(t, srv)}, testLogger(t)); err == nil {
		s.Shutdown()
		s.WaitForShutdown()
		t.Error("second server on a used port started")
	}
}
