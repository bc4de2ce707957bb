package feed

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
)

// pingInterval is how often the NATS client pings its server.
const pingInterval = 10 * time.Second

// Connect connects to cfg.URL (required: with the embedded server, set it to
// the server's ClientURL first). The connection reconnects forever, every
// cfg.ReconnectWait, also when the first attempt fails (Connect then returns
// a connection that is still connecting, and Status().Connected is false until
// it succeeds). Its handlers keep marquee_nats_connected and
// marquee_nats_reconnects_total up to date and log connection changes. The
// caller closes the connection. A nil log discards; nil m uses unregistered
// metrics.
func Connect(cfg Config, log *slog.Logger, m *Metrics) (*nats.Conn, error) {
	if cfg.URL == "" {
		return nil, fmt.Errorf("nats connect: %w", ErrNoURL)
	}
	log = orDiscard(log).With("component", "nats")
	if m == nil {
		m = NewMetrics(nil)
	}
	wait := cfg.ReconnectWait
	if wait <= 0 {
		wait = DefaultConfig().ReconnectWait
	}
	limiter := newLogLimiter(logEvery)
	opts := []nats.Option{
		nats.Name("marquee"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(wait),
		nats.RetryOnFailedConnect(true),
		// A server that vanishes without closing TCP (a partitioned node)
		// is noticed within about 30 s instead of the client's default
		// 2 min × 2, and the connection moves to another cluster member.
		nats.PingInterval(pingInterval),
		nats.MaxPingsOutstanding(3),
		nats.ConnectHandler(func(nc *nats.Conn) {
			m.connected.Set(1)
			log.Info("nats connected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			m.connected.Set(0)
			m.disconnects.Inc()
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			} else {
				log.Info("nats disconnected")
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			m.connected.Set(1)
			m.reconnects.Inc()
			log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			m.connected.Set(0)
			log.Info("nats connection closed")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			// Slow consumers are counted per message by CoreSource; here
			// they, like every async error, are only logged, rate-limited.
			key := "async"
			if errors.Is(err, nats.ErrSlowConsumer) {
				key = "slow_consumer"
			}
			ok, suppressed := limiter.allow(key)
			if !ok {
				return
			}
			attrs := []any{"err", err}
			if sub != nil {
				attrs = append(attrs, "subject", sub.Subject)
			}
			if suppressed > 0 {
				attrs = append(attrs, "suppressed", suppressed)
			}
			log.Warn("nats async error", attrs...)
		}),
	}
	if cfg.Credentials != "" {
		opts = append(opts, nats.UserCredentials(cfg.Credentials))
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("nats connect: %w", err)
	}
	if nc.IsConnected() {
		m.connected.Set(1)
	}
	return nc, nil
}
