package feed

import (
	"sync"
	"time"
)

// logEvery is the shortest interval between two warnings with the same key.
const logEvery = 10 * time.Second

// logLimiter allows one log line per key per interval and counts the
// suppressed ones, so that a flood of bad messages costs a counter increment
// each, not a log line each (derp's limitedLogf). Safe for concurrent use.
type logLimiter struct {
	every time.Duration
	now   func() time.Time

	mu   sync.Mutex // guards keys
	keys map[string]*limitEntry
}

type limitEntry struct {
	last       time.Time
	suppressed int
}

func newLogLimiter(every time.Duration) *logLimiter {
	return &logLimiter{every: every, now: time.Now, keys: make(map[string]*limitEntry)}
}

// allow reports whether a line with key may be logged now and, if so, how
// many lines with key were suppressed since the last one. Keys are a small
// fixed set (reasons, error kinds); the map does not grow without bound.
func (l *logLimiter) allow(key string) (ok bool, suppressed int) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.keys[key]
	if e == nil {
		l.keys[key] = &limitEntry{last: now}
		return true, 0
	}
	if now.Sub(e.last) < l.every {
		e.suppressed++
		return false, 0
	}
	suppressed = e.suppressed
	e.last, e.suppressed = now, 0
	return true, suppressed
}
