package browser_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"marquee/feed/demogen"
	"marquee/internal/testenv"
)

// publisher publishes the demo's prices and scores (package feed/demogen)
// through JetStream at a steady rate and remembers the stream sequence of
// every message per feed, so that a test can check each one reached the
// page.
type publisher struct {
	t  *testing.T
	js jetstream.JetStream

	mu      sync.Mutex // guards the fields below
	seq     map[string][]uint64
	deletes int

	gen *demogen.Generator // touched only by the publishing goroutine (or before it starts)

	stop chan struct{}
	wg   sync.WaitGroup
}

// seed makes a finished game leave the board (a delete, then a new game)
// after 171 steps, 3.4 s at one step per 20 ms, and twice more within 500
// steps, so that the tests see deletes (seed 1, for one, deletes first
// after 738 steps).
const seed = 3

func newPublisher(t *testing.T, n *testenv.NATS) *publisher {
	t.Helper()
	js, err := jetstream.New(n.Pub)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return &publisher{t: t, js: js, seq: map[string][]uint64{}, gen: demogen.New(seed)}
}

// waitStream waits until the origin has created the JetStream stream.
func (p *publisher) waitStream() {
	p.t.Helper()
	testenv.Eventually(p.t, 20*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := p.js.Stream(ctx, "FEEDS")
		return err
	})
}

// publish publishes one message and records its sequence. An empty body
// deletes the key.
func (p *publisher) publish(feed, key string, body []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := p.js.Publish(ctx, "feeds."+feed+"."+key, body)
	if err != nil {
		return fmt.Errorf("publish %s.%s: %w", feed, key, err)
	}
	p.mu.Lock()
	p.seq[feed] = append(p.seq[feed], ack.Sequence)
	if len(body) == 0 {
		p.deletes++
	}
	p.mu.Unlock()
	return nil
}

// publishAll publishes the generator's messages in order.
func (p *publisher) publishAll(msgs []demogen.Message) error {
	for _, m := range msgs {
		feed, key, _ := strings.Cut(m.Subject, ".")
		if err := p.publish(feed, key, m.Body); err != nil {
			return err
		}
	}
	return nil
}

// initial publishes every key once.
func (p *publisher) initial() {
	p.t.Helper()
	if err := p.publishAll(p.gen.Initial(time.Now())); err != nil {
		p.t.Fatal(err)
	}
}

// start publishes one step of the generator (one update, or a finished
// game's delete and its replacement) every interval until halt.
func (p *publisher) start(interval time.Duration) {
	p.stop = make(chan struct{})
	p.wg.Go(func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-p.stop:
				return
			case now := <-tick.C:
				if err := p.publishAll(p.gen.Step(now)); err != nil {
					p.t.Errorf("publisher: %v", err)
					return
				}
			}
		}
	})
}

// halt stops publishing and waits for the goroutine.
func (p *publisher) halt() {
	if p.stop != nil {
		close(p.stop)
		p.wg.Wait()
		p.stop = nil
		p.mu.Lock()
		p.t.Logf("publisher: %d prices and %d scores published, %d of them deletes", len(p.seq["prices"]), len(p.seq["scores"]), p.deletes)
		p.mu.Unlock()
	}
}

// published returns the sequences published to feed, in order.
func (p *publisher) published(feed string) []uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.seq[feed])
}
