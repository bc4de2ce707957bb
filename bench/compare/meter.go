//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// meter holds n SSE subscribers on raw connections and records, for every
// data line carrying the publisher's "ts" (unix ns), the delay to its
// arrival. It is the same for every server: an HTTP/1.1 GET with
// Accept: text/event-stream, the response read with net/http's parser
// (chunked or not), lines scanned for `"ts":`.
type meter struct {
	addrs []netip.Addr
	next  atomic.Uint64

	ready     atomic.Int64 // subscribers that received their first bytes
	failed    atomic.Int64
	ended     atomic.Int64 // responses that ended while the run went on
	delivered atomic.Int64 // deliveries of messages published at or after from
	from      atomic.Int64 // unix ns: count messages from then on
	lat       histogram
	errMu     sync.Mutex
	firstErr  error
}

func (m *meter) fail(err error) {
	m.failed.Add(1)
	m.errMu.Lock()
	if m.firstErr == nil {
		m.firstErr = err
	}
	m.errMu.Unlock()
}

var tsKey = []byte(`"ts":`)

// subscribe runs one subscriber until ctx ends, following "next" events
// (stream mode) to the next URL. ready is called once, at its first body
// bytes.
func (m *meter) subscribe(ctx context.Context, base, path string, ready func()) {
	host := base[len("http://"):]
	src := m.addrs[m.next.Add(1)%uint64(len(m.addrs))]
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: src.AsSlice()}}
	first := true
	for ctx.Err() == nil && path != "" {
		conn, err := d.DialContext(ctx, "tcp", host)
		if err != nil {
			if ctx.Err() == nil {
				m.fail(err)
			}
			if first {
				ready()
			}
			return
		}
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		path = m.read(conn, host, path, func() {
			if first {
				first = false
				m.ready.Add(1)
				ready()
			}
		})
		stop()
		conn.Close()
		if ctx.Err() == nil {
			m.ended.Add(1)
		}
	}
	if first {
		ready()
	}
}

// read serves one response; it returns the URL of a next event, if any.
func (m *meter) read(conn net.Conn, host, path string, first func()) string {
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n", path, host)
	br := bufio.NewReaderSize(conn, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		m.fail(err)
		return ""
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		m.fail(fmt.Errorf("GET %s: %s", path, resp.Status))
		return ""
	}
	lines := bufio.NewReaderSize(resp.Body, 4096)
	var next string
	nextEvent := false
	for {
		line, err := lines.ReadSlice('\n')
		if len(line) > 0 {
			first()
		}
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			return next
		}
		switch {
		case bytes.HasPrefix(line, []byte("event: next")):
			nextEvent = true
		case bytes.HasPrefix(line, []byte("data: ")):
			if nextEvent {
				var n struct {
					URL string `json:"url"`
				}
				if json.Unmarshal(bytes.TrimSpace(line[len("data: "):]), &n) == nil {
					next = n.URL
				}
				nextEvent = false
				continue
			}
			i := bytes.Index(line, tsKey)
			if i < 0 {
				continue
			}
			j := i + len(tsKey)
			k := j
			for k < len(line) && line[k] >= '0' && line[k] <= '9' {
				k++
			}
			ts, err := strconv.ParseInt(string(line[j:k]), 10, 64)
			if err != nil || ts < m.from.Load() {
				continue
			}
			m.lat.add(time.Duration(time.Now().UnixNano() - ts))
			m.delivered.Add(1)
		case len(line) <= 2: // blank line: end of event
			nextEvent = false
		}
	}
}

// histogram is a lock-free log-bucketed histogram of durations from 10 µs
// to about 17 minutes, buckets 2 % wide.
type histogram struct {
	buckets [1000]atomic.Int64
	max     atomic.Int64
}

const (
	histMin    = 10 * time.Microsecond
	histGrowth = 1.02
)

func (h *histogram) add(d time.Duration) {
	i := 0
	if d > histMin {
		i = min(int(math.Log(float64(d)/float64(histMin))/math.Log(histGrowth))+1, len(h.buckets)-1)
	}
	h.buckets[i].Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			break
		}
	}
}

// quantile returns the upper bound of the bucket holding the q-quantile.
func (h *histogram) quantile(q float64) time.Duration {
	var total int64
	for i := range h.buckets {
		total += h.buckets[i].Load()
	}
	if total == 0 {
		return 0
	}
	rank := max(int64(math.Ceil(q*float64(total))), 1)
	var seen int64
	for i := range h.buckets {
		if seen += h.buckets[i].Load(); seen >= rank {
			upper := time.Duration(float64(histMin) * math.Pow(histGrowth, float64(i)))
			return min(upper, time.Duration(h.max.Load()))
		}
	}
	return time.Duration(h.max.Load())
}
