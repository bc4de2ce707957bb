package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"a", "b", "c"}, {"-viewers", "x", "http://x"}, {"-header", "nocolon", "http://x"}, {"-mode", "hls", "http://x"}} {
		var out, errb bytes.Buffer
		if got, want := run(context.Background(), args, &out, &errb), exitUsage; got != want {
			t.Errorf("run(%q) = %d, want %d", args, got, want)
		}
	}
}

// TestNotMarquee: an edge that does not serve marquee's descriptor cannot
// be probed: exit status 2 and a message naming the problem.
func TestNotMarquee(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	var out, errb bytes.Buffer
	if got, want := run(context.Background(), []string{srv.URL, "scores"}, &out, &errb), exitUsage; got != want {
		t.Fatalf("exit %d, want %d; stderr %s", got, want, errb.String())
	}
	if !strings.Contains(errb.String(), "status 404") {
		t.Errorf("stderr = %q", errb.String())
	}
}

func TestBadURL(t *testing.T) {
	var out, errb bytes.Buffer
	if got, want := run(context.Background(), []string{"ftp://x"}, &out, &errb), exitUsage; got != want {
		t.Fatalf("exit %d, want %d", got, want)
	}
	if !strings.Contains(errb.String(), "base URL") {
		t.Errorf("stderr = %q", errb.String())
	}
}

func TestHeaderFlag(t *testing.T) {
	h := headerFlag{}
	if err := h.Set("X-Test:  a b "); err != nil {
		t.Fatal(err)
	}
	if got := http.Header(h).Get("X-Test"); got != "a b" {
		t.Errorf("X-Test = %q", got)
	}
}
