package sse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"
)

func FuzzRoundTrip(f *testing.F) {
	f.Add("1", "update", []byte(`{"a":1}`))
	f.Add("", "", []byte(""))
	f.Add(" x", " t", []byte(" d\r\n\re\n"))
	f.Add("a:b", "message", []byte("\n"))
	f.Add("a\nb", "t", []byte("x"))
	f.Add("a\x00", "t", []byte("x"))
	f.Add("a", "t\r", []byte("x"))
	f.Add("\xff", "t", []byte("x"))
	f.Add("a", "t", []byte("\xed\xa0\x80"))
	f.Add("\uFEFF", "\uFEFF", []byte("\uFEFF"))
	f.Fuzz(func(t *testing.T, id, typ string, data []byte) {
		prefix := []byte("prefix")
		b, err := AppendEvent(prefix, Event{ID: id, Type: typ, Data: data})
		var wantErr error
		switch {
		case strings.ContainsAny(id, "\r\n\x00") || !utf8.ValidString(id):
			wantErr = ErrInvalidID
		case strings.ContainsAny(typ, "\r\n") || !utf8.ValidString(typ):
			wantErr = ErrInvalidType
		case !utf8.Valid(data):
			wantErr = ErrInvalidData
		}
		if err != wantErr {
			t.Fatalf("AppendEvent(%q, %q, %q) error = %v, want %v", id, typ, data, err, wantErr)
		}
		if err != nil {
			if !bytes.Equal(b, prefix) {
				t.Fatalf("AppendEvent changed dst on error: %q", b)
			}
			return
		}
		if !bytes.HasPrefix(b, prefix) {
			t.Fatalf("AppendEvent lost dst: %q", b)
		}
		b = b[len(prefix):]
		want := Event{ID: id, Type: typ, Data: normalizeLineBreaks(data)}

		for name, r := range map[string]io.Reader{
			"whole":    bytes.NewReader(b),
			"one byte": iotest.OneByteReader(bytes.NewReader(b)),
		} {
			got := fuzzDecodeAll(t, NewDecoder(r))
			if g, w := formatEvents(got), formatEvents([]Event{want}); g != w {
				t.Fatalf("%s: decoded %q as\n%s\nwant:\n%s", name, b, g, w)
			}
		}

		// Two events, a comment and a retry in one stream: the second
		// event has no id, so it inherits the first one's.
		stream := append([]byte(nil), b...)
		stream = AppendComment(stream, string(data))
		stream = AppendRetry(stream, len(data))
		stream, err = AppendEvent(stream, Event{Type: typ, Data: data})
		if err != nil {
			t.Fatalf("AppendEvent without id: %v", err)
		}
		wantComments := strings.Split(string(normalizeLineBreaks(data)), "\n")
		for name, r := range map[string]io.Reader{
			"whole":    bytes.NewReader(stream),
			"one byte": iotest.OneByteReader(bytes.NewReader(stream)),
		} {
			var comments []string
			d := NewDecoder(r)
			d.OnComment = func(s string) { comments = append(comments, s) }
			got := fuzzDecodeAll(t, d)
			if g, w := formatEvents(got), formatEvents([]Event{want, want}); g != w {
				t.Fatalf("%s: decoded %q as\n%s\nwant:\n%s", name, stream, g, w)
			}
			if g, w := fmt.Sprintf("%q", comments), fmt.Sprintf("%q", wantComments); g != w {
				t.Fatalf("%s: comments = %s, want %s", name, g, w)
			}
			if got, ok := d.Retry(); !ok || got != time.Duration(len(data))*time.Millisecond {
				t.Fatalf("%s: Retry() = %v, %v, want %dms", name, got, ok, len(data))
			}
			if got, want := d.LastEventID(), id; got != want {
				t.Fatalf("%s: LastEventID() = %q, want %q", name, got, want)
			}
		}
	})
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		"data: test\n\n",
		"data\n\ndata\ndata\n\ndata:",
		": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n",
		"\xEF\xBB\xBFid: 1\r\nevent: x\r\ndata: a\r\rretry: 100\n\n",
		"data: \xff\xe2\x82\xed\xa0\x80\xf0\x9f\x98\n\n",
		"id: a\x00\nretry: 99999999999999999999999\n\n",
		"\r\n\r\n\n\r",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		want := referenceDecode(input)
		for name, r := range map[string]io.Reader{
			"whole":    bytes.NewReader(input),
			"one byte": iotest.OneByteReader(bytes.NewReader(input)),
			"half":     iotest.HalfReader(bytes.NewReader(input)),
		} {
			var comments []string
			d := NewDecoder(r)
			d.OnComment = func(s string) { comments = append(comments, s) }
			got := fuzzDecodeAll(t, d)

			total := 0
			for _, ev := range got {
				total += len(ev.Data)
			}
			// Replacing an invalid byte with U+FFFD may triple it.
			if limit := 3 * len(input); total > limit || utf8.Valid(input) && total > len(input) {
				t.Fatalf("%s: %d bytes of data from %d bytes of input", name, total, len(input))
			}
			if g, w := formatEvents(got), formatEvents(want.events); g != w {
				t.Fatalf("%s: decoded %q as\n%s\nreference:\n%s", name, input, g, w)
			}
			if g, w := fmt.Sprintf("%q", comments), fmt.Sprintf("%q", want.comments); g != w {
				t.Fatalf("%s: comments = %s, reference %s", name, g, w)
			}
			if got, want := d.LastEventID(), want.lastID; got != want {
				t.Fatalf("%s: LastEventID() = %q, reference %q", name, got, want)
			}
			retry, ok := d.Retry()
			if ok != want.retrySet || ok && retry != want.retry {
				t.Fatalf("%s: Retry() = %v, %v, reference %v, %v", name, retry, ok, want.retry, want.retrySet)
			}
		}

		// A small limit must give ErrTooLong or the same events, and stop.
		d := NewDecoder(bytes.NewReader(input))
		d.MaxEventBytes = 8
		for n := 0; ; n++ {
			_, err := d.Next()
			if errors.Is(err, io.EOF) || errors.Is(err, ErrTooLong) {
				break
			}
			if err != nil {
				t.Fatalf("small limit: Next: %v", err)
			}
			if n > len(input) {
				t.Fatalf("small limit: more events than bytes of input")
			}
		}
	})
}

// fuzzDecodeAll is decodeAll with a bound on the number of events, so a
// decoder that stops consuming input fails instead of looping.
func fuzzDecodeAll(t *testing.T, d *Decoder) []Event {
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
		if len(evs) > 1<<20 {
			t.Fatalf("too many events")
		}
	}
}

// normalizeLineBreaks turns every CRLF and CR in b into LF.
func normalizeLineBreaks(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	return bytes.ReplaceAll(b, []byte("\r"), []byte("\n"))
}

type referenceResult struct {
	events   []Event
	comments []string
	lastID   string
	retry    time.Duration
	retrySet bool
}

// referenceDecode is a direct, unoptimised transcription of the WHATWG
// algorithms (UTF-8 decode, then "interpreting an event stream"), run on the
// whole input at once, to check the Decoder against.
func referenceDecode(input []byte) referenceResult {
	text := whatwgUTF8Decode(input)
	var lines []string
	var line []rune
	for i := 0; i < len(text); i++ {
		switch c := text[i]; c {
		case '\r':
			if i+1 < len(text) && text[i+1] == '\n' {
				i++
			}
			fallthrough
		case '\n':
			lines = append(lines, string(line))
			line = line[:0]
		default:
			line = append(line, c)
		}
	}
	// A last line without a line ending is never processed.

	var res referenceResult
	var data, typ, idBuf string
	for _, l := range lines {
		if l == "" {
			res.lastID = idBuf
			if data == "" {
				typ = ""
				continue
			}
			data = strings.TrimSuffix(data, "\n")
			res.events = append(res.events, Event{ID: idBuf, Type: typ, Data: []byte(data)})
			data, typ = "", ""
			continue
		}
		if l[0] == ':' {
			res.comments = append(res.comments, strings.TrimPrefix(l[1:], " "))
			continue
		}
		name, value, found := strings.Cut(l, ":")
		if found {
			value = strings.TrimPrefix(value, " ")
		}
		switch name {
		case "event":
			typ = value
		case "data":
			data += value + "\n"
		case "id":
			if !strings.Contains(value, "\x00") {
				idBuf = value
			}
		case "retry":
			if value != "" && strings.Trim(value, "0123456789") == "" {
				var ms int64
				saturated := false
				for _, c := range value {
					if !saturated {
						ms = ms*10 + int64(c-'0')
						saturated = ms > (1<<63-1)/int64(time.Millisecond)
					}
				}
				res.retry, res.retrySet = time.Duration(ms)*time.Millisecond, true
				if saturated {
					res.retry = 1<<63 - 1
				}
			}
		}
	}
	return res
}

// whatwgUTF8Decode is the WHATWG Encoding standard's "UTF-8 decode": strip
// one leading BOM, then run the UTF-8 decoder with replacement, state
// machine as written in the standard.
func whatwgUTF8Decode(b []byte) []rune {
	b = bytes.TrimPrefix(b, []byte("\xEF\xBB\xBF"))
	var out []rune
	var cp rune
	needed, seen := 0, 0
	lower, upper := byte(0x80), byte(0xBF)
	for i := 0; i < len(b); i++ {
		c := b[i]
		if needed == 0 {
			switch {
			case c <= 0x7F:
				out = append(out, rune(c))
			case 0xC2 <= c && c <= 0xDF:
				needed, cp = 1, rune(c&0x1F)
			case 0xE0 <= c && c <= 0xEF:
				if c == 0xE0 {
					lower = 0xA0
				}
				if c == 0xED {
					upper = 0x9F
				}
				needed, cp = 2, rune(c&0xF)
			case 0xF0 <= c && c <= 0xF4:
				if c == 0xF0 {
					lower = 0x90
				}
				if c == 0xF4 {
					upper = 0x8F
				}
				needed, cp = 3, rune(c&0x7)
			default:
				out = append(out, utf8.RuneError)
			}
			continue
		}
		if c < lower || c > upper {
			cp, needed, seen = 0, 0, 0
			lower, upper = 0x80, 0xBF
			out = append(out, utf8.RuneError)
			i-- // prepend c to the stream
			continue
		}
		lower, upper = 0x80, 0xBF
		cp = cp<<6 | rune(c&0x3F)
		seen++
		if seen == needed {
			out = append(out, cp)
			cp, needed, seen = 0, 0, 0
		}
	}
	if needed != 0 {
		out = append(out, utf8.RuneError)
	}
	return out
}
