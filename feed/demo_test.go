package feed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func fixedDemo(seed uint64) *Demo {
	d := NewDemo(DemoConfig{Rate: 5, Seed: seed, SubjectPrefix: "feeds"}, nil, nil)
	d.now = func() time.Time { return time.Date(2025, 1, 2, 15, 4, 5, 0, time.UTC) }
	return d
}

func demoRun(d *Demo, steps int) []demoMsg {
	msgs := d.initial()
	for range steps {
		msgs = append(msgs, d.step()...)
	}
	return msgs
}

func TestDemoDeterministic(t *testing.T) {
	a, b := demoRun(fixedDemo(42), 2000), demoRun(fixedDemo(42), 2000)
	if len(a) != len(b) {
		t.Fatalf("same seed gave %d and %d messages", len(a), len(b))
	}
	for i := range a {
		if a[i].subject != b[i].subject || !bytes.Equal(a[i].body, b[i].body) {
			t.Fatalf("message %d differs: %s %s vs %s %s", i, a[i].subject, a[i].body, b[i].subject, b[i].body)
		}
	}
	c := demoRun(fixedDemo(43), 2000)
	same := len(a) == len(c)
	for i := 0; same && i < len(a); i++ {
		same = a[i].subject == c[i].subject && bytes.Equal(a[i].body, c[i].body)
	}
	if same {
		t.Fatal("different seeds gave the same messages")
	}
}

type scoreState struct {
	scoreBody
	deleted bool
}

func TestDemoMessages(t *testing.T) {
	d := fixedDemo(7)
	lim := DefaultConfig().Limits()
	initial := d.initial()
	if got, want := len(initial), 20+8; got != want {
		t.Fatalf("initial publishes %d keys, want %d", got, want)
	}
	keyRE := regexp.MustCompile(`^(nba|nhl|epl|nfl)\.[a-z]+-[a-z]+$`)
	clockRE := regexp.MustCompile(`^\d\d:\d\d$`)
	state := map[string]int{} // feed/key -> 1 while present
	games := map[string]*scoreState{}
	var sawFinal, sawDelete, sawLive, sawScheduled, sawOT bool
	check := func(m demoMsg) {
		t.Helper()
		feed, u, reason := Parse(m.subject, m.body, lim)
		if reason != ReasonNone {
			t.Fatalf("Parse(%s, %s) = %s", m.subject, m.body, reason)
		}
		id := feed + "/" + u.Key
		if u.Value == nil {
			if feed != "scores" || state[id] == 0 {
				t.Fatalf("unexpected delete of %s", id)
			}
			if g := games[u.Key]; g.Status != statusFinal {
				t.Fatalf("game %s deleted while %s", u.Key, g.Status)
			}
			delete(state, id)
			games[u.Key].deleted = true
			sawDelete = true
			return
		}
		state[id] = 1
		switch feed {
		case "prices":
			var p priceBody
			if err := json.Unmarshal(u.Value, &p); err != nil {
				t.Fatal(err)
			}
			if p.Symbol != u.Key || p.Name == "" || p.Price <= 0 || p.Open <= 0 || p.Time == "" {
				t.Fatalf("bad price %s", u.Value)
			}
			if diff := p.Price - p.Open - p.Change; diff > 0.011 || diff < -0.011 {
				t.Fatalf("change %v does not match price %v - open %v", p.Change, p.Price, p.Open)
			}
		case "scores":
			if !keyRE.MatchString(u.Key) {
				t.Fatalf("bad game key %q", u.Key)
			}
			var g scoreBody
			dec := json.NewDecoder(bytes.NewReader(u.Value))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&g); err != nil {
				t.Fatalf("%s: %v", u.Value, err)
			}
			if want := strings.ToLower(g.Away) + "-" + strings.ToLower(g.Home); !strings.HasSuffix(u.Key, want) {
				t.Fatalf("key %s does not match teams %s", u.Key, u.Value)
			}
			if !clockRE.MatchString(g.Clock) || g.HomeName == "" || g.AwayName == "" || g.Time == "" {
				t.Fatalf("bad game %s", u.Value)
			}
			prev := games[u.Key]
			if prev != nil && !prev.deleted {
				if g.HomeScore < prev.HomeScore || g.AwayScore < prev.AwayScore {
					t.Fatalf("score went down: %+v -> %s", prev.scoreBody, u.Value)
				}
				order := map[string]int{statusScheduled: 0, statusLive: 1, statusFinal: 2}
				if order[g.Status] < order[prev.Status] {
					t.Fatalf("status went back: %s -> %s", prev.Status, g.Status)
				}
			}
			switch g.Status {
			case statusScheduled:
				sawScheduled = true
				if g.HomeScore+g.AwayScore != 0 || g.Period != "" {
					t.Fatalf("scheduled game under way: %s", u.Value)
				}
			case statusLive:
				sawLive = true
				if g.Period == "" {
					t.Fatalf("live game without period: %s", u.Value)
				}
			case statusFinal:
				sawFinal = true
			default:
				t.Fatalf("bad status %s", u.Value)
			}
			if strings.Contains(g.Period, "OT") || g.Period == "SO" {
				sawOT = true
			}
			games[u.Key] = &scoreState{scoreBody: g}
		default:
			t.Fatalf("unexpected feed %q", feed)
		}
	}
	for _, m := range initial {
		check(m)
	}
	for range 30000 {
		for _, m := range d.step() {
			check(m)
		}
		if len(state) != 28 {
			t.Fatalf("board has %d keys, want 28 (20 prices, 8 games)", len(state))
		}
	}
	if !sawFinal || !sawDelete || !sawLive || !sawScheduled {
		t.Errorf("lifecycle not covered: final=%v delete=%v live=%v scheduled=%v", sawFinal, sawDelete, sawLive, sawScheduled)
	}
	t.Logf("overtime seen: %v", sawOT)
}

func TestDemoRunPublishes(t *testing.T) {
	srv := startServer(t, t.TempDir(), -1)
	cfg := testConfig(srv.ClientURL())
	sink := newFakeSink()
	m, _ := newTestMetrics(t)
	src, err := NewSource(cfg, connect(t, cfg, m), sink, testLogger(t), m)
	if err != nil {
		t.Fatal(err)
	}
	run(t, src)
	waitFor(t, "loaded", func() bool { return src.Status().Loaded })

	d := NewDemo(DemoConfig{Rate: 200, Seed: 1, SubjectPrefix: "feeds"}, connect(t, cfg, nil), testLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	waitFor(t, "full board", func() bool { return sink.count("prices") == 20 && sink.count("scores") == 8 })
	waitFor(t, "updates", func() bool { return len(sink.applied()) > 100 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, r := range Reasons() {
		if r == ReasonDuplicate {
			continue
		}
		if v := testutil.ToFloat64(m.rejected[r]); v != 0 {
			t.Errorf("demo message rejected: %s = %v", r, v)
		}
	}
	if err := d.Run(context.Background()); !errors.Is(err, ErrAlreadyRunning) {
		t.Errorf("second Run = %v", err)
	}
}

func TestNewDemoDefaults(t *testing.T) {
	d := NewDemo(DemoConfig{Rate: -1}, nil, nil)
	if d.cfg.Rate != 5 || d.cfg.SubjectPrefix != "feeds" {
		t.Fatalf("defaults not applied: %+v", d.cfg)
	}
	if len(d.stocks) != 20 || len(d.games) != 8 {
		t.Fatalf("%d stocks, %d games", len(d.stocks), len(d.games))
	}
}
