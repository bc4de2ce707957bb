package ingest

import (
	"fmt"
	"testing"
	"time"
)

func TestLimiterBucket(t *testing.T) {
	l := newLimiter(2, 3) // 2/s, burst 3
	t0 := time.Unix(1_800_000_000, 0)
	for i := range 3 {
		if ok, _ := l.allow("a", t0); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	ok, wait := l.allow("a", t0)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("over the burst: %v, wait %s; want refused, 500ms", ok, wait)
	}
	if ok, _ := l.allow("b", t0); !ok {
		t.Fatal("another sender refused")
	}
	if ok, _ := l.allow("a", t0.Add(500*time.Millisecond)); !ok {
		t.Fatal("refused after one token refilled")
	}
	if ok, _ := l.allow("a", t0.Add(500*time.Millisecond)); ok {
		t.Fatal("allowed with no token")
	}
	if off := newLimiter(0, 1); !func() bool { ok, _ := off.allow("a", t0); return ok }() {
		t.Fatal("rate 0 limits")
	}
}

// TestLimiterBoundedMemory: buckets that refilled are dropped, and no more
// than maxSenders are held; a new sender beyond that is refused.
func TestLimiterBoundedMemory(t *testing.T) {
	l := newLimiter(10, 10) // refills in 1s
	t0 := time.Unix(1_800_000_000, 0)
	for i := range 1000 {
		l.allow(fmt.Sprint("s", i), t0)
	}
	if got := l.senders(); got != 1000 {
		t.Fatalf("%d senders held, want 1000", got)
	}
	l.allow("late", t0.Add(time.Second))
	if got := l.senders(); got != 1 {
		t.Fatalf("after a refill time, %d senders held, want 1", got)
	}
	t1 := t0.Add(time.Hour)
	for i := range maxSenders + 10 {
		l.allow(fmt.Sprint("f", i), t1)
	}
	if got := l.senders(); got != maxSenders {
		t.Fatalf("%d senders held, want the cap %d", got, maxSenders)
	}
	if ok, _ := l.allow("new", t1); ok {
		t.Fatal("a new sender beyond the cap was allowed")
	}
	if ok, _ := l.allow("new", t1.Add(time.Second)); !ok {
		t.Fatal("a new sender refused after the others refilled")
	}
}

func TestSenderOf(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:5000":                "192.0.2.1",
		"[::ffff:192.0.2.1]:5000":       "192.0.2.1",
		"[2001:db8:1:2:3:4:5:6]:5000":   "2001:db8:1:2::/64",
		"[2001:db8:1:2:ff::1%eth0]:443": "2001:db8:1:2::/64",
		"garbage":                       "garbage",
	} {
		if got := senderOf(in); got != want {
			t.Errorf("senderOf(%q) = %q, want %q", in, got, want)
		}
	}
}
