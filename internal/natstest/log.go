package natstest

import (
	"fmt"
	"sync"
	"testing"
)

// tbLog sends server log lines to tb.Log until stopped: servers log from
// their own goroutines, also a little after a test ended, when tb.Log
// would panic.
type tbLog struct {
	tb testing.TB
	on bool

	mu      sync.Mutex // guards stopped
	stopped bool
}

func newTBLog(tb testing.TB, on bool) *tbLog {
	return &tbLog{tb: tb, on: on && testing.Verbose()}
}

func (l *tbLog) logf(prefix, format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.tb.Log(prefix + fmt.Sprintf(format, v...))
	}
}

func (l *tbLog) stop() {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
}

func (l *tbLog) with(name string) serverLog { return serverLog{l, name} }

// serverLog is a server.Logger for one node.
type serverLog struct {
	l    *tbLog
	name string
}

func (s serverLog) Noticef(format string, v ...any) { s.l.logf(s.name+": ", format, v...) }
func (s serverLog) Warnf(format string, v ...any)   { s.l.logf(s.name+": WARN ", format, v...) }
func (s serverLog) Fatalf(format string, v ...any)  { s.l.logf(s.name+": FATAL ", format, v...) }
func (s serverLog) Errorf(format string, v ...any)  { s.l.logf(s.name+": ERROR ", format, v...) }
func (s serverLog) Debugf(format string, v ...any)  {}
func (s serverLog) Tracef(format string, v ...any)  {}
