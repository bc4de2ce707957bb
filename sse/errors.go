package sse

import "errors"

var (
	// ErrInvalidID is returned by AppendEvent when the event id contains
	// CR, LF or NUL, or is not valid UTF-8.
	ErrInvalidID = errors.New("sse: invalid event id (contains CR, LF, NUL or invalid UTF-8)")

	// ErrInvalidType is returned by AppendEvent when the event type contains
	// CR or LF, or is not valid UTF-8.
	ErrInvalidType = errors.New("sse: invalid event type (contains CR, LF or invalid UTF-8)")

	// ErrInvalidData is returned by AppendEvent when the data is not valid
	// UTF-8: a client would decode it with replacement characters, that is,
	// as different data.
	ErrInvalidData = errors.New("sse: invalid event data (not valid UTF-8)")

	// ErrTooLong is returned by Decoder.Next when a line, or the data of one
	// event, is longer than the decoder's limit (Decoder.MaxEventBytes).
	ErrTooLong = errors.New("sse: line or event data too long")
)
