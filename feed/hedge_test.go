package feed

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

var testHedge = hedgeOpts{every: 500 * time.Millisecond, each: 4 * time.Second, overall: 10 * time.Second}

// hangUntil is a call that is not answered when it starts before t (like a
// request reaching JetStream while there is no leader) and answers at once
// after.
func hangUntil(t0 time.Time, d time.Duration, calls *atomic.Int32) func(context.Context) (int, error) {
	return func(ctx context.Context) (int, error) {
		n := calls.Add(1)
		if time.Since(t0) < d {
			<-ctx.Done()
			return 0, ctx.Err()
		}
		return int(n), nil
	}
}

func TestHedgedAnswersSoonAfterTheServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		start := time.Now()
		v, err := hedged(context.Background(), testHedge, hangUntil(start, 2200*time.Millisecond, &calls))
		took := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		// Calls at 0, 0.5, ..., 2.0 hang; the one at 2.5 s answers.
		if took != 2500*time.Millisecond || v != 6 {
			t.Fatalf("answered by call %d after %v, want call 6 after 2.5s", v, took)
		}
	})
}

func TestHedgedSlowServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		slow := func(ctx context.Context) (int, error) { // every call takes 3 s
			calls.Add(1)
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(3 * time.Second):
				return 1, nil
			}
		}
		start := time.Now()
		if _, err := hedged(context.Background(), testHedge, slow); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != 3*time.Second {
			t.Fatalf("took %v, want 3s (the first call's answer)", took)
		}
		// One every 500 ms until the first answer; the one due at 3 s
		// races with it.
		if n := calls.Load(); n != 6 && n != 7 {
			t.Fatalf("%d calls, want 6 or 7", n)
		}
	})
}

func TestHedgedDefiniteError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		_, err := hedged(context.Background(), testHedge, func(context.Context) (int, error) {
			calls.Add(1)
			return 0, errBoom
		})
		if !errors.Is(err, errBoom) || calls.Load() != 1 {
			t.Fatalf("err %v after %d calls, want boom after 1", err, calls.Load())
		}
	})
}

func TestHedgedGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		start := time.Now()
		_, err := hedged(context.Background(), testHedge, hangUntil(start, time.Hour, &calls))
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != testHedge.overall {
			t.Fatalf("err %v after %v, want deadline after %v", err, time.Since(start), testHedge.overall)
		}
		if n := calls.Load(); n > 21 {
			t.Fatalf("%d calls in %v", n, testHedge.overall)
		}
	})
}

func TestHedgedCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(1200*time.Millisecond, cancel) // a new leader was elected
		_, err := hedged(ctx, testHedge, hangUntil(time.Now(), time.Hour, &calls))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want canceled", err)
		}
		synctest.Wait() // every call returned (hedged waits for them)
	})
}

func TestHedgedTemporarilyUnavailable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		start := time.Now()
		v, err := hedged(context.Background(), testHedge, func(ctx context.Context) (int, error) {
			n := calls.Add(1)
			if time.Since(start) < 2*time.Second { // the meta layer elects a leader
				time.Sleep(time.Second)
				return 0, &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}
			}
			return int(n), nil
		})
		// Within one hedge interval of the meta layer answering.
		if took := time.Since(start); err != nil || took < 2*time.Second || took > 2*time.Second+testHedge.every {
			t.Fatalf("got %d, %v after %v; want an answer 2s..2.5s", v, err, took)
		}
	})
}
