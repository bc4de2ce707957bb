package feed

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// readyTimeout is how long StartEmbedded waits for the server to accept
// connections.
const readyTimeout = 10 * time.Second

// StartEmbedded starts an in-process nats-server with JetStream, listening on
// 127.0.0.1:cfg.Port (-1: a random port), storing in cfg.DataDir (empty:
// DefaultDataDir()), which it creates. The server installs no signal handlers
// and logs through log: its notices at debug level, warnings and errors as
// such. It returns once the server accepts connections, or ErrNotReady after
// 10 s. The caller connects to srv.ClientURL() and stops it with
// srv.Shutdown() and srv.WaitForShutdown().
func StartEmbedded(cfg EmbeddedConfig, log *slog.Logger) (*server.Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	log = orDiscard(log).With("component", "nats-server")
	dir := cfg.DataDir
	if dir == "" {
		var err error
		if dir, err = DefaultDataDir(); err != nil {
			return nil, fmt.Errorf("embedded nats: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("embedded nats: create data dir: %w", err)
	}
	opts := &server.Options{
		ServerName:             "marquee-embedded",
		Host:                   "127.0.0.1",
		Port:                   cfg.Port,
		JetStream:              true,
		StoreDir:               dir,
		NoSigs:                 true,
		NoLog:                  true, // the slog adapter below is the only logger
		DisableJetStreamBanner: true,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	srv.SetLoggerV2(natsLogger{log}, false, false, false)
	// Start returns once the server listens, or failed to (it then logs an
	// error through Fatalf); the server owns its goroutines until Shutdown.
	started := make(chan struct{})
	go func() { defer close(started); srv.Start() }()
	timer := time.NewTimer(readyTimeout)
	select {
	case <-started:
	case <-timer.C:
	}
	timer.Stop()
	if !srv.ReadyForConnections(time.Second) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("embedded nats: %w (see the log for the cause)", ErrNotReady)
	}
	log.Info("embedded nats server started", "url", srv.ClientURL(), "store_dir", dir)
	return srv, nil
}

// natsLogger adapts slog to nats-server's Logger. Fatalf logs an error and
// does not exit: the server then fails to become ready and StartEmbedded
// returns an error.
type natsLogger struct{ log *slog.Logger }

func (l natsLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l natsLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l natsLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l natsLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l natsLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l natsLogger) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
