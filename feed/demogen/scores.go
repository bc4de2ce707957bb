package demogen

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Score is the body of a "scores.<league>.<away>-<home>" message.
type Score struct {
	League    string `json:"league"`     // display name, e.g. "NBA"
	Home      string `json:"home"`       // team code, e.g. "BOS"
	HomeName  string `json:"home_name"`  // e.g. "Boston"
	Away      string `json:"away"`       // team code
	AwayName  string `json:"away_name"`  // team name
	HomeScore int    `json:"home_score"` // never goes down
	AwayScore int    `json:"away_score"` // never goes down
	Period    string `json:"period"`     // "" before the start; "Q1", "P2", "1H", "OT", "2OT", "SO"
	Clock     string `json:"clock"`      // "mm:ss": left in the period, or elapsed match time (football)
	Status    string `json:"status"`     // StatusScheduled, StatusLive or StatusFinal, in this order
	// StartTime is when a scheduled game is expected to start (RFC 3339,
	// UTC, whole seconds); only on scheduled games. Fixed when the game is
	// first published, from the pace of the updates so far: the game goes
	// live about then.
	StartTime string `json:"start_time,omitempty"`
	Time      string `json:"time"` // RFC 3339 with nanoseconds, UTC
}

// The values of Score.Status.
const (
	StatusScheduled = "scheduled"
	StatusLive      = "live"
	StatusFinal     = "final"
)

const (
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
	ticks      int       // updates spent in the current status (scheduled, final)
	start      time.Time // a scheduled game's start time, once published
}

// newGame schedules a game between two teams of lg that are not on the
// board in lg already, so that keys stay unique.
func (g *Generator) newGame(lg *league) *game {
	busy := map[string]bool{}
	for _, gm := range g.games {
		if gm.league == lg {
			busy[gm.home.code], busy[gm.away.code] = true, true
		}
	}
	var free []team
	for _, t := range lg.teams {
		if !busy[t.code] {
			free = append(free, t)
		}
	}
	i := g.rng.IntN(len(free))
	j := g.rng.IntN(len(free) - 1)
	if j >= i {
		j++
	}
	return &game{league: lg, home: free[i], away: free[j], status: StatusScheduled}
}

// advance moves gm on by one update.
func (g *Generator) advance(gm *game) {
	lg := gm.league
	switch gm.status {
	case StatusScheduled:
		gm.ticks++
		if gm.ticks >= scheduledTicks {
			gm.status, gm.ticks, gm.period = StatusLive, 0, 1
			gm.clock = lg.periodLen
			if lg.countUp {
				gm.clock = 0
			}
		}
		return
	case StatusFinal:
		gm.ticks++
		return
	}
	gm.homeScore += lg.score(g.rng)
	gm.awayScore += lg.score(g.rng)
	step := lg.stepMin + g.rng.IntN(lg.stepMax-lg.stepMin+1)
	if lg.countUp {
		end := gm.period * lg.periodLen
		if gm.clock+step < end {
			gm.clock += step
			return
		}
		gm.clock = end
	} else {
		if gm.clock > step {
			gm.clock -= step
			return
		}
		gm.clock = 0
	}
	g.endPeriod(gm)
}

// endPeriod starts the next period, overtime, or ends the game.
func (g *Generator) endPeriod(gm *game) {
	lg := gm.league
	tied := gm.homeScore == gm.awayScore
	switch {
	case gm.period < lg.periods:
		gm.period++
		if !lg.countUp {
			gm.clock = lg.periodLen
		}
		return
	case tied && lg.otLen > 0 && gm.period < lg.periods+lg.maxOT:
		gm.period++
		gm.clock = lg.otLen
		return
	case tied && lg.shootout:
		gm.period++ // "SO"
		if g.rng.IntN(2) == 0 {
			gm.homeScore++
		} else {
			gm.awayScore++
		}
	}
	gm.status, gm.ticks = StatusFinal, 0
}

// subject is "scores.<league>.<away>-<home>".
func (gm *game) subject() string {
	return ScoresFeed + "." + gm.league.code + "." +
		strings.ToLower(gm.away.code) + "-" + strings.ToLower(gm.home.code)
}

// message is gm's message stamped ts; start is its start time, when it
// is scheduled.
func (gm *game) message(ts string, start time.Time) Message {
	lg := gm.league
	period := ""
	if gm.period > 0 {
		period = lg.periodName(gm.period)
	}
	clock := gm.clock
	if gm.status == StatusScheduled && !lg.countUp {
		clock = lg.periodLen
	}
	body := Score{
		League:    lg.name,
		Home:      gm.home.code,
		HomeName:  gm.home.name,
		Away:      gm.away.code,
		AwayName:  gm.away.name,
		HomeScore: gm.homeScore,
		AwayScore: gm.awayScore,
		Period:    period,
		Clock:     fmt.Sprintf("%02d:%02d", clock/60, clock%60),
		Status:    gm.status,
		Time:      ts,
	}
	if gm.status == StatusScheduled {
		body.StartTime = start.UTC().Format(time.RFC3339)
	}
	return Message{Subject: gm.subject(), Body: mustJSON(body)}
}
