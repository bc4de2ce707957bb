package ingest_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestIngestOversizeAnswered: a body far above MARQUEE_INGEST_MAX_BODY,
// announced by Content-Length and sent whole, gets its 413 — not a reset
// of the connection before the answer is read (the server closes it
// without reading the body, so it must close its write side first and
// let the peer read, as net/http does for a connection it can half-close).
func TestIngestOversizeAnswered(t *testing.T) {
	_, o := start(t, time.Now, nil)
	addr := strings.TrimPrefix(o.IngestURL, "http://")
	body := bytes.Repeat([]byte("x"), 8<<20) // 8 MiB, above the 1 MiB default
	for i := range 5 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, o.IngestURL+"/v1/ingest/prices", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		done := make(chan error, 1)
		go func() { done <- req.Write(c) }() // may fail once the server closed: that is fine
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(newReader(c), req)
		if err != nil {
			t.Fatalf("request %d: no answer read: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		c.Close()
		<-done
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("request %d: %d %s, want 413", i, resp.StatusCode, b)
		}
	}
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }
