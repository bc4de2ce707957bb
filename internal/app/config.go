package app

import (
	"fmt"
	"net"
	"time"

	"marquee/feed"
	"marquee/origin"
	"marquee/segmenter"
)

// Config is every setting of the program except logging, composed of the
// packages' own config structs. cmd/marquee reads it from the environment
// with the MARQUEE_ prefix.
type Config struct {
	// Addr is the public listener (viewers, CDN). Default ":8080".
	Addr string `env:"ADDR" envDefault:":8080"`
	// AdminAddr is the admin listener (/metrics, /healthz, /readyz). Default
	// "127.0.0.1:9090"; empty disables it.
	AdminAddr string `env:"ADMIN_ADDR" envDefault:"127.0.0.1:9090"`
	// ShutdownTimeout bounds the whole drain at SIGINT/SIGTERM. Default 30s.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"30s"`
	// MaxConnections caps concurrent connections on the public listener;
	// further connections are closed at once and counted. Default 0: the
	// process's open-file limit minus a reserve (a fifth, at least 256) for
	// NATS, the JetStream store and the admin listener, so that no flood
	// of viewers can starve ingestion of file handles.
	MaxConnections int `env:"MAX_CONNECTIONS" envDefault:"0"`

	Segmenter segmenter.Config
	Origin    origin.Config
	NATS      feed.Config // includes the embedded server and the demo
}

// Defaults returns the configuration of an empty environment.
func Defaults() Config {
	return Config{
		Addr:            ":8080",
		AdminAddr:       "127.0.0.1:9090",
		ShutdownTimeout: 30 * time.Second,
		Segmenter:       segmenter.Defaults(),
		Origin:          origin.Defaults(),
		NATS:            feed.DefaultConfig(),
	}
}

// Validate checks every setting and names the variable at fault.
func (c Config) Validate() error { return c.validate(false) }

func (c Config) validate(shortSegments bool) error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("MARQUEE_ADDR must be host:port, got %q", c.Addr)
	}
	if c.AdminAddr != "" {
		if _, _, err := net.SplitHostPort(c.AdminAddr); err != nil {
			return fmt.Errorf("MARQUEE_ADMIN_ADDR must be host:port or empty, got %q", c.AdminAddr)
		}
	}
	if c.MaxConnections < 0 {
		return fmt.Errorf("MARQUEE_MAX_CONNECTIONS must not be negative, got %d", c.MaxConnections)
	}
	if c.ShutdownTimeout < time.Second {
		return fmt.Errorf("MARQUEE_SHUTDOWN_TIMEOUT must be at least 1s, got %s", c.ShutdownTimeout)
	}
	if !shortSegments {
		if err := c.Segmenter.Validate(); err != nil {
			return err
		}
	}
	// The structural rules of the segmenter are checked by segmenter.New.
	for _, v := range []interface{ Validate() error }{c.Origin, c.NATS} {
		if err := v.Validate(); err != nil {
			return err
		}
	}
	// Token windows lie on the segment grid.
	if err := c.Origin.Tokens.Validate(c.Segmenter.SegmentLength); err != nil {
		return err
	}
	// The largest message the feed consumer accepts must fit an empty feed.
	if most := int64(c.NATS.MaxMessageBytes + c.NATS.MaxKeyLen); c.Segmenter.MaxFeedBytes < most {
		return fmt.Errorf("MARQUEE_MAX_FEED_BYTES must be at least MARQUEE_NATS_MAX_MESSAGE_BYTES + MARQUEE_NATS_MAX_KEY_LEN (%d), so that the largest accepted message fits, got %d", most, c.Segmenter.MaxFeedBytes)
	}
	return nil
}
