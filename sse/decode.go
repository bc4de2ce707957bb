package sse

import (
	"bytes"
	"io"
	"math"
	"time"
	"unicode/utf8"
)

const (
	// DefaultMaxEventBytes is the decoder's limit when MaxEventBytes is 0.
	DefaultMaxEventBytes = 1 << 20

	initialBufSize = 4096
	// keepDataCap is the largest data buffer a Decoder keeps between events;
	// a larger one, left by an unusually big event, is dropped.
	keepDataCap = 64 << 10
)

var bom = []byte("\xEF\xBB\xBF")

// Decoder reads events from a text/event-stream, following the WHATWG HTML
// standard's rules for interpreting an event stream. Create one with
// NewDecoder; set the exported fields before the first call to Next.
type Decoder struct {
	// OnComment, if set, is called with the text of each comment line
	// (without the leading ':' and one optional space after it), in stream
	// order, before any later event is returned. It runs inside Next.
	OnComment func(text string)

	// MaxEventBytes bounds the length of a single line and of the data of
	// one event (the data lines joined with LF). 0 means
	// DefaultMaxEventBytes (1 MiB). Exceeding it makes Next return
	// ErrTooLong, and every later call too.
	MaxEventBytes int

	r io.Reader

	// Read buffer: buf[start:end] is read but not yet consumed.
	buf        []byte
	start, end int
	// No LF is in buf[start:lf] and no CR in buf[start:cr]; both only move
	// forward, so each byte is scanned at most once for each.
	lf, cr int
	// skipLF is set after a line ended in CR: an LF that follows belongs to
	// the same line ending, even if it arrives in a later read.
	skipLF  bool
	bomDone bool
	readErr error // sticky error from r, returned once buffered lines are used up
	fatal   error // sticky ErrTooLong

	// The buffers of the WHATWG algorithm.
	data     []byte // data buffer
	typ      string // event type buffer
	idBuf    string // last event ID buffer
	lastID   string // the event source's last event ID string
	typCache string // last event type seen, to reuse its string
	retry    time.Duration
	retrySet bool

	utf8Buf []byte // scratch for lines with invalid UTF-8
}

// NewDecoder returns a Decoder that reads from r. The Decoder buffers its
// reads, so it may read more from r than the events it has returned.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{r: r}
}

// Next returns the next dispatched event. At the end of the input it returns
// io.EOF; an event that was not ended by a blank line before the end is not
// dispatched, as the standard requires. Other read errors are returned as
// they are. Errors are sticky: once Next has returned an error, later calls
// return the same error.
func (d *Decoder) Next() (Event, error) {
	if d.fatal != nil {
		return Event{}, d.fatal
	}
	limit := d.limit()
	for {
		line, err := d.readLine(limit)
		if err == nil {
			err = d.processLine(line, limit)
		}
		if err != nil {
			// Any pending event is discarded.
			d.data, d.typ = d.data[:0], ""
			if err == ErrTooLong {
				d.fatal = err
			}
			return Event{}, err
		}
		if len(line) > 0 {
			continue
		}
		// A blank line: dispatch the event.
		d.lastID = d.idBuf
		if len(d.data) == 0 {
			d.typ = ""
			continue
		}
		ev := Event{
			ID:   d.idBuf,
			Type: d.typ,
			Data: bytes.Clone(d.data[:len(d.data)-1]), // strip the trailing LF
		}
		d.data, d.typ = d.data[:0], ""
		if cap(d.data) > keepDataCap {
			d.data = nil
		}
		return ev, nil
	}
}

// Retry returns the last valid reconnection time the stream set with a
// "retry" field (ASCII digits only, in milliseconds), and whether there was
// one. A value too large for a time.Duration is saturated.
func (d *Decoder) Retry() (time.Duration, bool) {
	return d.retry, d.retrySet
}

// LastEventID returns the stream's last event ID string: the last-event-ID
// buffer as it was at the most recent blank line. This is what a browser
// sends as Last-Event-ID when it reconnects; an id field in an event cut off
// by the end of the stream does not count.
func (d *Decoder) LastEventID() string {
	return d.lastID
}

func (d *Decoder) limit() int {
	if d.MaxEventBytes > 0 {
		return d.MaxEventBytes
	}
	return DefaultMaxEventBytes
}

// processLine interprets one line (without its line ending). A blank line
// is left to the caller.
func (d *Decoder) processLine(line []byte, limit int) error {
	if len(line) == 0 {
		return nil
	}
	if !utf8.Valid(line) {
		d.utf8Buf = appendReplacingInvalid(d.utf8Buf[:0], line)
		line = d.utf8Buf
	}
	if line[0] == ':' {
		if d.OnComment != nil {
			text := line[1:]
			if len(text) > 0 && text[0] == ' ' {
				text = text[1:]
			}
			d.OnComment(string(text))
		}
		return nil
	}
	name, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(name) {
	case "event":
		if string(value) != d.typCache {
			d.typCache = string(value)
		}
		d.typ = d.typCache
	case "data":
		if len(d.data)+len(value)+1 > limit {
			return ErrTooLong
		}
		d.data = append(d.data, value...)
		d.data = append(d.data, '\n')
	case "id":
		if bytes.IndexByte(value, 0) < 0 && string(value) != d.idBuf {
			d.idBuf = string(value)
		}
	case "retry":
		if ms, ok := parseRetry(value); ok {
			d.retry, d.retrySet = ms, true
		}
	}
	return nil
}

// parseRetry parses a retry value, ASCII digits only, as milliseconds.
func parseRetry(v []byte) (time.Duration, bool) {
	if len(v) == 0 {
		return 0, false
	}
	const maxMs = math.MaxInt64 / int64(time.Millisecond)
	var ms int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		if ms <= maxMs {
			ms = ms*10 + int64(c-'0')
		}
	}
	if ms > maxMs {
		return math.MaxInt64, true
	}
	return time.Duration(ms) * time.Millisecond, true
}

// readLine returns the next line without its line ending. The line aliases
// the read buffer and is valid until the next call.
func (d *Decoder) readLine(limit int) ([]byte, error) {
	for {
		if !d.bomDone {
			b := d.buf[d.start:d.end]
			if len(b) < len(bom) && d.readErr == nil && bytes.HasPrefix(bom, b) {
				d.fill(limit)
				continue
			}
			if bytes.HasPrefix(b, bom) {
				d.start += len(bom)
			}
			d.bomDone = true
		}
		if d.skipLF && d.start < d.end {
			if d.buf[d.start] == '\n' {
				d.start++
			}
			d.skipLF = false
		}
		if !d.skipLF {
			if i := d.indexEOL(); i < d.end {
				line := d.buf[d.start:i]
				d.skipLF = d.buf[i] == '\r'
				d.start = i + 1
				if len(line) > limit {
					return nil, ErrTooLong
				}
				return line, nil
			}
			if d.end-d.start > limit {
				return nil, ErrTooLong
			}
		}
		if d.readErr != nil {
			return nil, d.readErr
		}
		d.fill(limit)
	}
}

// indexEOL returns the index in buf of the first CR or LF in
// buf[start:end], or end when there is none.
func (d *Decoder) indexEOL() int {
	d.lf = max(d.lf, d.start)
	if d.lf < d.end && d.buf[d.lf] != '\n' {
		if i := bytes.IndexByte(d.buf[d.lf:d.end], '\n'); i >= 0 {
			d.lf += i
		} else {
			d.lf = d.end
		}
	}
	// Look for a CR only before the LF.
	d.cr = min(max(d.cr, d.start), d.lf)
	if d.cr < d.lf && d.buf[d.cr] != '\r' {
		if i := bytes.IndexByte(d.buf[d.cr:d.lf], '\r'); i >= 0 {
			d.cr += i
		} else {
			d.cr = d.lf
		}
	}
	return d.cr
}

// fill reads more input into the buffer, moving unconsumed bytes to its
// front and growing it (up to limit+1 bytes, room for one longest line and
// its ending) when it is full.
func (d *Decoder) fill(limit int) {
	if d.buf == nil {
		d.buf = make([]byte, initialBufSize)
	}
	if d.start > 0 {
		n := copy(d.buf, d.buf[d.start:d.end])
		d.lf = max(d.lf-d.start, 0)
		d.cr = max(d.cr-d.start, 0)
		d.start, d.end = 0, n
	}
	if d.end == len(d.buf) {
		size := max(min(2*len(d.buf), limit+1), len(d.buf)+1)
		nb := make([]byte, size)
		copy(nb, d.buf[:d.end])
		d.buf = nb
	}
	for range 100 {
		n, err := d.r.Read(d.buf[d.end:])
		if n < 0 || n > len(d.buf)-d.end {
			d.readErr = io.ErrShortBuffer
			return
		}
		d.end += n
		if err != nil {
			d.readErr = err
			return
		}
		if n > 0 {
			return
		}
	}
	d.readErr = io.ErrNoProgress
}

// appendReplacingInvalid appends b to dst with each maximal ill-formed
// subsequence replaced by U+FFFD, as the WHATWG Encoding standard's UTF-8
// decoder does. (strings.ToValidUTF8 replaces a whole run of invalid bytes
// with one U+FFFD, and utf8.DecodeRune consumes one byte per error; neither
// matches a browser.)
func appendReplacingInvalid(dst, b []byte) []byte {
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r != utf8.RuneError || size > 1 {
			dst = append(dst, b[:size]...)
			b = b[size:]
			continue
		}
		dst = append(dst, "\uFFFD"...)
		b = b[invalidPrefixLen(b):]
	}
	return dst
}

// invalidPrefixLen returns the length of the maximal ill-formed subsequence
// at the start of b, which does not begin with a valid UTF-8 sequence: the
// lead byte and the continuation bytes that are valid after it (at least 1).
func invalidPrefixLen(b []byte) int {
	var need int
	lo, hi := byte(0x80), byte(0xBF)
	switch c := b[0]; {
	case 0xC2 <= c && c <= 0xDF:
		need = 1
	case 0xE0 <= c && c <= 0xEF:
		need = 2
		if c == 0xE0 {
			lo = 0xA0
		} else if c == 0xED {
			hi = 0x9F
		}
	case 0xF0 <= c && c <= 0xF4:
		need = 3
		if c == 0xF0 {
			lo = 0x90
		} else if c == 0xF4 {
			hi = 0x8F
		}
	default:
		return 1
	}
	n := 1
	for n <= need && n < len(b) && lo <= b[n] && b[n] <= hi {
		lo, hi = 0x80, 0xBF
		n++
	}
	return n
}
