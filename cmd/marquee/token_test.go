package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"marquee/token"
	"marquee/wire"
)

const testKeys = "MARQUEE_TOKEN_KEYS=k2:second-secret-0123456789,k1:0123456789abcdef0123456789abcdef"

// mintCmd runs `marquee token args...` with environ at now.
func mintCmd(t *testing.T, environ []string, now time.Time, args ...string) (code int, out tokenOutput, stderr string) {
	t.Helper()
	var so, se bytes.Buffer
	code = tokenMain(args, environ, now, &so, &se)
	if code == 0 {
		dec := json.NewDecoder(&so)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&out); err != nil {
			t.Fatalf("output %q: %v", so.String(), err)
		}
	} else if so.Len() > 0 {
		t.Errorf("exit %d with output %q", code, so.String())
	}
	return code, out, se.String()
}

// TestTokenCommand: `marquee token -feed NAME` prints JSON whose token
// validates with the same environment; -key and -at choose the key and
// the window; errors are clear and exit 1 (environment) or 2 (usage).
func TestTokenCommand(t *testing.T) {
	env := []string{testKeys, "MARQUEE_PROTECTED_FEEDS=scores", "MARQUEE_SEGMENT_LENGTH=30s", "MARQUEE_TOKEN_WINDOW=4", "MARQUEE_URL_PREFIX=/live/v1/feeds"}
	now := time.Date(2026, 1, 1, 0, 3, 10, 0, time.UTC) // in the window starting at 00:02:00 (120 s windows)
	code, out, stderr := mintCmd(t, env, now, "-feed", "scores")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	cfg, err := parseConfig(env)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := token.New(cfg.Origin.Tokens, cfg.Segmenter.SegmentLength)
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Validate("scores", out.Value, now); err != nil {
		t.Errorf("printed token %q does not validate: %v", out.Value, err)
	}
	wantStart := time.Date(2026, 1, 1, 0, 2, 0, 0, time.UTC)
	if out.Feed != "scores" || out.KeyID != "k2" || !out.Start.Equal(wantStart) || !out.Expires.Equal(wantStart.Add(150*time.Second)) {
		t.Errorf("output %+v", out)
	}
	if want := "/live/v1/feeds/scores/t/" + out.Value; out.DescriptorURL != want {
		t.Errorf("descriptor_url %q, want %q", out.DescriptorURL, want)
	}

	// -key and -at.
	code, old, _ := mintCmd(t, env, now, "-feed", "scores", "-key", "k1", "-at", "2026-01-01T00:05:59Z")
	if code != 0 || old.KeyID != "k1" || !strings.HasPrefix(old.Value, "k1.1767225840-") {
		t.Errorf("-key k1 -at 00:05:59: exit %d, %+v", code, old)
	}
	// A public feed is minted, with a note.
	if code, _, stderr := mintCmd(t, env, now, "-feed", "prices"); code != 0 || !strings.Contains(stderr, "not in MARQUEE_PROTECTED_FEEDS") {
		t.Errorf("public feed: exit %d, stderr %q", code, stderr)
	}

	for _, c := range []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		{"no keys", nil, []string{"-feed", "scores"}, 1, "MARQUEE_TOKEN_KEYS is empty"},
		{"bad keys", []string{"MARQUEE_TOKEN_KEYS=k1"}, []string{"-feed", "scores"}, 1, "MARQUEE_TOKEN_KEYS"},
		{"bad segment", []string{testKeys, "MARQUEE_SEGMENT_LENGTH=1h"}, []string{"-feed", "scores"}, 1, "MARQUEE_SEGMENT_LENGTH"},
		{"unknown key", env, []string{"-feed", "scores", "-key", "k9"}, 1, "k9"},
		{"no feed", env, nil, 2, "-feed is required"},
		{"bad feed", env, []string{"-feed", "a/b"}, 2, "not a feed name"},
		{"bad time", env, []string{"-feed", "scores", "-at", "yesterday"}, 2, "RFC 3339"},
		{"extra argument", env, []string{"-feed", "scores", "now"}, 2, "unexpected arguments"},
		{"unknown flag", env, []string{"-window", "3"}, 2, "flag provided but not defined"},
	} {
		code, _, stderr := mintCmd(t, c.env, now, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", c.name, code, stderr, c.code, c.want)
		}
		if strings.Contains(stderr, "0123456789abcdef") || strings.Contains(stderr, "second-secret") {
			t.Errorf("%s: stderr shows a secret: %s", c.name, stderr)
		}
	}
}

// TestTokenCommandOnServer: the command's descriptor_url, with the
// server's own environment, opens the protected feed on the running
// binary, whose un-tokened routes are refused.
func TestTokenCommandOnServer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := []string{testKeys, "MARQUEE_PROTECTED_FEEDS=scores", "MARQUEE_ADDR=127.0.0.1:0", "MARQUEE_ADMIN_ADDR=",
		"MARQUEE_DATA_DIR=" + t.TempDir(), "MARQUEE_DRAIN_DELAY=0s", "MARQUEE_LOG_LEVEL=error"}
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, env, io.Discard, func(pub, _ string) { addrs <- pub }) }()
	var base string
	select {
	case a := <-addrs:
		base = "http://" + a
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("run did not start")
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	code, out, stderr := mintCmd(t, env, time.Now(), "-feed", "scores")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var d wire.Descriptor
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + out.DescriptorURL)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				if err := json.Unmarshal(b, &d); err != nil {
					t.Fatal(err)
				}
				break
			}
			if resp.StatusCode != http.StatusNotFound || time.Now().After(deadline) { // 404: the demo has not created the feed yet
				t.Fatalf("GET %s: %d %s", out.DescriptorURL, resp.StatusCode, b)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !d.Protected || d.TokenExpires != out.Expires.UnixMilli() || !strings.Contains(d.URL, "/t/"+out.Value+"/segments/") {
		t.Errorf("descriptor %+v", d)
	}
	resp, err := http.Get(base + "/v1/feeds/scores")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("un-tokened descriptor: %d, Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
}
