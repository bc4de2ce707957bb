package feed

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caarlos0/env/v11"
)

func parseEnv(t *testing.T, environ map[string]string) Config {
	t.Helper()
	cfg, err := env.ParseAsWithOptions[Config](env.Options{Prefix: EnvPrefix, Environment: environ})
	if err != nil {
		t.Fatalf("parse env: %v", err)
	}
	return cfg
}

func TestConfigEnvDefaults(t *testing.T) {
	cfg := parseEnv(t, map[string]string{})
	if want := DefaultConfig(); !reflect.DeepEqual(cfg, want) {
		t.Fatalf("env defaults\n got %+v\nwant %+v", cfg, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
}

func TestConfigEnvOverrides(t *testing.T) {
	cfg := parseEnv(t, map[string]string{
		"MARQUEE_NATS_URL":                  "nats://a:4222,nats://b:4222",
		"MARQUEE_NATS_CREDS":                "/etc/nats/marquee.creds",
		"MARQUEE_NATS_JETSTREAM":            "false",
		"MARQUEE_NATS_STREAM":               "PRICES",
		"MARQUEE_NATS_CREATE_STREAM":        "false",
		"MARQUEE_NATS_STREAM_REPLICAS":      "3",
		"MARQUEE_NATS_MANAGE_STREAM":        "true",
		"MARQUEE_NATS_STALL_TIMEOUT":        "12s",
		"MARQUEE_NATS_SUBJECT_PREFIX":       "acme.feeds",
		"MARQUEE_NATS_MAX_MSGS_PER_SUBJECT": "4",
		"MARQUEE_NATS_MAX_MESSAGE_BYTES":    "1024",
		"MARQUEE_NATS_MAX_KEY_LEN":          "32",
		"MARQUEE_FEEDS":                     "prices,scores",
		"MARQUEE_NATS_RECONNECT_WAIT":       "500ms",
		"MARQUEE_NATS_CORE_PENDING":         "10",
		"MARQUEE_DATA_DIR":                  "/var/lib/marquee",
		"MARQUEE_NATS_EMBEDDED_PORT":        "4222",
		"MARQUEE_DEMO":                      "false",
		"MARQUEE_DEMO_RATE":                 "2.5",
		"MARQUEE_DEMO_SEED":                 "42",
		"NATS_URL":                          "nats://unprefixed-is-ignored:4222",
	})
	want := Config{
		URL:               "nats://a:4222,nats://b:4222",
		Credentials:       "/etc/nats/marquee.creds",
		JetStream:         false,
		Stream:            "PRICES",
		CreateStream:      false,
		StreamReplicas:    3,
		ManageStream:      true,
		StallTimeout:      12 * time.Second,
		SubjectPrefix:     "acme.feeds",
		MaxMsgsPerSubject: 4,
		MaxMessageBytes:   1024,
		MaxKeyLen:         32,
		Feeds:             []string{"prices", "scores"},
		ReconnectWait:     500 * time.Millisecond,
		CorePending:       10,
		Embedded:          EmbeddedConfig{DataDir: "/var/lib/marquee", Port: 4222},
		Demo:              DemoConfig{Enabled: false, Rate: 2.5, Seed: 42, SubjectPrefix: "acme.feeds"},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("env overrides\n got %+v\nwant %+v", cfg, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
	if got := cfg.Limits(); got.SubjectPrefix != "acme.feeds" || got.MaxMessageBytes != 1024 || got.MaxKeyLen != 32 || len(got.Feeds) != 2 {
		t.Fatalf("Limits() = %+v", got)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(c *Config)
		wantMsg string
	}{
		{"max message bytes zero", func(c *Config) { c.MaxMessageBytes = 0 }, "MARQUEE_NATS_MAX_MESSAGE_BYTES must be between 1 and 1048576, got 0"},
		{"max message bytes huge", func(c *Config) { c.MaxMessageBytes = 2 << 20 }, "MARQUEE_NATS_MAX_MESSAGE_BYTES must be between 1 and 1048576, got 2097152"},
		{"max key len", func(c *Config) { c.MaxKeyLen = 0 }, "MARQUEE_NATS_MAX_KEY_LEN must be between 1 and 1024, got 0"},
		{"max msgs per subject", func(c *Config) { c.MaxMsgsPerSubject = 0 }, "MARQUEE_NATS_MAX_MSGS_PER_SUBJECT must be at least 1, got 0"},
		{"stream with dot", func(c *Config) { c.Stream = "A.B" }, "MARQUEE_NATS_STREAM "},
		{"empty stream", func(c *Config) { c.Stream = "" }, "MARQUEE_NATS_STREAM "},
		{"prefix wildcard", func(c *Config) { c.SubjectPrefix = "feeds.>" }, "MARQUEE_NATS_SUBJECT_PREFIX "},
		{"prefix empty token", func(c *Config) { c.SubjectPrefix = "a..b" }, "MARQUEE_NATS_SUBJECT_PREFIX "},
		{"bad feed in allow-list", func(c *Config) { c.Feeds = []string{"ok", "not ok"} }, `MARQUEE_FEEDS must be a comma-separated list of feed names [A-Za-z0-9_-]{1,64}, got "not ok"`},
		{"stream replicas zero", func(c *Config) { c.StreamReplicas = 0 }, "MARQUEE_NATS_STREAM_REPLICAS must be between 1 and 5, got 0"},
		{"stream replicas six", func(c *Config) { c.StreamReplicas = 6 }, "MARQUEE_NATS_STREAM_REPLICAS must be between 1 and 5, got 6"},
		{"stall timeout short", func(c *Config) { c.StallTimeout = 500 * time.Millisecond }, "MARQUEE_NATS_STALL_TIMEOUT must be between 1s and 10m, got 500ms"},
		{"stall timeout long", func(c *Config) { c.StallTimeout = time.Hour }, "MARQUEE_NATS_STALL_TIMEOUT must be between 1s and 10m, got 1h0m0s"},
		{"reconnect wait", func(c *Config) { c.ReconnectWait = 0 }, "MARQUEE_NATS_RECONNECT_WAIT must be between 1ms and 10m, got 0s"},
		{"core pending", func(c *Config) { c.CorePending = 0 }, "MARQUEE_NATS_CORE_PENDING must be between 1 and 16777216, got 0"},
		{"url with space", func(c *Config) { c.URL = "nats://a b" }, "MARQUEE_NATS_URL "},
		{"embedded port", func(c *Config) { c.Embedded.Port = 0 }, "MARQUEE_NATS_EMBEDDED_PORT must be -1 (random) or between 1 and 65535, got 0"},
		{"demo rate", func(c *Config) { c.Demo.Rate = 0 }, "MARQUEE_DEMO_RATE must be above 0 and at most 100000 updates per second, got 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.mod(&cfg)
			err := cfg.Validate()
			if err == nil {
				t.Fatal("Validate accepted an invalid config")
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("error %v does not wrap ErrInvalidConfig", err)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Errorf("error %v is not a *ConfigError", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tt.wantMsg)
			}
		})
	}

	cfg := DefaultConfig()
	cfg.MaxKeyLen, cfg.CorePending = 0, 0
	err := cfg.Validate()
	for _, v := range []string{"MARQUEE_NATS_MAX_KEY_LEN", "MARQUEE_NATS_CORE_PENDING"} {
		if err == nil || !strings.Contains(err.Error(), v) {
			t.Errorf("joined error %v does not name %s", err, v)
		}
	}

	cfg = DefaultConfig()
	cfg.JetStream, cfg.Stream = false, "" // the stream only matters with JetStream
	if err := cfg.Validate(); err != nil {
		t.Errorf("core config with empty stream: %v", err)
	}
}

func TestDefaultDataDir(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	dir, err := DefaultDataDir()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(dir, "/marquee") {
		t.Fatalf("DefaultDataDir() = %q", dir)
	}
}
