package main

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"
)

// stream is one stream-mode viewer: the current segment, then each next one,
// until ctx ends. After an error it waits a retry interval and rejoins the
// current segment.
func (b *bench) stream(ctx context.Context) {
	path := b.currentPath()
	first := true
	var ended time.Time // when the previous segment's body ended
	for ctx.Err() == nil {
		sent := time.Now()
		resp, err := b.get(ctx, path, http.Header{"Accept": {"text/event-stream"}, "Cache-Control": {"no-cache"}})
		if err != nil {
			if ctx.Err() == nil {
				b.fail("connect")
				b.retry(ctx)
				path = b.currentPath()
			}
			continue
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			b.fail("status " + strconv.Itoa(resp.StatusCode))
			b.retry(ctx)
			path, first = b.currentPath(), true
			continue
		}
		closeConn := b.open()
		next, err := b.read(resp.Body, sent, func(at time.Time) {
			if first {
				b.ttfb.add(at.Sub(sent))
				first = false
			} else if !ended.IsZero() {
				b.handover.add(at.Sub(ended))
			}
		})
		resp.Body.Close()
		closeConn()
		ended = time.Now()
		switch {
		case ctx.Err() != nil:
		case err != nil || next == "":
			if err == nil {
				err = errors.New("segment ended without next")
			}
			b.fail("read: " + errKind(err))
			b.retry(ctx)
			path, first, ended = b.currentPath(), true, time.Time{}
		default:
			b.segments.Add(1)
			path = next
		}
	}
}
