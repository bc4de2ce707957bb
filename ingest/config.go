package ingest

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"time"
)

// Limits of the configuration values, checked by Validate.
const (
	// MaxBodyLimit is the largest allowed Config.MaxBodyBytes (16 MiB).
	MaxBodyLimit = 16 << 20
	// MaxUpdatesLimit is the largest allowed Config.MaxUpdates: the most
	// publishes one request may keep in flight.
	MaxUpdatesLimit = 10000
	// MaxToleranceLimit bounds Config.Tolerance: the stream's duplicate
	// window must cover twice the tolerance (see DuplicateWindow).
	MaxToleranceLimit = time.Hour
	// minSecretBytes is the shortest secret key accepted (Standard
	// Webhooks: between 24 and 64 bytes).
	minSecretBytes = 24
	maxSecretBytes = 64
	// SecretPrefix starts every Standard Webhooks secret.
	SecretPrefix = "whsec_"
)

// Config configures the ingest listener (environment prefix MARQUEE_; the
// field names are distinct from every other package's, because cmd/marquee
// maps parse errors back to variables by field name).
type Config struct {
	// ListenAddr is the ingest listener's host:port (INGEST_ADDR). Default
	// empty: no ingest listener. It must never be behind the CDN: bind it to
	// a private interface or firewall it to the senders.
	ListenAddr string `env:"INGEST_ADDR"`
	// Secrets are the Standard Webhooks signing secrets, "whsec_" + base64
	// of 24..64 random bytes (INGEST_SECRETS, comma-separated). A request
	// signed with any of them is accepted, so that a secret is rotated by
	// adding the new one, moving the senders, then removing the old one.
	// Required when ListenAddr is set. Never logged.
	Secrets []string `env:"INGEST_SECRETS" envSeparator:","`
	// Tolerance is how far a request's webhook-timestamp may be from this
	// origin's clock, in either direction (INGEST_TOLERANCE), 1s..1h.
	// Default 5m, the Standard Webhooks recommendation. The JetStream
	// duplicate window must be at least twice this (DuplicateWindow), so a
	// replay of a captured request within its tolerance is stored once.
	Tolerance time.Duration `env:"INGEST_TOLERANCE" envDefault:"5m"`
	// MaxBodyBytes is the largest request body, in bytes (INGEST_MAX_BODY),
	// 1 KiB..16 MiB. Default 1048576 (1 MiB). Larger: 413.
	MaxBodyBytes int64 `env:"INGEST_MAX_BODY" envDefault:"1048576"`
	// MaxUpdates is the most updates in one batch (INGEST_MAX_UPDATES),
	// 1..10000. Default 1000. More: 413.
	MaxUpdates int `env:"INGEST_MAX_UPDATES" envDefault:"1000"`
	// RequestTimeout is the overall deadline of one request, from its
	// headers to the last JetStream acknowledgement (INGEST_TIMEOUT),
	// 100ms..1m. Default 5s. JetStream not acknowledging in time: 504.
	RequestTimeout time.Duration `env:"INGEST_TIMEOUT" envDefault:"5s"`
	// SenderRate is the sustained requests per second one sender (remote
	// IP address; an IPv6 /64) may make (INGEST_RATE), 0..100000. Default
	// 50. 0 turns rate limiting off. Beyond it: 429 with Retry-After.
	SenderRate float64 `env:"INGEST_RATE" envDefault:"50"`
	// SenderBurst is how many requests a sender may make at once above
	// SenderRate (INGEST_BURST), 1..100000. Default 100.
	SenderBurst int `env:"INGEST_BURST" envDefault:"100"`
	// MaxConns caps concurrent connections to the ingest listener
	// (INGEST_MAX_CONNECTIONS), 1..65536. Default 256. Beyond it a
	// connection is closed at once and counted.
	MaxConns int `env:"INGEST_MAX_CONNECTIONS" envDefault:"256"`
}

// Defaults returns the configuration of an empty environment (ingest off).
func Defaults() Config {
	return Config{
		Tolerance:      5 * time.Minute,
		MaxBodyBytes:   1 << 20,
		MaxUpdates:     1000,
		RequestTimeout: 5 * time.Second,
		SenderRate:     50,
		SenderBurst:    100,
		MaxConns:       256,
	}
}

// Enabled reports whether the ingest listener is on.
func (c Config) Enabled() bool { return c.ListenAddr != "" }

// DuplicateWindow is the shortest JetStream duplicate window that makes a
// replayed request harmless: a timestamp is accepted from Tolerance before
// to Tolerance after the clock, so the same signed request (one webhook-id)
// can arrive up to 2 × Tolerance apart and still pass the signature check.
func (c Config) DuplicateWindow() time.Duration { return 2 * c.Tolerance }

// Validate checks every field and names the variable at fault. An ingest
// listener that is off needs nothing else.
func (c Config) Validate() error {
	if !c.Enabled() {
		return nil
	}
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("MARQUEE_%s %s", name, fmt.Sprintf(format, args...)))
	}
	if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
		bad("INGEST_ADDR", "must be host:port or empty, got %q", c.ListenAddr)
	}
	if len(c.Secrets) == 0 {
		errs = append(errs, errors.New("MARQUEE_INGEST_ADDR is set but MARQUEE_INGEST_SECRETS is empty: an ingest listener needs at least one whsec_ secret"))
	}
	for i, s := range c.Secrets {
		if _, err := decodeSecret(s); err != nil {
			// The secret itself is never repeated in an error.
			bad("INGEST_SECRETS", "entry %d: %v", i+1, err)
		}
	}
	if c.Tolerance < time.Second || c.Tolerance > MaxToleranceLimit {
		bad("INGEST_TOLERANCE", "must be between 1s and 1h, got %s", c.Tolerance)
	}
	if c.MaxBodyBytes < 1<<10 || c.MaxBodyBytes > MaxBodyLimit {
		bad("INGEST_MAX_BODY", "must be between 1024 and %d bytes, got %d", MaxBodyLimit, c.MaxBodyBytes)
	}
	if c.MaxUpdates < 1 || c.MaxUpdates > MaxUpdatesLimit {
		bad("INGEST_MAX_UPDATES", "must be between 1 and %d, got %d", MaxUpdatesLimit, c.MaxUpdates)
	}
	if c.RequestTimeout < 100*time.Millisecond || c.RequestTimeout > time.Minute {
		bad("INGEST_TIMEOUT", "must be between 100ms and 1m, got %s", c.RequestTimeout)
	}
	if !(c.SenderRate >= 0 && c.SenderRate <= 100000) || math.IsInf(c.SenderRate, 0) { // also rejects NaN
		bad("INGEST_RATE", "must be between 0 (off) and 100000 requests per second, got %g", c.SenderRate)
	}
	if c.SenderBurst < 1 || c.SenderBurst > 100000 {
		bad("INGEST_BURST", "must be between 1 and 100000, got %d", c.SenderBurst)
	}
	if c.MaxConns < 1 || c.MaxConns > 65536 {
		bad("INGEST_MAX_CONNECTIONS", "must be between 1 and 65536, got %d", c.MaxConns)
	}
	return errors.Join(errs...)
}

// decodeSecret returns the key of a "whsec_<base64>" secret.
func decodeSecret(s string) ([]byte, error) {
	b64, ok := strings.CutPrefix(strings.TrimSpace(s), SecretPrefix)
	if !ok {
		return nil, fmt.Errorf("must start with %q", SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errors.New("is not valid standard base64 after " + SecretPrefix)
	}
	if len(key) < minSecretBytes || len(key) > maxSecretBytes {
		return nil, fmt.Errorf("must hold %d..%d bytes of key, got %d", minSecretBytes, maxSecretBytes, len(key))
	}
	return key, nil
}
