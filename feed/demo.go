package feed

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// Demo publishes made-up prices and scores so that marquee shows something
// without a real feed:
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
	now func() time.Time

	running atomic.Bool
	limiter *logLimiter

	// Simulation state, touched only by the Run goroutine (or by a test
	// before Run).
	rng    *rand.Rand
	stocks []*stock
	games  []*game // one per slot
}

// demoMsg is one message to publish: a nil body deletes the key.
type demoMsg struct {
	subject string
	body    []byte
}

// priceShare is the share of updates that go to prices; the rest go to games.
const priceShare = 0.65

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
	d := &Demo{
		cfg:     cfg,
		nc:      nc,
		log:     orDiscard(log).With("component", "demo"),
		now:     time.Now,
		limiter: newLogLimiter(logEvery),
		rng:     rand.New(rand.NewPCG(seed, seed^0x6d61727175656521)),
	}
	for _, s := range demoStocks {
		st := *s
		d.stocks = append(d.stocks, &st)
	}
	for _, lg := range gameSlots {
		g := d.newGame(lg)
		// Warm up silently so that games start in different states.
		for range d.rng.IntN(60) {
			d.advance(g)
			if g.status == statusFinal {
				break
			}
		}
		d.games = append(d.games, g)
	}
	return d
}

// Run publishes every key once, then Rate updates per second in total,
// until ctx is done. Publish errors (e.g. the reconnect buffer is full) are
// logged at a limited rate and do not stop it.
func (d *Demo) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return fmt.Errorf("demo: %w", ErrAlreadyRunning)
	}
	d.log.Info("demo publisher started", "rate", d.cfg.Rate, "prefix", d.cfg.SubjectPrefix)
	for _, m := range d.initial() {
		d.publish(m)
	}
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
				for _, m := range d.step() {
					d.publish(m)
				}
			}
		}
	}
}

func (d *Demo) publish(m demoMsg) {
	if err := d.nc.Publish(m.subject, m.body); err != nil {
		if ok, suppressed := d.limiter.allow("publish"); ok {
			d.log.Warn("demo publish failed", "subject", m.subject, "err", err, "suppressed", suppressed)
		}
	}
}

// initial returns one message per key: the full state.
func (d *Demo) initial() []demoMsg {
	msgs := make([]demoMsg, 0, len(d.stocks)+len(d.games))
	for _, s := range d.stocks {
		msgs = append(msgs, d.priceMsg(s))
	}
	for _, g := range d.games {
		msgs = append(msgs, d.gameMsg(g))
	}
	return msgs
}

// step advances the simulation by one update and returns its messages: one,
// or two when a finished game is replaced (a delete and the new game).
func (d *Demo) step() []demoMsg {
	if d.rng.Float64() < priceShare {
		s := d.stocks[d.rng.IntN(len(d.stocks))]
		d.walk(s)
		return []demoMsg{d.priceMsg(s)}
	}
	i := d.rng.IntN(len(d.games))
	g := d.games[i]
	if g.status == statusFinal && g.ticks >= finalTicks {
		// Take the finished game off the board and schedule a new one.
		next := d.newGame(g.league)
		d.games[i] = next
		return []demoMsg{{subject: d.gameSubject(g)}, d.gameMsg(next)}
	}
	d.advance(g)
	return []demoMsg{d.gameMsg(g)}
}

func (d *Demo) timestamp() string { return d.now().UTC().Format(time.RFC3339Nano) }

// ---- prices

type stock struct {
	Symbol string
	Name   string
	Price  float64
	Open   float64
}

var demoStocks = []*stock{
	{"AAPL", "Apple", 189.20, 187.10},
	{"MSFT", "Microsoft", 415.50, 412.00},
	{"GOOGL", "Alphabet", 172.30, 171.00},
	{"AMZN", "Amazon", 185.60, 186.20},
	{"NVDA", "NVIDIA", 121.40, 118.90},
	{"META", "Meta Platforms", 505.10, 500.00},
	{"TSLA", "Tesla", 182.70, 185.00},
	{"JPM", "JPMorgan Chase", 198.40, 197.50},
	{"V", "Visa", 276.90, 275.30},
	{"JNJ", "Johnson & Johnson", 152.10, 152.60},
	{"WMT", "Walmart", 68.40, 68.10},
	{"PG", "Procter & Gamble", 166.20, 165.80},
	{"MA", "Mastercard", 455.70, 452.90},
	{"XOM", "Exxon Mobil", 112.80, 113.50},
	{"HD", "Home Depot", 345.20, 342.70},
	{"KO", "Coca-Cola", 62.90, 62.70},
	{"PEP", "PepsiCo", 171.30, 172.00},
	{"DIS", "Disney", 101.60, 100.90},
	{"NFLX", "Netflix", 640.20, 633.50},
	{"AMD", "AMD", 158.90, 155.40},
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }

// walk moves the price by a normal step of 0.15 % (a random walk).
func (d *Demo) walk(s *stock) {
	s.Price = max(round2(s.Price*(1+d.rng.NormFloat64()*0.0015)), 0.01)
}

type priceBody struct {
	Symbol    string  `json:"symbol"`
	Name      string  `json:"name"`
	Price     float64 `json:"price"`
	Open      float64 `json:"open"`
	Change    float64 `json:"change"`
	ChangePct float64 `json:"change_pct"`
	Time      string  `json:"time"`
}

func (d *Demo) priceMsg(s *stock) demoMsg {
	body := priceBody{
		Symbol:    s.Symbol,
		Name:      s.Name,
		Price:     s.Price,
		Open:      s.Open,
		Change:    round2(s.Price - s.Open),
		ChangePct: round2((s.Price - s.Open) / s.Open * 100),
		Time:      d.timestamp(),
	}
	return demoMsg{subject: d.cfg.SubjectPrefix + ".prices." + s.Symbol, body: mustJSON(body)}
}

// ---- scores

const (
	statusScheduled = "scheduled"
	statusLive      = "live"
	statusFinal     = "final"

	scheduledTicks = 3 // updates a scheduled game stays scheduled
	finalTicks     = 4 // updates a final game stays on the board
)

type team struct{ code, name string }

// league holds the rules that make a game look plausible.
type league struct {
	code      string // key token, lower case
	name      string // display, e.g. "NBA"
	periods   int    // regular periods
	periodLen int    // seconds per regular period
	otLen     int    // seconds of an overtime period, 0: no overtime (draws stand)
	maxOT     int    // overtime periods before a tie stands or a shootout decides
	shootout  bool   // a tie after overtime is decided by one extra goal
	countUp   bool   // the clock shows elapsed match time (football)
	stepMin   int    // game seconds per update, minimum
	stepMax   int    // game seconds per update, maximum
	score     func(r *rand.Rand) int
	teams     []team
}

func (l *league) periodName(p int) string {
	if p > l.periods {
		ot := p - l.periods
		switch {
		case l.shootout && ot > l.maxOT:
			return "SO"
		case ot == 1:
			return "OT"
		default:
			return fmt.Sprintf("%dOT", ot)
		}
	}
	switch l.code {
	case "nhl":
		return fmt.Sprintf("P%d", p)
	case "epl":
		return fmt.Sprintf("%dH", p)
	default:
		return fmt.Sprintf("Q%d", p)
	}
}

var (
	nba = &league{
		code: "nba", name: "NBA", periods: 4, periodLen: 12 * 60, otLen: 5 * 60, maxOT: 9,
		stepMin: 15, stepMax: 45,
		score: func(r *rand.Rand) int { // ~1.1 points per team per update
			if r.Float64() >= 0.5 {
				return 0
			}
			switch x := r.Float64(); {
			case x < 0.15:
				return 1
			case x < 0.75:
				return 2
			default:
				return 3
			}
		},
		teams: []team{{"LAL", "Los Angeles"}, {"BOS", "Boston"}, {"GSW", "Golden State"}, {"NYK", "New York"},
			{"MIA", "Miami"}, {"CHI", "Chicago"}, {"DEN", "Denver"}, {"PHX", "Phoenix"}, {"DAL", "Dallas"}, {"MIL", "Milwaukee"}},
	}
	nhl = &league{
		code: "nhl", name: "NHL", periods: 3, periodLen: 20 * 60, otLen: 5 * 60, maxOT: 1, shootout: true,
		stepMin: 30, stepMax: 90,
		score: func(r *rand.Rand) int { return b2i(r.Float64() < 0.05) },
		teams: []team{{"TOR", "Toronto"}, {"MTL", "Montreal"}, {"NYR", "New York"}, {"BOS", "Boston"},
			{"EDM", "Edmonton"}, {"VAN", "Vancouver"}, {"CHI", "Chicago"}, {"COL", "Colorado"}},
	}
	epl = &league{
		code: "epl", name: "EPL", periods: 2, periodLen: 45 * 60, countUp: true,
		stepMin: 60, stepMax: 120,
		score: func(r *rand.Rand) int { return b2i(r.Float64() < 0.025) },
		teams: []team{{"ARS", "Arsenal"}, {"CHE", "Chelsea"}, {"LIV", "Liverpool"}, {"MCI", "Manchester City"},
			{"MUN", "Manchester United"}, {"TOT", "Tottenham"}, {"NEW", "Newcastle"}, {"AVL", "Aston Villa"}},
	}
	nfl = &league{
		code: "nfl", name: "NFL", periods: 4, periodLen: 15 * 60, otLen: 10 * 60, maxOT: 1,
		stepMin: 20, stepMax: 50,
		score: func(r *rand.Rand) int {
			switch x := r.Float64(); {
			case x < 0.025:
				return 7
			case x < 0.045:
				return 3
			default:
				return 0
			}
		},
		teams: []team{{"KC", "Kansas City"}, {"SF", "San Francisco"}, {"DAL", "Dallas"}, {"PHI", "Philadelphia"},
			{"BUF", "Buffalo"}, {"MIA", "Miami"}, {"GB", "Green Bay"}, {"BAL", "Baltimore"}},
	}
	// gameSlots is the league of each of the 8 games on the board.
	gameSlots = []*league{nba, nba, nba, nhl, nhl, epl, epl, nfl}
)

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

type game struct {
	league     *league
	home, away team
	homeScore  int
	awayScore  int
	period     int // 0 before the start; > league.periods in overtime
	clock      int // seconds left in the period, or elapsed match seconds with countUp
	status     string
	ticks      int // updates spent in the current status (scheduled, final)
}

// newGame schedules a game between two teams of lg that are not on the
// board in lg already, so that keys stay unique.
func (d *Demo) newGame(lg *league) *game {
	busy := map[string]bool{}
	for _, g := range d.games {
		if g != nil && g.league == lg {
			busy[g.home.code], busy[g.away.code] = true, true
		}
	}
	var free []team
	for _, t := range lg.teams {
		if !busy[t.code] {
			free = append(free, t)
		}
	}
	i := d.rng.IntN(len(free))
	j := d.rng.IntN(len(free) - 1)
	if j >= i {
		j++
	}
	return &game{league: lg, home: free[i], away: free[j], status: statusScheduled}
}

// advance moves g on by one update.
func (d *Demo) advance(g *game) {
	lg := g.league
	switch g.status {
	case statusScheduled:
		g.ticks++
		if g.ticks >= scheduledTicks {
			g.status, g.ticks, g.period = statusLive, 0, 1
			g.clock = lg.periodLen
			if lg.countUp {
				g.clock = 0
			}
		}
		return
	case statusFinal:
		g.ticks++
		return
	}
	g.homeScore += lg.score(d.rng)
	g.awayScore += lg.score(d.rng)
	step := lg.stepMin + d.rng.IntN(lg.stepMax-lg.stepMin+1)
	if lg.countUp {
		end := g.period * lg.periodLen
		if g.clock+step < end {
			g.clock += step
			return
		}
		g.clock = end
	} else {
		if g.clock > step {
			g.clock -= step
			return
		}
		g.clock = 0
	}
	d.endPeriod(g)
}

// endPeriod starts the next period, overtime, or ends the game.
func (d *Demo) endPeriod(g *game) {
	lg := g.league
	tied := g.homeScore == g.awayScore
	switch {
	case g.period < lg.periods:
		g.period++
		if !lg.countUp {
			g.clock = lg.periodLen
		}
		return
	case tied && lg.otLen > 0 && g.period < lg.periods+lg.maxOT:
		g.period++
		g.clock = lg.otLen
		return
	case tied && lg.shootout:
		g.period++ // "SO"
		if d.rng.IntN(2) == 0 {
			g.homeScore++
		} else {
			g.awayScore++
		}
	}
	g.status, g.ticks = statusFinal, 0
}

type scoreBody struct {
	League    string `json:"league"`
	Home      string `json:"home"`
	HomeName  string `json:"home_name"`
	Away      string `json:"away"`
	AwayName  string `json:"away_name"`
	HomeScore int    `json:"home_score"`
	AwayScore int    `json:"away_score"`
	Period    string `json:"period"`
	Clock     string `json:"clock"`
	Status    string `json:"status"`
	Time      string `json:"time"`
}

func (d *Demo) gameSubject(g *game) string {
	return d.cfg.SubjectPrefix + ".scores." + g.league.code + "." +
		strings.ToLower(g.away.code) + "-" + strings.ToLower(g.home.code)
}

func (d *Demo) gameMsg(g *game) demoMsg {
	lg := g.league
	period := ""
	if g.period > 0 {
		period = lg.periodName(g.period)
	}
	clock := g.clock
	if g.status == statusScheduled && !lg.countUp {
		clock = lg.periodLen
	}
	body := scoreBody{
		League:    lg.name,
		Home:      g.home.code,
		HomeName:  g.home.name,
		Away:      g.away.code,
		AwayName:  g.away.name,
		HomeScore: g.homeScore,
		AwayScore: g.awayScore,
		Period:    period,
		Clock:     fmt.Sprintf("%02d:%02d", clock/60, clock%60),
		Status:    g.status,
		Time:      d.timestamp(),
	}
	return demoMsg{subject: d.gameSubject(g), body: mustJSON(body)}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("demo: marshal %T: %v", v, err)) // plain structs of strings and numbers
	}
	return b
}
