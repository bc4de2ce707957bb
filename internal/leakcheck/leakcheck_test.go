package leakcheck

import (
	"strings"
	"testing"
	"time"
)

// TestFind: a goroutine that ends within the grace is no leak, however
// much longer than goleak's own retries it takes; one that does not end is
// reported once the grace is over.
func TestFind(t *testing.T) {
	done := make(chan struct{})
	go func() {
		time.Sleep(1500 * time.Millisecond) // past goleak's ~0.5 s
		close(done)
	}()
	if err := find(5 * time.Second); err != nil {
		t.Fatalf("a goroutine that ended after 1.5 s reported: %v", err)
	}
	<-done

	stop := make(chan struct{})
	go leaker(stop)
	start := time.Now()
	err := find(300 * time.Millisecond)
	close(stop)
	if err == nil || !strings.Contains(err.Error(), "leaker") {
		t.Fatalf("a goroutine that does not end: %v, want it reported", err)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Errorf("reported after %s, before the grace", waited)
	}
	// leaker ends; Main's own check (this package uses the default
	// TestMain) is not involved.
	if err := find(5 * time.Second); err != nil {
		t.Fatalf("after stop: %v", err)
	}
}

func leaker(stop chan struct{}) { <-stop }
