package sse

import (
	"bytes"
	"strings"
	"testing"
)

func TestAppendEvent(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		want string
	}{
		{"data only", Event{Data: []byte("hello")}, "data: hello\n\n"},
		{"all fields", Event{ID: "42", Type: "update", Data: []byte(`{"a":1}`)}, "id: 42\nevent: update\ndata: {\"a\":1}\n\n"},
		{"empty data", Event{}, "data:\n\n"},
		{"empty data with id", Event{ID: "7"}, "id: 7\ndata:\n\n"},
		{"LF", Event{Data: []byte("a\nb")}, "data: a\ndata: b\n\n"},
		{"CR", Event{Data: []byte("a\rb")}, "data: a\ndata: b\n\n"},
		{"CRLF", Event{Data: []byte("a\r\nb")}, "data: a\ndata: b\n\n"},
		{"LFCR is two breaks", Event{Data: []byte("a\n\rb")}, "data: a\ndata:\ndata: b\n\n"},
		{"mixed", Event{Data: []byte("a\r\n\r\nb\rc\n\nd")}, "data: a\ndata:\ndata: b\ndata: c\ndata:\ndata: d\n\n"},
		{"trailing LF", Event{Data: []byte("a\n")}, "data: a\ndata:\n\n"},
		{"trailing CR", Event{Data: []byte("a\r")}, "data: a\ndata:\n\n"},
		{"only CRLF", Event{Data: []byte("\r\n")}, "data:\ndata:\n\n"},
		{"leading space kept", Event{ID: " x", Type: " t", Data: []byte(" d")}, "id:  x\nevent:  t\ndata:  d\n\n"},
		{"colons", Event{ID: "a:b", Type: "c:d", Data: []byte("e:f")}, "id: a:b\nevent: c:d\ndata: e:f\n\n"},
		{"NUL in data and type", Event{Type: "a\x00", Data: []byte("\x00")}, "event: a\x00\ndata: \x00\n\n"},
		{"unicode", Event{ID: "ü", Type: "ß", Data: []byte("€\uFFFD")}, "id: ü\nevent: ß\ndata: €\uFFFD\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AppendEvent([]byte("prefix|"), tt.ev)
			if err != nil {
				t.Fatalf("AppendEvent: %v", err)
			}
			if got, want := string(got), "prefix|"+tt.want; got != want {
				t.Fatalf("AppendEvent = %q, want %q", got, want)
			}
		})
	}
}

func TestAppendEventRefused(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		want error
	}{
		{"id LF", Event{ID: "a\nb"}, ErrInvalidID},
		{"id CR", Event{ID: "a\r"}, ErrInvalidID},
		{"id NUL", Event{ID: "a\x00"}, ErrInvalidID},
		{"id invalid UTF-8", Event{ID: "\xff"}, ErrInvalidID},
		{"type LF", Event{Type: "a\n"}, ErrInvalidType},
		{"type CR", Event{Type: "\ra"}, ErrInvalidType},
		{"type invalid UTF-8", Event{Type: "\xc3"}, ErrInvalidType},
		{"data invalid UTF-8", Event{Data: []byte("ok\xed\xa0\x80")}, ErrInvalidData},
		{"id checked first", Event{ID: "\n", Type: "\n", Data: []byte{0xff}}, ErrInvalidID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("prefix|")
			got, err := AppendEvent(dst, tt.ev)
			if err != tt.want {
				t.Fatalf("AppendEvent error = %v, want %v", err, tt.want)
			}
			if got, want := string(got), "prefix|"; got != want {
				t.Fatalf("AppendEvent changed dst to %q", got)
			}
		})
	}
}

func TestAppendComment(t *testing.T) {
	tests := []struct {
		text, want string
	}{
		{"", ":\n\n"},
		{"keepalive", ": keepalive\n\n"},
		{" x", ":  x\n\n"},
		{"a\nb", ": a\n: b\n\n"},
		{"a\rb", ": a\n: b\n\n"},
		{"a\r\nb", ": a\n: b\n\n"},
		{"a\n", ": a\n:\n\n"},
		{"\r\n\r", ":\n:\n:\n\n"},
	}
	for _, tt := range tests {
		if got, want := string(AppendComment([]byte("p|"), tt.text)), "p|"+tt.want; got != want {
			t.Errorf("AppendComment(%q) = %q, want %q", tt.text, got, want)
		}
	}
}

func TestAppendRetry(t *testing.T) {
	tests := []struct {
		ms   int
		want string
	}{
		{0, "retry: 0\n\n"},
		{3000, "retry: 3000\n\n"},
		{-5, "retry: 0\n\n"},
	}
	for _, tt := range tests {
		if got, want := string(AppendRetry(nil, tt.ms)), tt.want; got != want {
			t.Errorf("AppendRetry(%d) = %q, want %q", tt.ms, got, want)
		}
	}
}

// TestEncodeDecode checks that what the encoder writes, the decoder reads.
func TestEncodeDecode(t *testing.T) {
	var b []byte
	b = AppendRetry(b, 2500)
	b, _ = AppendEvent(b, Event{ID: "1", Type: "snapshot", Data: []byte("line1\r\nline2")})
	b = AppendComment(b, "keepalive\nsecond")
	b, _ = AppendEvent(b, Event{Data: []byte("")})
	b, _ = AppendEvent(b, Event{ID: "2", Type: "update", Data: []byte("\n")})

	var comments []string
	d := NewDecoder(bytes.NewReader(b))
	d.OnComment = func(s string) { comments = append(comments, s) }
	want := []Event{
		{ID: "1", Type: "snapshot", Data: []byte("line1\nline2")},
		{ID: "1", Data: []byte("")},
		{ID: "2", Type: "update", Data: []byte("\n")},
	}
	got := decodeAll(t, d)
	if g, w := formatEvents(got), formatEvents(want); g != w {
		t.Fatalf("events:\n%s\nwant:\n%s", g, w)
	}
	if got, want := strings.Join(comments, "|"), "keepalive|second"; got != want {
		t.Fatalf("comments = %q, want %q", got, want)
	}
	if got, ok := d.Retry(); !ok || got.Milliseconds() != 2500 {
		t.Fatalf("Retry() = %v, %v, want 2.5s, true", got, ok)
	}
}

func BenchmarkAppendEvent(b *testing.B) {
	data := []byte(`{"key":"nba.lal-bos","seq":4712,"time":1700000000000,"value":{"home":101,"away":99,"clock":"Q4 02:13","status":"live"}}`)
	ev := Event{ID: "4712", Type: "update", Data: data}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var err error
		buf, err = AppendEvent(buf[:0], ev)
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendEventMultiline(b *testing.B) {
	data := bytes.Repeat([]byte("a line of text\r\n"), 64)
	ev := Event{ID: "4712", Type: "update", Data: data}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		buf, _ = AppendEvent(buf[:0], ev)
	}
}
