package ingest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

var (
	keyA    = bytes.Repeat([]byte("a"), 32)
	keyB    = bytes.Repeat([]byte("b"), 24)
	secretA = SecretPrefix + base64.StdEncoding.EncodeToString(keyA)
	secretB = SecretPrefix + base64.StdEncoding.EncodeToString(keyB)
)

func headers(id string, ts int64, sig string) http.Header {
	h := http.Header{}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	h.Set(HeaderSignature, sig)
	return h
}

// TestVerifyInteroperates: signatures of the Standard Webhooks reference
// library verify here, and Sign's verify there.
func TestVerifyInteroperates(t *testing.T) {
	body := []byte(`{"key":"AAPL","value":{"price":189.23}}`)
	now := time.Now()
	ref, err := standardwebhooks.NewWebhook(secretA)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := ref.Sign("msg_1", now, body)
	if err != nil {
		t.Fatal(err)
	}
	v, err := newVerifier([]string{secretB, secretA}, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := v.verify(headers("msg_1", now.Unix(), sig), body, now); err != nil || id != "msg_1" {
		t.Errorf("reference signature: %q, %v", id, err)
	}
	ours, err := Sign(secretA, "msg_2", now.Unix(), body)
	if err != nil {
		t.Fatal(err)
	}
	if err := ref.Verify(body, headers("msg_2", now.Unix(), ours)); err != nil {
		t.Errorf("reference library refuses Sign's signature: %v", err)
	}
}

func TestVerifyRefusals(t *testing.T) {
	body := []byte(`{"key":"k","value":{}}`)
	now := time.Unix(1_800_000_000, 0)
	v, err := newVerifier([]string{secretA, secretB}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	good, _ := Sign(secretB, "id", now.Unix(), body)
	other, _ := Sign(secretA, "id", now.Unix(), []byte("other"))
	for _, tc := range []struct {
		name string
		h    http.Header
		body []byte
		want error
	}{
		{"second secret", headers("id", now.Unix(), good), body, nil},
		{"several signatures, last matches", headers("id", now.Unix(), "v1,AAAA v1a,"+good[3:]+" "+other+" "+good), body, nil},
		{"other version only", headers("id", now.Unix(), "v1a,"+good[3:]), body, errBadSignature},
		{"not base64", headers("id", now.Unix(), "v1,!!!!"), body, errBadSignature},
		{"other body", headers("id", now.Unix(), good), []byte(`{"key":"k","value":{"x":1}}`), errBadSignature},
		{"other id", headers("id2", now.Unix(), good), body, errBadSignature},
		{"other timestamp", headers("id", now.Unix()+1, good), body, errBadSignature},
		{"no id", headers("", now.Unix(), good), body, errMissingHeaders},
		{"no signature", headers("id", now.Unix(), ""), body, errMissingHeaders},
		{"id with a space", headers("a b", now.Unix(), good), body, errBadHeaders},
		{"id too long", headers(strings.Repeat("x", maxIDLen+1), now.Unix(), good), body, errBadHeaders},
		{"negative timestamp", headers("id", -1, good), body, errBadHeaders},
		{"old", headers("id", now.Unix()-61, good), body, errStale},
		{"new", headers("id", now.Unix()+61, good), body, errStale},
		{"huge", headers("id", 1<<62, good), body, errStale},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := v.verify(tc.h, tc.body, now); !errors.Is(err, tc.want) && !(err == nil && tc.want == nil) {
				t.Errorf("verify: %v, want %v", err, tc.want)
			}
		})
	}
	h := http.Header{}
	h.Set(HeaderID, "id")
	h.Set(HeaderTimestamp, "12.5")
	h.Set(HeaderSignature, good)
	if _, err := v.verify(h, body, now); !errors.Is(err, errBadHeaders) {
		t.Errorf("fractional timestamp: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := Defaults().Validate(); err != nil {
		t.Fatalf("defaults (off): %v", err)
	}
	on := Defaults()
	on.ListenAddr = "127.0.0.1:8081"
	on.Secrets = []string{secretA, secretB}
	if err := on.Validate(); err != nil {
		t.Fatalf("on: %v", err)
	}
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Secrets = nil }, "MARQUEE_INGEST_SECRETS"},
		{func(c *Config) { c.Secrets = []string{"abc"} }, "MARQUEE_INGEST_SECRETS entry 1: must start with"},
		{func(c *Config) { c.ListenAddr = "8081" }, "MARQUEE_INGEST_ADDR"},
		{func(c *Config) { c.Tolerance = 0 }, "MARQUEE_INGEST_TOLERANCE"},
		{func(c *Config) { c.Tolerance = 2 * time.Hour }, "MARQUEE_INGEST_TOLERANCE"},
		{func(c *Config) { c.MaxBodyBytes = 10 }, "MARQUEE_INGEST_MAX_BODY"},
		{func(c *Config) { c.MaxUpdates = 0 }, "MARQUEE_INGEST_MAX_UPDATES"},
		{func(c *Config) { c.MaxUpdates = MaxUpdatesLimit + 1 }, "MARQUEE_INGEST_MAX_UPDATES"},
		{func(c *Config) { c.RequestTimeout = time.Millisecond }, "MARQUEE_INGEST_TIMEOUT"},
		{func(c *Config) { c.SenderRate = -1 }, "MARQUEE_INGEST_RATE"},
		{func(c *Config) { c.SenderBurst = 0 }, "MARQUEE_INGEST_BURST"},
		{func(c *Config) { c.MaxConns = 0 }, "MARQUEE_INGEST_MAX_CONNECTIONS"},
	} {
		c := on
		tc.edit(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error naming %s", c, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(keyA)) {
			t.Errorf("error repeats a secret: %v", err)
		}
	}
	if got := on.DuplicateWindow(); got != 10*time.Minute {
		t.Errorf("duplicate window %s, want 10m", got)
	}
}
