package sse

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Event is one Server-Sent Event.
type Event struct {
	// ID is the event id. The encoder writes it as an "id:" line when it is
	// not empty. The decoder sets it to the last-event-ID buffer at dispatch
	// time, which persists across events until another "id" field changes it.
	ID string

	// Type is the "event" field. Empty means the default type, "message";
	// the decoder returns "" when the event had no event field.
	Type string

	// Data is the payload. The encoder writes one "data:" line per line of
	// Data (split on LF, CR and CRLF); the decoder joins data lines with LF.
	Data []byte
}

// AppendEvent appends ev encoded as "id: ...\nevent: ...\ndata: ...\n\n" to
// dst: the id line when ev.ID is not empty, the event line when ev.Type is
// not empty, one data line per line of ev.Data (at least one, so an event
// with empty Data is still dispatched, with data ""), then a blank line.
//
// It returns dst unchanged and ErrInvalidID, ErrInvalidType or ErrInvalidData
// when ev cannot be encoded so that a client decodes exactly ev back (up to
// line breaks in Data, which a client always receives as LF).
func AppendEvent(dst []byte, ev Event) ([]byte, error) {
	if strings.ContainsAny(ev.ID, "\r\n\x00") || !utf8.ValidString(ev.ID) {
		return dst, ErrInvalidID
	}
	if strings.ContainsAny(ev.Type, "\r\n") || !utf8.ValidString(ev.Type) {
		return dst, ErrInvalidType
	}
	if !utf8.Valid(ev.Data) {
		return dst, ErrInvalidData
	}
	// "id: " + "\n" + "event: " + "\n" + "data: " + "\n" + "\n"; more lines
	// of data grow dst as needed.
	dst = slices.Grow(dst, len(ev.ID)+len(ev.Type)+len(ev.Data)+5+8+7+1)
	if ev.ID != "" {
		dst = appendField(dst, "id", ev.ID)
	}
	if ev.Type != "" {
		dst = appendField(dst, "event", ev.Type)
	}
	dst = appendLines(dst, "data", ev.Data)
	return append(dst, '\n'), nil
}

// AppendComment appends text as comment lines, ": line\n" for each line of
// text (split on LF, CR and CRLF; an empty line is written as ":\n"),
// followed by a blank line. Empty text gives ":\n\n". Clients ignore
// comments; they keep idle connections and intermediaries alive.
func AppendComment(dst []byte, text string) []byte {
	for {
		i := strings.IndexAny(text, "\r\n")
		if i < 0 {
			dst = appendField(dst, "", text)
			return append(dst, '\n')
		}
		dst = appendField(dst, "", text[:i])
		if text[i] == '\r' && i+1 < len(text) && text[i+1] == '\n' {
			i++
		}
		text = text[i+1:]
	}
}

// AppendRetry appends "retry: <ms>\n\n", which sets a client's reconnection
// delay to ms milliseconds. A negative ms is written as 0.
func AppendRetry(dst []byte, ms int) []byte {
	dst = append(dst, "retry: "...)
	dst = strconv.AppendInt(dst, int64(max(ms, 0)), 10)
	return append(dst, '\n', '\n')
}

// appendField appends "name: value\n", or "name:\n" when value is empty.
// The space is written before a non-empty value so that a value starting
// with a space survives (the decoder strips one).
func appendField[T string | []byte](dst []byte, name string, value T) []byte {
	dst = append(dst, name...)
	if len(value) == 0 {
		return append(dst, ':', '\n')
	}
	dst = append(dst, ':', ' ')
	dst = append(dst, value...)
	return append(dst, '\n')
}

// appendLines appends one field line named name per line of value, which
// is split on LF, CR and CRLF. The positions of the next LF and the next CR
// are remembered, so the work is linear in len(value) whatever the mix of
// line breaks.
func appendLines(dst []byte, name string, value []byte) []byte {
	start, lf, cr := 0, -1, -1
	for {
		if lf < start {
			lf = indexFrom(value, start, '\n')
		}
		if cr < start {
			cr = indexFrom(value, start, '\r')
		}
		end := min(lf, cr)
		dst = appendField(dst, name, value[start:end])
		if end == len(value) {
			return dst
		}
		start = end + 1
		if end == cr && start < len(value) && value[start] == '\n' {
			start++
		}
	}
}

// indexFrom returns the index of the first c in b at or after from, or
// len(b) when there is none.
func indexFrom(b []byte, from int, c byte) int {
	if i := bytes.IndexByte(b[from:], c); i >= 0 {
		return from + i
	}
	return len(b)
}
