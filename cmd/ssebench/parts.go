package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"marquee/wire"
)

// parts is one parts-mode viewer, as marquee's client follows a feed behind
// an edge that buffers: it reads the descriptor (cached at an edge), asks
// for upto/{k} of the part in progress (the state so far, held until the
// part ends), then parts/{k+1}, {k+2}, … and after a segment's last part
// part 0 of the segment its next event names, one request outstanding,
// until ctx ends. It never asks for a part beyond the one after the part it
// has: an edge caches nothing but would hold a refusal for a while. After
// an error it waits a retry interval and joins again.
func (b *bench) parts(ctx context.Context) {
	h := http.Header{"Accept": {"text/event-stream"}}
	for ctx.Err() == nil {
		joined := time.Now()
		var d wire.Descriptor
		resp, err := b.get(ctx, "/v1/feeds/"+url.PathEscape(b.cfg.feed), http.Header{"Accept": {"application/json"}})
		if err == nil {
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("descriptor: status %d", resp.StatusCode)
			} else {
				err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&d)
			}
			resp.Body.Close()
		}
		if err == nil && (d.Parts != b.desc.Parts || d.Part < 0 || d.Part > d.Parts) {
			err = fmt.Errorf("descriptor: part %d of %d", d.Part, d.Parts)
		}
		if err != nil {
			if ctx.Err() == nil {
				b.fail("descriptor")
				b.retry(ctx)
			}
			continue
		}
		n, k, upto := d.Segment, d.Part, true
		if k >= d.Parts { // no part of this segment on that origin: join the next
			n, k = n+1, 0
		}
		var closeConn func()
		for ctx.Err() == nil {
			path := b.desc.PartPath(n, k)
			if upto {
				path = b.desc.UptoPath(n, k)
			}
			resp, err := b.get(ctx, path, h)
			if err != nil {
				if ctx.Err() == nil {
					b.fail("connect")
				}
				break
			}
			if resp.StatusCode != http.StatusOK {
				resp.Body.Close()
				b.fail("status " + strconv.Itoa(resp.StatusCode))
				break
			}
			first := upto
			next, err := b.read(resp.Body, joined, func(at time.Time) {
				if first {
					b.ttfb.add(at.Sub(joined))
				}
			})
			resp.Body.Close()
			if err != nil {
				if ctx.Err() == nil {
					b.fail("read: " + errKind(err))
				}
				break
			}
			if closeConn == nil {
				closeConn = b.open()
			}
			b.partsDone.Add(1)
			upto = false
			if k++; k < b.desc.Parts {
				continue
			}
			i := strings.LastIndexByte(next, '/')
			m, perr := strconv.ParseInt(next[i+1:], 10, 64)
			if next == "" || perr != nil || m != n+1 {
				b.fail("last part without next")
				break
			}
			b.segments.Add(1)
			n, k = m, 0
		}
		if closeConn != nil {
			closeConn()
		}
		if ctx.Err() == nil {
			b.retry(ctx)
		}
	}
}
