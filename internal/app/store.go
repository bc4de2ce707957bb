package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"marquee/feed"
)

// Store health of the embedded server.
const (
	// storeCheckEvery is how often the embedded server's health (JetStream
	// enabled, every stream and consumer recovered and free of write
	// errors) is checked.
	storeCheckEvery = time.Second
	// storeRestartAfter is how many failed checks in a row restart the
	// embedded server: a stream that hit a write error (for instance when
	// the process ran out of file handles) stays broken until its store
	// is loaded again.
	storeRestartAfter = 3
)

// embeddedStore is the embedded NATS server with its JetStream store, and
// its health. When the store cannot write, readiness says so and the
// server is restarted on the same port and directory, so ingestion
// recovers by itself once the cause is gone (file handles freed); the NATS
// connection reconnects and the feed source re-creates its consumer.
type embeddedStore struct {
	cfg feed.EmbeddedConfig // Port is the bound port after the first start
	log *slog.Logger

	mu  sync.Mutex // guards srv
	srv *server.Server

	err      atomic.Pointer[string] // why the store is unhealthy; nil when healthy
	restarts atomic.Uint64
}

func startStore(cfg feed.EmbeddedConfig, log *slog.Logger) (*embeddedStore, error) {
	srv, err := feed.StartEmbedded(cfg, log)
	if err != nil {
		return nil, err
	}
	if a, ok := srv.Addr().(*net.TCPAddr); ok {
		cfg.Port = a.Port // restarts come back where the clients reconnect
	}
	return &embeddedStore{cfg: cfg, log: log.With("component", "store"), srv: srv}, nil
}

// URL returns the client URL of the server.
func (s *embeddedStore) URL() string {
	return fmt.Sprintf("nats://127.0.0.1:%d", s.cfg.Port)
}

// Server returns the running server, nil while it restarts.
func (s *embeddedStore) Server() *server.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv
}

// Err returns why the store cannot serve, nil when it is healthy.
func (s *embeddedStore) Err() error {
	if p := s.err.Load(); p != nil {
		return errors.New(*p)
	}
	return nil
}

func (s *embeddedStore) setErr(msg string) {
	if msg == "" {
		if s.err.Swap(nil) != nil {
			s.log.Info("store healthy again")
		}
		return
	}
	if old := s.err.Swap(&msg); old == nil || *old != msg {
		s.log.Warn("store unhealthy", "err", msg)
	}
}

// watch checks the store until ctx ends, restarting the server after
// storeRestartAfter failed checks in a row.
func (s *embeddedStore) watch(ctx context.Context) {
	t := time.NewTicker(storeCheckEvery)
	defer t.Stop()
	bad := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		srv := s.Server()
		if srv == nil {
			s.restart() // an earlier restart failed: try again
			continue
		}
		if h := srv.Healthz(nil); h.Status == "ok" {
			s.setErr("")
			bad = 0
			continue
		} else {
			s.setErr("store: " + h.Status + ": " + h.Error)
		}
		if bad++; bad >= storeRestartAfter {
			bad = 0
			s.restart()
		}
	}
}

// restart stops the server and starts it again on the same port and store.
func (s *embeddedStore) restart() {
	s.mu.Lock()
	old := s.srv
	s.srv = nil
	s.mu.Unlock()
	if old != nil {
		s.log.Warn("restarting the embedded NATS server to reload its store")
		old.Shutdown()
		old.WaitForShutdown()
	}
	srv, err := feed.StartEmbedded(s.cfg, s.log)
	if err != nil {
		s.setErr("store: restart failed: " + err.Error())
		return
	}
	s.restarts.Add(1)
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	s.setErr("store: restarted, checking")
}

// close stops the server.
func (s *embeddedStore) close() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}
