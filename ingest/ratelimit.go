package ingest

import (
	"math"
	"net"
	"net/netip"
	"sync"
	"time"
)

// maxSenders bounds the rate limiter's memory: at most this many senders
// have a bucket at once (a few dozen bytes each). A new sender while every
// slot holds a bucket that has not refilled is refused like a sender over
// its rate.
const maxSenders = 1 << 16

// limiter is a token bucket per sender: rate tokens a second up to burst,
// one per request. A bucket that has refilled to burst is the same as no
// bucket, so buckets idle for burst/rate are dropped by a sweep that runs
// at most once per that time. Safe for concurrent use.
type limiter struct {
	rate  float64 // tokens per second; 0: no limit
	burst float64
	full  time.Duration // time for an empty bucket to refill

	mu        sync.Mutex // guards the fields below
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	at     time.Time // when tokens was computed
}

func newLimiter(rate float64, burst int) *limiter {
	l := &limiter{rate: rate, burst: float64(burst), buckets: make(map[string]*bucket)}
	if rate > 0 {
		l.full = time.Duration(float64(burst) / rate * float64(time.Second))
	}
	return l
}

// allow takes a token of sender's bucket at now. When there is none it
// returns false and how long until there is one.
func (l *limiter) allow(sender string, now time.Time) (bool, time.Duration) {
	if l.rate <= 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	// A sweep is O(buckets): at most once per refill time, or ten times a
	// second while the table is full.
	if since := now.Sub(l.lastSweep); since >= l.full || (len(l.buckets) >= maxSenders && since >= time.Second/10) {
		l.sweepLocked(now)
	}
	b, ok := l.buckets[sender]
	if !ok {
		if len(l.buckets) >= maxSenders {
			return false, l.full
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[sender] = b
	}
	if dt := now.Sub(b.at); dt > 0 {
		b.tokens = math.Min(l.burst, b.tokens+dt.Seconds()*l.rate)
	}
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	return false, wait
}

// sweepLocked drops the buckets that have refilled by now.
func (l *limiter) sweepLocked(now time.Time) {
	l.lastSweep = now
	for k, b := range l.buckets {
		if now.Sub(b.at) >= l.full {
			delete(l.buckets, k)
		}
	}
}

// senders returns how many buckets are held (for tests).
func (l *limiter) senders() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// senderOf is the rate-limiting identity of a request's remote address:
// the IP address, an IPv6 address's /64 (one host usually holds a whole
// /64). Not a header: X-Forwarded-For and the like are the sender's to
// choose, and the ingest listener is never behind a proxy of ours.
func senderOf(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
