package sse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// decodeAll returns every event d dispatches until io.EOF.
func decodeAll(t testing.TB, d *Decoder) []Event {
	t.Helper()
	var evs []Event
	for {
		ev, err := d.Next()
		if err == io.EOF {
			return evs
		}
		if err != nil {
			t.Fatalf("Next after %d events: %v", len(evs), err)
		}
		evs = append(evs, ev)
	}
}

func formatEvents(evs []Event) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "{id %q type %q data %q}\n", ev.ID, ev.Type, ev.Data)
	}
	return b.String()
}

// readers returns named readers that deliver s in different chunkings,
// including every split into two reads.
func readers(s string) map[string]func() io.Reader {
	rs := map[string]func() io.Reader{
		"whole":    func() io.Reader { return strings.NewReader(s) },
		"one byte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
		"half":     func() io.Reader { return iotest.HalfReader(strings.NewReader(s)) },
		"data+EOF": func() io.Reader { return iotest.DataErrReader(strings.NewReader(s)) },
	}
	for i := 1; i < len(s); i++ {
		rs[fmt.Sprintf("split at %d", i)] = func() io.Reader {
			return io.MultiReader(strings.NewReader(s[:i]), strings.NewReader(s[i:]))
		}
	}
	return rs
}

func ev(id, typ, data string) Event { return Event{ID: id, Type: typ, Data: []byte(data)} }

func TestDecode(t *testing.T) {
	const none = -1
	tests := []struct {
		name     string
		in       string
		want     []Event
		lastID   string
		retryMs  int64 // none: no retry seen
		comments []string
	}{
		// The examples of the WHATWG standard.
		{name: "spec: space after colon", in: "data: test\n\n", want: []Event{ev("", "", "test")}, retryMs: none},
		{name: "spec: no space after colon", in: "data:test\n\n", want: []Event{ev("", "", "test")}, retryMs: none},
		{name: "spec: data lines", in: "data\n\ndata\ndata\n\ndata:", want: []Event{ev("", "", ""), ev("", "", "\n")}, retryMs: none},
		{name: "spec: stock", in: "data: YHOO\ndata: +2\ndata: 10\n\n", want: []Event{ev("", "", "YHOO\n+2\n10")}, retryMs: none},
		{
			name:    "spec: ids and comment",
			in:      ": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n",
			want:    []Event{ev("1", "", "first event"), ev("", "", "second event")},
			retryMs: none, comments: []string{"test stream"},
		},

		// Line endings.
		{name: "CRLF", in: "data: a\r\ndata: b\r\n\r\n", want: []Event{ev("", "", "a\nb")}, retryMs: none},
		{name: "CR", in: "data: a\rdata: b\r\r", want: []Event{ev("", "", "a\nb")}, retryMs: none},
		{name: "mixed", in: "data: a\r\n\rdata: b\n\r\ndata: c\r\r\n", want: []Event{ev("", "", "a"), ev("", "", "b"), ev("", "", "c")}, retryMs: none},
		{name: "LF CR is two endings", in: "data: a\n\rdata: b\n\n", want: []Event{ev("", "", "a"), ev("", "", "b")}, retryMs: none},
		{name: "CR CR LF", in: "data: a\r\r\n", want: []Event{ev("", "", "a")}, retryMs: none},

		// End of stream.
		{name: "empty", in: "", retryMs: none},
		{name: "blank lines only", in: "\n\r\n\r", retryMs: none},
		{name: "unterminated line", in: "data: a", retryMs: none},
		{name: "no blank line", in: "data: a\n", retryMs: none},
		{name: "last not dispatched", in: "data: a\n\ndata: b\n", want: []Event{ev("", "", "a")}, retryMs: none},

		// Byte order mark.
		{name: "BOM", in: "\xEF\xBB\xBFdata: a\n\n", want: []Event{ev("", "", "a")}, retryMs: none},
		{name: "BOM only", in: "\xEF\xBB\xBF", retryMs: none},
		{name: "two BOMs", in: "\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\ndata: b\n\n", want: []Event{ev("", "", "b")}, retryMs: none},
		{name: "BOM later", in: "data: a\n\n\xEF\xBB\xBFdata: b\n\n", want: []Event{ev("", "", "a")}, retryMs: none},
		{name: "partial BOM", in: "\xEF\xBBdata: a\n\ndata: b\n\n", want: []Event{ev("", "", "b")}, retryMs: none},

		// Fields.
		{name: "no colon", in: "data\n\n", want: []Event{ev("", "", "")}, retryMs: none},
		{name: "event without colon", in: "event: x\nevent\ndata: a\n\n", want: []Event{ev("", "", "a")}, retryMs: none},
		{name: "one space stripped", in: "data:  two\n\n", want: []Event{ev("", "", " two")}, retryMs: none},
		{name: "tab kept", in: "data:\ttab\n\n", want: []Event{ev("", "", "\ttab")}, retryMs: none},
		{name: "trailing space kept", in: "data: a \n\n", want: []Event{ev("", "", "a ")}, retryMs: none},
		{name: "first colon splits", in: "data: a: b\ndata::c\n\n", want: []Event{ev("", "", "a: b\n:c")}, retryMs: none},
		{name: "unknown fields", in: "foo: bar\nDATA: x\ndata : y\n data: z\ndata: ok\n\n", want: []Event{ev("", "", "ok")}, retryMs: none},
		{name: "space before colon", in: "event : x\ndata: a\n\n", want: []Event{ev("", "", "a")}, retryMs: none},
		{name: "NUL in data", in: "data: a\x00b\n\n", want: []Event{ev("", "", "a\x00b")}, retryMs: none},

		// Event type.
		{name: "type", in: "event: add\ndata: 1\n\ndata: 2\n\n", want: []Event{ev("", "add", "1"), ev("", "", "2")}, retryMs: none},
		{name: "type last wins", in: "event: a\nevent: b\ndata: 1\n\n", want: []Event{ev("", "b", "1")}, retryMs: none},
		{name: "type reset by blank line without data", in: "event: x\n\ndata: 1\n\n", want: []Event{ev("", "", "1")}, retryMs: none},
		{name: "type message kept", in: "event: message\ndata: 1\n\n", want: []Event{ev("", "message", "1")}, retryMs: none},
		{name: "type repeated", in: "event: u\ndata: 1\n\nevent: u\ndata: 2\n\nevent: v\ndata: 3\n\n", want: []Event{ev("", "u", "1"), ev("", "u", "2"), ev("", "v", "3")}, retryMs: none},

		// Last event ID.
		{name: "id persists", in: "id: 1\ndata: a\n\ndata: b\n\n", want: []Event{ev("1", "", "a"), ev("1", "", "b")}, lastID: "1", retryMs: none},
		{name: "id after data", in: "data: a\nid: 3\n\n", want: []Event{ev("3", "", "a")}, lastID: "3", retryMs: none},
		{name: "empty id resets", in: "id: 1\ndata: a\n\nid:\ndata: b\n\nid: 2\ndata: c\n\nid\ndata: d\n\n", want: []Event{ev("1", "", "a"), ev("", "", "b"), ev("2", "", "c"), ev("", "", "d")}, retryMs: none},
		{name: "id with NUL ignored", in: "id: 1\n\nid: 2\x00\ndata: a\n\n", want: []Event{ev("1", "", "a")}, lastID: "1", retryMs: none},
		{name: "id only block", in: "id: 5\n\n", lastID: "5", retryMs: none},
		{name: "id only block then event", in: "id: 5\n\ndata: a\n\n", want: []Event{ev("5", "", "a")}, lastID: "5", retryMs: none},
		{name: "id of unterminated event", in: "id: 1\ndata: a\n\nid: 2\ndata: b\n", want: []Event{ev("1", "", "a")}, lastID: "1", retryMs: none},
		{name: "id spaces", in: "id:  x \ndata: a\n\n", want: []Event{ev(" x ", "", "a")}, lastID: " x ", retryMs: none},

		// Retry.
		{name: "retry", in: "retry: 1000\n", retryMs: 1000},
		{name: "retry without space", in: "retry:250\n\n", retryMs: 250},
		{name: "retry zero", in: "retry: 0\n", retryMs: 0},
		{name: "retry leading zeros", in: "retry: 007\n", retryMs: 7},
		{name: "retry not digits", in: "retry: 10a\nretry: -1\nretry: +1\nretry: 1.5\nretry:  5\nretry: 5 \nretry:\nretry\n", retryMs: none},
		{name: "retry invalid keeps valid", in: "retry: 1000\nretry: x\n", retryMs: 1000},
		{name: "retry last valid wins", in: "retry: 1000\nretry: 20\n", retryMs: 20},
		{name: "retry non-ASCII digits", in: "retry: \u0661\n", retryMs: none},
		{name: "retry in unterminated event", in: "data: a\nretry: 5", retryMs: none},
		{name: "retry in unterminated event line", in: "data: a\nretry: 5\n", retryMs: 5},

		// Comments.
		{name: "comments", in: ": hello\n:world\n:\n:  two\n: a:b\n", retryMs: none, comments: []string{"hello", "world", "", " two", "a:b"}},
		{name: "comment between data", in: "data: a\n: c\ndata: b\n\n", want: []Event{ev("", "", "a\nb")}, retryMs: none, comments: []string{"c"}},

		// Invalid UTF-8, replaced as the WHATWG UTF-8 decoder does.
		{name: "invalid bytes", in: "data: \xff\xfe\n\n", want: []Event{ev("", "", "\uFFFD\uFFFD")}, retryMs: none},
		{name: "truncated sequence", in: "data: \xe2\x82x\n\n", want: []Event{ev("", "", "\uFFFDx")}, retryMs: none},
		{name: "truncated at line end", in: "data: \xf0\x9f\x98\ndata: \xf0\x9f\x98\x80\n\n", want: []Event{ev("", "", "\uFFFD\n\U0001F600")}, retryMs: none},
		{name: "surrogate", in: "data: \xed\xa0\x80\n\n", want: []Event{ev("", "", "\uFFFD\uFFFD\uFFFD")}, retryMs: none},
		{name: "overlong", in: "data: \xc0\xaf\xe0\x80\xaf\n\n", want: []Event{ev("", "", "\uFFFD\uFFFD\uFFFD\uFFFD\uFFFD")}, retryMs: none},
		{name: "above U+10FFFF", in: "data: \xf4\x90\x80\x80\n\n", want: []Event{ev("", "", "\uFFFD\uFFFD\uFFFD\uFFFD")}, retryMs: none},
		{name: "invalid in id and type", in: "id: \xff\nevent: \xc3\ndata: ok\n\n", want: []Event{ev("\uFFFD", "\uFFFD", "ok")}, lastID: "\uFFFD", retryMs: none},
		{name: "invalid in field name", in: "dat\xffa: x\n\n", retryMs: none},
		{name: "valid multibyte", in: "data: ü€\U0001F600\n\n", want: []Event{ev("", "", "ü€\U0001F600")}, retryMs: none},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for rname, newReader := range readers(tt.in) {
				var comments []string
				d := NewDecoder(newReader())
				d.OnComment = func(s string) { comments = append(comments, s) }
				got := decodeAll(t, d)
				if g, w := formatEvents(got), formatEvents(tt.want); g != w {
					t.Fatalf("%s: events:\n%s\nwant:\n%s", rname, g, w)
				}
				if got, want := d.LastEventID(), tt.lastID; got != want {
					t.Fatalf("%s: LastEventID() = %q, want %q", rname, got, want)
				}
				retry, ok := d.Retry()
				if tt.retryMs == none {
					if ok {
						t.Fatalf("%s: Retry() = %v, true, want none", rname, retry)
					}
				} else if !ok || retry != time.Duration(tt.retryMs)*time.Millisecond {
					t.Fatalf("%s: Retry() = %v, %v, want %dms, true", rname, retry, ok, tt.retryMs)
				}
				if got, want := fmt.Sprintf("%q", comments), fmt.Sprintf("%q", tt.comments); got != want {
					t.Fatalf("%s: comments = %s, want %s", rname, got, want)
				}
				// Errors are sticky.
				if _, err := d.Next(); err != io.EOF {
					t.Fatalf("%s: Next after EOF = %v, want io.EOF", rname, err)
				}
			}
		})
	}
}

func TestDecodeRetrySaturates(t *testing.T) {
	d := NewDecoder(strings.NewReader("retry: 99999999999999999999999\n"))
	decodeAll(t, d)
	if got, ok := d.Retry(); !ok || got != math.MaxInt64 {
		t.Fatalf("Retry() = %v, %v, want max duration, true", got, ok)
	}
}

func TestDecodeCommentOrder(t *testing.T) {
	var log []string
	d := NewDecoder(strings.NewReader(": one\ndata: a\n\n: two\n: three\ndata: b\n: four\n\n: five\n"))
	d.OnComment = func(s string) { log = append(log, "comment "+s) }
	for {
		ev, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		log = append(log, "event "+string(ev.Data))
	}
	got := strings.Join(log, ", ")
	want := "comment one, event a, comment two, comment three, comment four, event b, comment five"
	if got != want {
		t.Fatalf("order = %q, want %q", got, want)
	}
}

func TestDecodeReadError(t *testing.T) {
	errBoom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("data: a\n\ndata: b\n"), iotest.ErrReader(errBoom))
	d := NewDecoder(r)
	ev, err := d.Next()
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	if got, want := string(ev.Data), "a"; got != want {
		t.Fatalf("Data = %q, want %q", got, want)
	}
	for range 2 {
		if _, err := d.Next(); err != errBoom {
			t.Fatalf("Next = %v, want %v", err, errBoom)
		}
	}
}

// errAfterReader returns its data and err in the same Read call.
type errAfterReader struct {
	data string
	err  error
}

func (r *errAfterReader) Read(p []byte) (int, error) {
	n := copy(p, r.data)
	r.data = r.data[n:]
	if r.data == "" {
		return n, r.err
	}
	return n, nil
}

func TestDecodeDataWithError(t *testing.T) {
	errBoom := errors.New("boom")
	d := NewDecoder(&errAfterReader{data: "data: a\n\ndata: b\n\ndata: c\n", err: errBoom})
	for _, want := range []string{"a", "b"} {
		ev, err := d.Next()
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if got := string(ev.Data); got != want {
			t.Fatalf("Data = %q, want %q", got, want)
		}
	}
	if _, err := d.Next(); err != errBoom {
		t.Fatalf("Next = %v, want %v", err, errBoom)
	}
}

// zeroReader returns 0, nil forever.
type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

func TestDecodeNoProgress(t *testing.T) {
	if _, err := NewDecoder(zeroReader{}).Next(); err != io.ErrNoProgress {
		t.Fatalf("Next = %v, want io.ErrNoProgress", err)
	}
}

func TestDecodeTooLong(t *testing.T) {
	const limit = 16
	tests := []struct {
		name   string
		in     string
		events int // dispatched before ErrTooLong; -1: no error
	}{
		{"line at limit", "data: 0123456789\n\n", -1},                             // line is 16 bytes
		{"line over limit", "data: 0123456789a\n\n", 0},                           // 17 bytes
		{"unterminated long line", "data: 0123456789abcdefghijklmnop", 0},         // no line ending
		{"long comment", ": 0123456789abcdefghijklmnop\n", 0},                     // comments count too
		{"data at limit", "data: 01234\ndata: 012345\n\n", -1},                    // 6+7 = 13 bytes
		{"data over limit", "data: 0123\ndata: 0123\ndata: 0123\ndata: 0\n\n", 0}, // 5+5+5+2 = 17 bytes
		{"after an event", "data: a\n\ndata: 0123456789abcdefghij\n\n", 1},
		{"limit per event", "data: 0123456789\n\ndata: 0123456789\n\ndata: 0123456789\n\n", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for rname, newReader := range readers(tt.in) {
				d := NewDecoder(newReader())
				d.MaxEventBytes = limit
				n := 0
				var err error
				for {
					if _, err = d.Next(); err != nil {
						break
					}
					n++
				}
				if tt.events < 0 {
					if err != io.EOF {
						t.Fatalf("%s: Next = %v after %d events, want io.EOF", rname, err, n)
					}
					continue
				}
				if err != ErrTooLong || n != tt.events {
					t.Fatalf("%s: Next = %v after %d events, want ErrTooLong after %d", rname, err, n, tt.events)
				}
				if _, err := d.Next(); err != ErrTooLong {
					t.Fatalf("%s: second Next = %v, want ErrTooLong (sticky)", rname, err)
				}
			}
		})
	}
}

func TestDecodeDefaultLimit(t *testing.T) {
	big := strings.Repeat("x", DefaultMaxEventBytes-10)
	d := NewDecoder(strings.NewReader("data: " + big + "\n\n"))
	ev, err := d.Next()
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	if got, want := len(ev.Data), len(big); got != want {
		t.Fatalf("len(Data) = %d, want %d", got, want)
	}
	d = NewDecoder(strings.NewReader("data: " + big + strings.Repeat("y", 20) + "\n\n"))
	if _, err := d.Next(); err != ErrTooLong {
		t.Fatalf("Next = %v, want ErrTooLong", err)
	}
}

// TestDecodeLongLines checks lines far longer than the initial buffer, and
// many short CR-terminated lines in one buffer.
func TestDecodeLongLines(t *testing.T) {
	long := strings.Repeat("0123456789", 5000)
	in := "data: " + long + "\r\n" + strings.Repeat("data\r", 3000) + "\r"
	want := long + strings.Repeat("\n", 3000)
	for _, r := range []io.Reader{strings.NewReader(in), iotest.OneByteReader(strings.NewReader(in))} {
		evs := decodeAll(t, NewDecoder(r))
		if len(evs) != 1 || string(evs[0].Data) != want {
			t.Fatalf("got %d events, want one with %d bytes of data", len(evs), len(want))
		}
	}
}

// TestDecodeCRDispatchesAtOnce checks that an event ended by CR is returned
// without waiting for the next byte, which may be an LF or may never come.
func TestDecodeCRDispatchesAtOnce(t *testing.T) {
	pr, pw := io.Pipe()
	defer pr.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.Write([]byte("data: a\r\r"))
	}()
	d := NewDecoder(pr)
	got, err := d.Next()
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	if got, want := string(got.Data), "a"; got != want {
		t.Fatalf("Data = %q, want %q", got, want)
	}
	<-done
	// The LF of a CRLF split across writes is still part of one line ending.
	go func() {
		pw.Write([]byte("\ndata: b\r"))
		pw.Write([]byte("\n\r\n"))
		pw.Close()
	}()
	evs := decodeAll(t, d)
	if g, w := formatEvents(evs), formatEvents([]Event{ev("", "", "b")}); g != w {
		t.Fatalf("events:\n%s\nwant:\n%s", g, w)
	}
}

func TestDecodeDataNotAliased(t *testing.T) {
	d := NewDecoder(strings.NewReader("data: first\n\ndata: second\n\n"))
	a, _ := d.Next()
	b, _ := d.Next()
	if got, want := string(a.Data)+"|"+string(b.Data), "first|second"; got != want {
		t.Fatalf("data = %q, want %q", got, want)
	}
}

func TestDecodeAllocs(t *testing.T) {
	frame := []byte("event: update\ndata: {\"key\":\"k\",\"seq\":1}\n\n")
	stream := bytes.Repeat(frame, 1000)
	r := bytes.NewReader(stream)
	d := NewDecoder(r)
	allocs := testing.AllocsPerRun(500, func() {
		if _, err := d.Next(); err != nil {
			t.Fatal(err)
		}
	})
	// One allocation: the event's Data.
	if allocs > 1 {
		t.Fatalf("Next allocates %v times per event, want at most 1", allocs)
	}
}

func BenchmarkDecode(b *testing.B) {
	var stream []byte
	for i := range 1000 {
		stream, _ = AppendEvent(stream, Event{
			ID:   fmt.Sprint(4711 + i),
			Type: "update",
			Data: []byte(`{"key":"nba.lal-bos","seq":4712,"time":1700000000000,"value":{"home":101,"away":99,"clock":"Q4 02:13","status":"live"}}`),
		})
		if i%10 == 0 {
			stream = AppendComment(stream, "keepalive")
		}
	}
	r := bytes.NewReader(stream)
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		r.Reset(stream)
		d := NewDecoder(r)
		n := 0
		for {
			_, err := d.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != 1000 {
			b.Fatalf("decoded %d events, want 1000", n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/event")
}
