package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// direct is one direct-mode viewer, resuming with Last-Event-ID after errors.
func (b *bench) direct(ctx context.Context) {
	path := "/v1/feeds/" + url.PathEscape(b.cfg.feed) + "/events"
	last := ""
	first := true
	for ctx.Err() == nil {
		h := http.Header{"Accept": {"text/event-stream"}, "Cache-Control": {"no-cache"}}
		if last != "" {
			h.Set("Last-Event-ID", last)
		}
		sent := time.Now()
		resp, err := b.get(ctx, path, h)
		if err != nil {
			if ctx.Err() == nil {
				b.fail("connect")
				b.retry(ctx)
			}
			continue
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			b.fail("status " + strconv.Itoa(resp.StatusCode))
			b.retry(ctx)
			continue
		}
		closeConn := b.open()
		dec := b.decoder(resp.Body, func(at time.Time) {
			if first {
				b.ttfb.add(at.Sub(sent))
				first = false
			}
		})
		_, err = b.decodeAll(dec, sent)
		last = dec.LastEventID()
		resp.Body.Close()
		closeConn()
		if ctx.Err() == nil {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			b.fail("read: " + errKind(err))
			b.retry(ctx)
		}
	}
}
