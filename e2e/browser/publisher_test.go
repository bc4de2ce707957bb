package browser_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"marquee/internal/testenv"
)

// publisher publishes demo-shaped prices and scores through JetStream at a
// steady rate and remembers the stream sequence of every message per feed,
// so that a test can check each one reached the page.
type publisher struct {
	t  *testing.T
	js jetstream.JetStream

	mu  sync.Mutex // guards the fields below
	seq map[string][]uint64

	// Generator state, touched only by the publishing goroutine (or
	// before it starts).
	rng    *rand.Rand
	prices []*price
	games  []*game
	nextID int

	stop chan struct{}
	wg   sync.WaitGroup
}

type price struct {
	symbol, name string
	price, open  float64
}

type game struct {
	key, league                    string
	home, homeName, away, awayName string
	homeScore, awayScore           int
	period, clock, ticks           int
	status                         string
}

func newPublisher(t *testing.T, n *testenv.NATS) *publisher {
	t.Helper()
	js, err := jetstream.New(n.Pub)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	p := &publisher{t: t, js: js, seq: map[string][]uint64{}, rng: rand.New(rand.NewPCG(1, 2))}
	for _, s := range [][2]string{{"AAPL", "Apple"}, {"MSFT", "Microsoft"}, {"NVDA", "NVIDIA"}, {"AMZN", "Amazon"},
		{"GOOGL", "Alphabet"}, {"META", "Meta Platforms"}, {"TSLA", "Tesla"}, {"KO", "Coca-Cola"}} {
		v := 50 + p.rng.Float64()*400
		p.prices = append(p.prices, &price{symbol: s[0], name: s[1], price: round2(v), open: round2(v * (1 + p.rng.NormFloat64()*0.01))})
	}
	for range 4 {
		p.games = append(p.games, p.newGame())
	}
	return p
}

func round2(x float64) float64 { return float64(int64(x*100+0.5)) / 100 }

func (p *publisher) newGame() *game {
	games := [][4]string{{"LAL", "Los Angeles", "BOS", "Boston"}, {"GSW", "Golden State", "NYK", "New York"},
		{"MIA", "Miami", "CHI", "Chicago"}, {"DEN", "Denver", "PHX", "Phoenix"}, {"DAL", "Dallas", "MIL", "Milwaukee"}}
	g := games[p.nextID%len(games)]
	p.nextID++
	return &game{key: fmt.Sprintf("nba.%s-%s-%d", strings.ToLower(g[0]), strings.ToLower(g[2]), p.nextID), league: "NBA",
		away: g[0], awayName: g[1], home: g[2], homeName: g[3], status: "scheduled", clock: 720}
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
	p.mu.Unlock()
	return nil
}

func (p *publisher) priceBody(s *price) []byte {
	b, _ := json.Marshal(map[string]any{
		"symbol": s.symbol, "name": s.name, "price": s.price, "open": s.open,
		"change": round2(s.price - s.open), "change_pct": round2((s.price - s.open) / s.open * 100),
		"time": time.Now().UTC().Format(time.RFC3339Nano),
	})
	return b
}

func (p *publisher) gameBody(g *game) []byte {
	period := ""
	if g.period > 0 {
		period = fmt.Sprintf("Q%d", g.period)
	}
	b, _ := json.Marshal(map[string]any{
		"league": g.league, "home": g.home, "home_name": g.homeName, "away": g.away, "away_name": g.awayName,
		"home_score": g.homeScore, "away_score": g.awayScore, "period": period,
		"clock": fmt.Sprintf("%02d:%02d", g.clock/60, g.clock%60), "status": g.status,
		"time": time.Now().UTC().Format(time.RFC3339Nano),
	})
	return b
}

// initial publishes every key once.
func (p *publisher) initial() {
	p.t.Helper()
	for _, s := range p.prices {
		if err := p.publish("prices", s.symbol, p.priceBody(s)); err != nil {
			p.t.Fatal(err)
		}
	}
	for _, g := range p.games {
		if err := p.publish("scores", g.key, p.gameBody(g)); err != nil {
			p.t.Fatal(err)
		}
	}
}

// step publishes the next update: two prices for every game update; a
// game that went final is deleted and replaced by a new one.
func (p *publisher) step(i int) error {
	if i%3 != 2 {
		s := p.prices[p.rng.IntN(len(p.prices))]
		s.price = max(round2(s.price*(1+p.rng.NormFloat64()*0.002)), 0.01)
		return p.publish("prices", s.symbol, p.priceBody(s))
	}
	j := p.rng.IntN(len(p.games))
	g := p.games[j]
	switch g.status {
	case "final":
		if err := p.publish("scores", g.key, nil); err != nil {
			return err
		}
		g = p.newGame()
		p.games[j] = g
	case "scheduled":
		g.status, g.period = "live", 1
	default:
		g.homeScore += []int{0, 0, 2, 3}[p.rng.IntN(4)]
		g.awayScore += []int{0, 0, 1, 2}[p.rng.IntN(4)]
		if g.clock -= 90; g.clock <= 0 {
			g.period, g.clock = g.period+1, 720
			if g.period > 4 {
				g.status, g.period, g.clock = "final", 4, 0
			}
		}
	}
	return p.publish("scores", g.key, p.gameBody(g))
}

// start publishes one update every interval until halt.
func (p *publisher) start(interval time.Duration) {
	p.stop = make(chan struct{})
	p.wg.Go(func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			if err := p.step(i); err != nil {
				p.t.Errorf("publisher: %v", err)
				return
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
	}
}

// published returns the sequences published to feed, in order.
func (p *publisher) published(feed string) []uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.seq[feed])
}
