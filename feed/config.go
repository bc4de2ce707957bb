package feed

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// EnvPrefix is the prefix cmd/marquee puts before every env tag of Config
// (env.Options{Prefix: feed.EnvPrefix}). Validate names variables with it, so
// its messages match what an operator sets.
const EnvPrefix = "MARQUEE_"

// Limits of the configuration values, checked by Validate.
const (
	// MaxMessageBytesLimit is the largest allowed Config.MaxMessageBytes:
	// NATS' default max_payload.
	MaxMessageBytesLimit = 1 << 20
	// MaxKeyLenLimit is the largest allowed Config.MaxKeyLen.
	MaxKeyLenLimit = 1024
	// MaxFeedNameLen is the longest feed name Parse accepts.
	MaxFeedNameLen = 64
	// MaxDemoRate is the highest allowed DemoConfig.Rate, in updates per second.
	MaxDemoRate = 100000
	// MaxStreamReplicas is the largest allowed Config.StreamReplicas, the
	// most replicas JetStream allows.
	MaxStreamReplicas = 5
	// MinStallTimeout and MaxStallTimeout bound Config.StallTimeout.
	MinStallTimeout = time.Second
	MaxStallTimeout = 10 * time.Minute
)

// Config configures the NATS connection and the feed sources. The env tags
// are without EnvPrefix; defaults are in the envDefault tags and in
// DefaultConfig, which agree.
type Config struct {
	// URL of the NATS server(s), comma-separated (NATS_URL). Empty (the
	// default) means: start an embedded server (see Embedded) and connect to
	// it; cmd/marquee then sets URL to the embedded server's ClientURL before
	// calling Connect.
	URL string `env:"NATS_URL"`
	// Credentials is the path of a NATS .creds file (NATS_CREDS). Default
	// empty: no credentials.
	Credentials string `env:"NATS_CREDS"`
	// JetStream selects the JetStream source (true, the default) or a plain
	// core NATS subscription (false) (NATS_JETSTREAM).
	JetStream bool `env:"NATS_JETSTREAM" envDefault:"true"`
	// Stream is the JetStream stream to consume (NATS_STREAM). Default FEEDS.
	Stream string `env:"NATS_STREAM" envDefault:"FEEDS"`
	// CreateStream creates Stream when it is missing (NATS_CREATE_STREAM),
	// at start-up and whenever it disappears: subjects "<SubjectPrefix>.>",
	// file storage, limits retention, MaxMsgsPerSubject, discard-old and
	// StreamReplicas replicas. Default true. An existing stream is used as
	// it is (see ManageStream). Set false when the stream is managed
	// elsewhere; it must then exist and capture "<SubjectPrefix>.>", and
	// the source is not ready while it is missing.
	CreateStream bool `env:"NATS_CREATE_STREAM" envDefault:"true"`
	// StreamReplicas is the number of replicas of a stream marquee creates
	// (NATS_STREAM_REPLICAS), 1..5; more than 1 needs a JetStream cluster
	// of at least as many servers. Default 1. An existing stream keeps its
	// replicas unless ManageStream is set.
	StreamReplicas int `env:"NATS_STREAM_REPLICAS" envDefault:"1"`
	// ManageStream lets marquee change an existing Stream to its own
	// settings (NATS_MANAGE_STREAM): subjects "<SubjectPrefix>.>", limits
	// retention, MaxMsgsPerSubject, discard-old and StreamReplicas
	// replicas; its other settings (age, byte and message limits, storage,
	// placement, ...) stay as they are. Default false: an existing stream's
	// subjects, replicas, limits and retention are never changed, whoever
	// created it, and marquee only logs what it found.
	ManageStream bool `env:"NATS_MANAGE_STREAM" envDefault:"false"`
	// StallTimeout is how long the JetStream source may make no progress
	// while the stream holds messages it has not got, or while the
	// JetStream API does not answer, before Status reports it Stalled and
	// not ready (NATS_STALL_TIMEOUT), a Go duration, 1s..10m. Default 5s.
	// Progress is a message handled or a check (about every second) that
	// found nothing left to read.
	StallTimeout time.Duration `env:"NATS_STALL_TIMEOUT" envDefault:"5s"`
	// SubjectPrefix is the first token(s) of every feed subject
	// "<prefix>.<feed>.<key...>" (NATS_SUBJECT_PREFIX). Default "feeds".
	SubjectPrefix string `env:"NATS_SUBJECT_PREFIX" envDefault:"feeds"`
	// MaxMsgsPerSubject is how many messages per subject a stream marquee
	// creates (or manages, see ManageStream) keeps
	// (NATS_MAX_MSGS_PER_SUBJECT), in messages, at least 1. Default 16;
	// only the last one is needed to rebuild the state, the others let a
	// replica that reconnects resume without a reload.
	MaxMsgsPerSubject int64 `env:"NATS_MAX_MSGS_PER_SUBJECT" envDefault:"16"`
	// MaxMessageBytes is the largest accepted message body
	// (NATS_MAX_MESSAGE_BYTES), in bytes, 1..1048576. Default 65536.
	MaxMessageBytes int `env:"NATS_MAX_MESSAGE_BYTES" envDefault:"65536"`
	// MaxKeyLen is the longest accepted key (NATS_MAX_KEY_LEN), in bytes,
	// 1..1024. Default 128.
	MaxKeyLen int `env:"NATS_MAX_KEY_LEN" envDefault:"128"`
	// Feeds is an optional comma-separated allow-list of feed names (FEEDS).
	// Default empty: any valid feed name is accepted. Messages for other feeds
	// are dropped with reason unknown_feed.
	Feeds []string `env:"FEEDS"`
	// ReconnectWait is the pause between NATS reconnect attempts to the
	// same server (NATS_RECONNECT_WAIT), a Go duration, 1ms..10m. Default
	// 2s. (A failed JetStream consumer is re-created after its own, shorter
	// back-off: see JetStreamSource.)
	ReconnectWait time.Duration `env:"NATS_RECONNECT_WAIT" envDefault:"2s"`
	// CorePending is the buffer of the core NATS subscription
	// (NATS_CORE_PENDING), in messages, 1..16777216. Default 65536. Messages
	// arriving while it is full are dropped and counted as slow_consumer.
	CorePending int `env:"NATS_CORE_PENDING" envDefault:"65536"`

	// DuplicateWindow is the least duplicate window of a stream marquee
	// creates (or manages, see ManageStream): JetStream stores a message
	// whose Nats-Msg-Id it saw within the window only once. Zero: JetStream's
	// default (2m). Not an environment variable: internal/app sets it to
	// twice MARQUEE_INGEST_TOLERANCE when the ingest listener is on.
	DuplicateWindow time.Duration

	// Embedded configures the embedded server, used when URL is empty.
	Embedded EmbeddedConfig
	// Demo configures the demo publisher, which cmd/marquee runs only with
	// the embedded server.
	Demo DemoConfig
}

// EmbeddedConfig configures the in-process nats-server of StartEmbedded.
type EmbeddedConfig struct {
	// DataDir is the JetStream store directory (DATA_DIR). Default empty:
	// DefaultDataDir(), i.e. os.UserCacheDir()/marquee. Created if missing.
	DataDir string `env:"DATA_DIR"`
	// Port is the client port on 127.0.0.1 (NATS_EMBEDDED_PORT). Default -1:
	// a random free port. Allowed: -1 or 1..65535.
	Port int `env:"NATS_EMBEDDED_PORT" envDefault:"-1"`
}

// DemoConfig configures the demo publisher of prices and scores.
type DemoConfig struct {
	// Enabled runs the demo publisher (DEMO). Default true; cmd/marquee
	// honours it only with the embedded server.
	Enabled bool `env:"DEMO" envDefault:"true"`
	// Rate is the total number of updates per second (DEMO_RATE),
	// 0 < rate <= 100000. Default 5.
	Rate float64 `env:"DEMO_RATE" envDefault:"5"`
	// Seed seeds the random walk (DEMO_SEED). Default 0: seeded from the
	// clock. The same non-zero seed gives the same sequence of messages.
	Seed uint64 `env:"DEMO_SEED" envDefault:"0"`
	// SubjectPrefix is the subject prefix to publish under
	// (NATS_SUBJECT_PREFIX, the same variable as Config.SubjectPrefix).
	// Default "feeds".
	SubjectPrefix string `env:"NATS_SUBJECT_PREFIX" envDefault:"feeds"`
}

// DefaultConfig returns the configuration that the envDefault tags give with
// an empty environment.
func DefaultConfig() Config {
	return Config{
		JetStream:         true,
		Stream:            "FEEDS",
		CreateStream:      true,
		StreamReplicas:    1,
		StallTimeout:      5 * time.Second,
		SubjectPrefix:     "feeds",
		MaxMsgsPerSubject: 16,
		MaxMessageBytes:   64 << 10,
		MaxKeyLen:         128,
		ReconnectWait:     2 * time.Second,
		CorePending:       64 << 10,
		Embedded:          EmbeddedConfig{Port: -1},
		Demo:              DefaultDemoConfig(),
	}
}

// DefaultDemoConfig returns the default DemoConfig.
func DefaultDemoConfig() DemoConfig {
	return DemoConfig{Enabled: true, Rate: 5, SubjectPrefix: "feeds"}
}

// DefaultDataDir is the embedded server's store directory when
// EmbeddedConfig.DataDir is empty: os.UserCacheDir()/marquee.
func DefaultDataDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("default data dir: %w", err)
	}
	return filepath.Join(dir, "marquee"), nil
}

// Limits returns the validation limits of c for Parse.
func (c Config) Limits() Limits {
	return Limits{
		SubjectPrefix:   c.SubjectPrefix,
		MaxMessageBytes: c.MaxMessageBytes,
		MaxKeyLen:       c.MaxKeyLen,
		Feeds:           c.Feeds,
	}
}

// Validate checks every field and returns all problems joined, each a
// *ConfigError naming its variable (with EnvPrefix) and wrapping
// ErrInvalidConfig; nil if c is valid.
func (c Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, &ConfigError{Var: EnvPrefix + name, Msg: fmt.Sprintf(format, args...)})
	}
	if strings.ContainsAny(c.URL, " \t\r\n") {
		bad("NATS_URL", "must not contain white space, got %q", c.URL)
	}
	if c.JetStream && !validStreamName(c.Stream) {
		bad("NATS_STREAM", "must be 1..255 printable characters without white space, '.', '*', '>', '/' or '\\', got %q", c.Stream)
	}
	if c.StreamReplicas < 1 || c.StreamReplicas > MaxStreamReplicas {
		bad("NATS_STREAM_REPLICAS", "must be between 1 and %d, got %d", MaxStreamReplicas, c.StreamReplicas)
	}
	if c.StallTimeout < MinStallTimeout || c.StallTimeout > MaxStallTimeout {
		bad("NATS_STALL_TIMEOUT", "must be between 1s and 10m, got %s", c.StallTimeout)
	}
	if !validSubjectPrefix(c.SubjectPrefix) {
		bad("NATS_SUBJECT_PREFIX", "must be dot-separated tokens of [A-Za-z0-9_-], at most 128 bytes, got %q", c.SubjectPrefix)
	}
	if c.MaxMsgsPerSubject < 1 {
		bad("NATS_MAX_MSGS_PER_SUBJECT", "must be at least 1, got %d", c.MaxMsgsPerSubject)
	}
	if c.MaxMessageBytes < 1 || c.MaxMessageBytes > MaxMessageBytesLimit {
		bad("NATS_MAX_MESSAGE_BYTES", "must be between 1 and %d, got %d", MaxMessageBytesLimit, c.MaxMessageBytes)
	}
	if c.MaxKeyLen < 1 || c.MaxKeyLen > MaxKeyLenLimit {
		bad("NATS_MAX_KEY_LEN", "must be between 1 and %d, got %d", MaxKeyLenLimit, c.MaxKeyLen)
	}
	for _, f := range c.Feeds {
		if !ValidFeedName(f) {
			bad("FEEDS", "must be a comma-separated list of feed names [A-Za-z0-9_-]{1,%d}, got %q", MaxFeedNameLen, f)
			break
		}
	}
	if c.ReconnectWait < time.Millisecond || c.ReconnectWait > 10*time.Minute {
		bad("NATS_RECONNECT_WAIT", "must be between 1ms and 10m, got %s", c.ReconnectWait)
	}
	if c.CorePending < 1 || c.CorePending > 1<<24 {
		bad("NATS_CORE_PENDING", "must be between 1 and %d, got %d", 1<<24, c.CorePending)
	}
	if err := c.Embedded.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Demo.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Validate checks c like Config.Validate.
func (c EmbeddedConfig) Validate() error {
	if c.Port != -1 && (c.Port < 1 || c.Port > 65535) {
		return &ConfigError{Var: EnvPrefix + "NATS_EMBEDDED_PORT", Msg: fmt.Sprintf("must be -1 (random) or between 1 and 65535, got %d", c.Port)}
	}
	return nil
}

// Validate checks c like Config.Validate.
func (c DemoConfig) Validate() error {
	var errs []error
	if !(c.Rate > 0 && c.Rate <= MaxDemoRate) { // also rejects NaN
		errs = append(errs, &ConfigError{Var: EnvPrefix + "DEMO_RATE", Msg: fmt.Sprintf("must be above 0 and at most %d updates per second, got %g", MaxDemoRate, c.Rate)})
	}
	if !validSubjectPrefix(c.SubjectPrefix) {
		errs = append(errs, &ConfigError{Var: EnvPrefix + "NATS_SUBJECT_PREFIX", Msg: fmt.Sprintf("must be dot-separated tokens of [A-Za-z0-9_-], at most 128 bytes, got %q", c.SubjectPrefix)})
	}
	return errors.Join(errs...)
}

func validStreamName(s string) bool {
	if len(s) == 0 || len(s) > 255 {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || strings.ContainsRune(".*>/\\", r) {
			return false
		}
	}
	return true
}

func validSubjectPrefix(p string) bool {
	if len(p) == 0 || len(p) > 128 {
		return false
	}
	for tok := range strings.SplitSeq(p, ".") {
		if !ValidFeedName(tok) {
			return false
		}
	}
	return true
}
