package feed

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"marquee/feed/demogen"
)

// Demo publishes made-up prices and scores so that marquee shows something
// without a real feed: the messages of a [demogen.Generator] under
// "<prefix>.", i.e.
//
//   - "<prefix>.prices.<SYMBOL>": 20 stocks on a random walk, e.g.
//     {"symbol":"AAPL","name":"Apple","price":189.23,"open":187.1,"change":2.13,"change_pct":1.14,"time":"..."}
//   - "<prefix>.scores.<league>.<away>-<home>": 8 games in the NBA, NHL, EPL
//     and NFL whose clocks run, periods advance and scores grow; a game that
//     went final is deleted (empty body) a little later and a new game is
//     scheduled in its place.
//
// It publishes with core NATS; a JetStream stream on "<prefix>.>" stores the
// messages anyway. Given a non-zero seed the sequence of subjects and bodies
// is the same on every run, except the "time" field.
type Demo struct {
	cfg DemoConfig
	nc  *nats.Conn
	log *slog.Logger
	now func() time.Time // stamps the messages

	running atomic.Bool
	limiter *logLimiter

	gen *demogen.Generator // touched only by the Run goroutine (or by a test before Run)
}

// NewDemo returns a demo publisher. cfg is used as given except that a Rate
// outside (0, MaxDemoRate] becomes the default 5 and an empty SubjectPrefix
// becomes "feeds". A nil log discards.
func NewDemo(cfg DemoConfig, nc *nats.Conn, log *slog.Logger) *Demo {
	if !(cfg.Rate > 0 && cfg.Rate <= MaxDemoRate) {
		cfg.Rate = DefaultDemoConfig().Rate
	}
	if cfg.SubjectPrefix == "" {
		cfg.SubjectPrefix = DefaultDemoConfig().SubjectPrefix
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	return &Demo{
		cfg:     cfg,
		nc:      nc,
		log:     orDiscard(log).With("component", "demo"),
		now:     time.Now,
		limiter: newLogLimiter(logEvery),
		gen:     demogen.New(seed),
	}
}

// Run publishes every key once, then Rate updates per second in total,
// until ctx is done. Publish errors (e.g. the reconnect buffer is full) are
// logged at a limited rate and do not stop it.
func (d *Demo) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return fmt.Errorf("demo: %w", ErrAlreadyRunning)
	}
	d.log.Info("demo publisher started", "rate", d.cfg.Rate, "prefix", d.cfg.SubjectPrefix)
	d.publish(d.gen.Initial(d.now()))
	interval := max(time.Duration(float64(time.Second)/d.cfg.Rate), 10*time.Millisecond)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	last := time.Now()
	owed := 0.0
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = d.nc.FlushWithContext(fctx)
			cancel()
			return nil
		case now := <-ticker.C:
			// Publish what is owed since the last tick, at most one
			// second's worth after a stall.
			owed = min(owed+now.Sub(last).Seconds()*d.cfg.Rate, d.cfg.Rate+1)
			last = now
			for ; owed >= 1; owed-- {
				d.publish(d.gen.Step(d.now()))
			}
		}
	}
}

func (d *Demo) publish(msgs []demogen.Message) {
	for _, m := range msgs {
		subject := d.cfg.SubjectPrefix + "." + m.Subject
		if err := d.nc.Publish(subject, m.Body); err != nil {
			if ok, suppressed := d.limiter.allow("publish"); ok {
				d.log.Warn("demo publish failed", "subject", subject, "err", err, "suppressed", suppressed)
			}
		}
	}
}
