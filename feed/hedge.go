package feed

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// hedgeOpts shape hedged.
type hedgeOpts struct {
	every   time.Duration // a new call when no answer came for this long
	each    time.Duration // bounds each call
	overall time.Duration // bounds the whole
}

// apiHedge is how the source calls the JetStream API on the way to a
// consumer. JetStream drops a request that reaches it while the stream or
// the meta layer has no leader, so such a request would only time out; a
// copy sent every half second gets answered within half a second of the
// election instead. Each copy may take up to 4 s, so a slow cluster is
// served too; at most 8 are in flight.
var apiHedge = hedgeOpts{every: 500 * time.Millisecond, each: 4 * time.Second, overall: 10 * time.Second}

// hedged calls f, and again every o.every while no call has answered, until
// one succeeds, one fails for another reason than its own deadline or
// JetStream being temporarily unavailable (a definite answer), ctx is done
// or o.overall has passed. f must be idempotent, or its caller must undo
// the calls whose answer it did not use: the calls still in flight are
// cancelled when hedged returns, but may have reached the server. hedged
// waits for every call it started.
func hedged[T any](ctx context.Context, o hedgeOpts, f func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, o.overall)
	type result struct {
		v   T
		err error
	}
	// Calls start on the ticker, or when the last one in flight timed out
	// (at most once per o.each): this many at most, so no send blocks.
	maxCalls := int(o.overall/o.every) + int(o.overall/o.each) + 2
	results := make(chan result, maxCalls)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	calls, inFlight := 0, 0
	start := func() {
		if calls == maxCalls {
			return
		}
		calls++
		inFlight++
		wg.Go(func() {
			cctx, ccancel := context.WithTimeout(ctx, o.each)
			defer ccancel()
			v, err := f(cctx)
			results <- result{v, err}
		})
	}
	start()
	ticker := time.NewTicker(o.every)
	defer ticker.Stop()
	var zero T
	var lastErr error
	for {
		select {
		case r := <-results:
			inFlight--
			if r.err == nil {
				return r.v, nil
			}
			lastErr = r.err
			if !timedOut(r.err) || ctx.Err() != nil {
				return zero, r.err // a definite answer, or time is up
			}
			if inFlight == 0 {
				start()
			}
		case <-ticker.C:
			start()
		case <-ctx.Done():
			if lastErr == nil || ctx.Err() == context.Canceled {
				lastErr = ctx.Err()
			}
			return zero, lastErr
		}
	}
}

// timedOut reports whether err is a call's own deadline, or JetStream's
// answer that it is temporarily unavailable (503: the meta layer has no
// leader yet), rather than a definite answer.
func timedOut(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.As(err, &apiErr) && apiErr.Code == 503
}
