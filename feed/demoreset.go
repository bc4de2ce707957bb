package feed

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"marquee/feed/demogen"
)

// ResetDemoScores removes the demo's games from the JetStream stream before
// the demo publisher starts. Games are drawn at random on every start, so
// without this a persisted store would keep the previous run's games "live"
// for ever next to the new ones. Prices need no reset: their keys are the
// same symbols every time. A missing stream is not an error.
func ResetDemoScores(ctx context.Context, nc *nats.Conn, cfg Config) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("demo reset: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	s, err := js.Stream(ctx, cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("demo reset: stream %s: %w", cfg.Stream, err)
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSubject(cfg.SubjectPrefix+"."+demogen.ScoresFeed+".>")); err != nil {
		return fmt.Errorf("demo reset: purge: %w", err)
	}
	return nil
}
