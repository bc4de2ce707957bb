package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"marquee/sse"
	"marquee/wire"
)

// read reads one segment body; it returns the next segment's URL.
func (b *bench) read(body io.Reader, sent time.Time, firstByte func(time.Time)) (string, error) {
	return b.decodeAll(b.decoder(body, firstByte), sent)
}

func (b *bench) decoder(body io.Reader, firstByte func(time.Time)) *sse.Decoder {
	dec := sse.NewDecoder(&countingReader{r: body, b: b, first: firstByte})
	dec.OnComment = func(string) { b.keepalives.Add(1) }
	return dec
}

// decodeAll decodes until the body ends; it returns the URL of a next
// event. Latency counts only updates published after the request was sent:
// a viewer joining a segment late first receives the updates it missed,
// which are catch-up, not delay.
func (b *bench) decodeAll(dec *sse.Decoder, sent time.Time) (next string, err error) {
	live := sent.Add(b.offset).UnixMilli()
	for {
		ev, err := dec.Next()
		if err == io.EOF {
			return next, nil
		}
		if err != nil {
			return next, err
		}
		b.events.Add(1)
		switch ev.Type {
		case wire.EventUpdate:
			if ms, ok := updateTime(ev.Data); ok {
				b.updates.Add(1)
				if ms >= live {
					b.latency.add(time.Since(time.UnixMilli(ms)) + b.offset)
				}
			}
		case wire.EventNext:
			var n wire.Next
			if json.Unmarshal(ev.Data, &n) == nil {
				next = n.URL
			}
		}
	}
}

// updateTime finds the top-level "time" of an update's data
// ({"key":...,"seq":...,"time":<ms>,"value":...}) without decoding the
// value; keys cannot contain quotes, so the first `,"time":` is it.
func updateTime(data []byte) (int64, bool) {
	i := bytes.Index(data, []byte(`,"time":`))
	if i < 0 {
		return 0, false
	}
	rest := data[i+len(`,"time":`):]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	ms, err := strconv.ParseInt(string(rest[:j]), 10, 64)
	return ms, err == nil
}

// countingReader counts body bytes and reports the first one.
type countingReader struct {
	r     io.Reader
	b     *bench
	first func(time.Time)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		if c.first != nil {
			c.first(time.Now())
			c.first = nil
		}
		c.b.bytes.Add(int64(n))
	}
	return n, err
}

func errKind(err error) string {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected EOF"
	case errors.Is(err, sse.ErrTooLong):
		return "event too long"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}
