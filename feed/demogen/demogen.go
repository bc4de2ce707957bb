package demogen

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"
)

// The feeds the generator publishes to: the first token of every subject.
const (
	PricesFeed = "prices"
	ScoresFeed = "scores"
)

// Message is one message to publish.
type Message struct {
	// Subject is below the caller's subject prefix: "<feed>.<key>", e.g.
	// "prices.AAPL" or "scores.nba.bos-lal".
	Subject string
	// Body is a JSON object ([Price] or [Score]); nil deletes the key.
	Body []byte
}

// priceShare is the share of updates that go to prices; the rest go to games.
const priceShare = 0.65

// Generator holds the simulated market and scoreboard.
type Generator struct {
	rng    *rand.Rand
	stocks []*stock
	games  []*game // one per slot of gameSlots
	// last is the time of the last Initial or Step, every the average
	// time between Steps (0 until two are seen): the pace that turns a
	// scheduled game's remaining updates into a start time.
	last  time.Time
	every time.Duration
}

// New returns a generator seeded with seed (any value, 0 included). Games
// start in different states: each is advanced silently a random number of
// updates.
func New(seed uint64) *Generator {
	g := &Generator{rng: rand.New(rand.NewPCG(seed, seed^0x6d61727175656521))}
	for _, s := range demoStocks {
		g.stocks = append(g.stocks, &s) // s is a copy per iteration: the table stays as it is
	}
	for _, lg := range gameSlots {
		gm := g.newGame(lg)
		for range g.rng.IntN(60) {
			g.advance(gm)
			if gm.status == StatusFinal {
				break
			}
		}
		g.games = append(g.games, gm)
	}
	return g
}

// Initial returns one message per key, the full current state, stamped
// with now. It does not advance the simulation.
func (g *Generator) Initial(now time.Time) []Message {
	ts := timestamp(now)
	msgs := make([]Message, 0, len(g.stocks)+len(g.games))
	for _, s := range g.stocks {
		msgs = append(msgs, s.message(ts))
	}
	g.last = now
	for _, gm := range g.games {
		msgs = append(msgs, g.gameMessage(gm, now, ts))
	}
	return msgs
}

// stepsPerGameUpdate is how many Steps a given game waits, on average,
// for its next update.
var stepsPerGameUpdate = float64(len(gameSlots)) / (1 - priceShare)

// gameMessage is gm's message at now; a scheduled game's start time is
// fixed the first time: its remaining updates at the pace seen so far
// (now itself, before the pace is known).
func (g *Generator) gameMessage(gm *game, now time.Time, ts string) Message {
	if gm.status == StatusScheduled && gm.start.IsZero() {
		left := float64(scheduledTicks-gm.ticks) * stepsPerGameUpdate
		gm.start = now.Add(time.Duration(left * float64(g.every))).Truncate(time.Second)
	}
	return gm.message(ts, gm.start)
}

// Step advances the simulation by one update and returns its messages,
// stamped with now: one, or two when a finished game leaves the board (its
// delete, then the new game in its place).
func (g *Generator) Step(now time.Time) []Message {
	ts := timestamp(now)
	if d := now.Sub(g.last); !g.last.IsZero() && d > 0 {
		if g.every == 0 {
			g.every = d
		} else {
			g.every += (d - g.every) / 8
		}
	}
	g.last = now
	if g.rng.Float64() < priceShare {
		s := g.stocks[g.rng.IntN(len(g.stocks))]
		g.walk(s)
		return []Message{s.message(ts)}
	}
	i := g.rng.IntN(len(g.games))
	gm := g.games[i]
	if gm.status == StatusFinal && gm.ticks >= finalTicks {
		next := g.newGame(gm.league) // while gm is still on the board: a new key
		g.games[i] = next
		return []Message{{Subject: gm.subject()}, g.gameMessage(next, now, ts)}
	}
	g.advance(gm)
	return []Message{g.gameMessage(gm, now, ts)}
}

func timestamp(now time.Time) string { return now.UTC().Format(time.RFC3339Nano) }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("demogen: marshal %T: %v", v, err)) // plain structs of strings and numbers
	}
	return b
}
