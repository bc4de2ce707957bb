// Package leakcheck fails a test binary whose goroutines outlive its
// tests, as goleak.VerifyTestMain does, but gives goroutines that are
// already ending time to end: an embedded nats-server stops some of its
// background goroutines (the file store's state flusher, the access-time
// service) asynchronously after Shutdown returns, and on a loaded machine
// that took longer than goleak's own retries (about half a second; seen
// once in some fifty full runs with two at once). A goroutine still there
// after Grace is a leak. Test support; imports goleak only.
package leakcheck

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Grace is how long Main waits for goroutines to end after the tests.
const Grace = 10 * time.Second

// Main runs the tests and exits: with their code, or 1 when they passed but
// goroutines outlived them by more than Grace. Use it as TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := find(Grace); err != nil {
			fmt.Fprintf(os.Stderr, "leakcheck: goroutines outlived the tests by more than %s:\n%v\n", Grace, err)
			code = 1
		}
	}
	os.Exit(code)
}

// find returns goleak's report if goroutines other than the caller's are
// still running after grace, else nil as soon as there are none.
func find(grace time.Duration, opts ...goleak.Option) error {
	deadline := time.Now().Add(grace)
	for {
		err := goleak.Find(opts...)
		if err == nil || !time.Now().Before(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
