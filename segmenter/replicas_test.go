package segmenter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"marquee/wire"
)

// The tests in this file check that segments and parts are a function of
// the stream: hubs that read the same messages, each with its own arrival
// jitter below the lateness allowance and its own tick timing, write the
// same bytes.

// arrival is one message as a replica receives it: at local time at.
type arrival struct {
	at time.Time
	u  Update
}

// replica is a hub driven by a fake clock through a schedule of arrivals
// and ticks: loaded at loadAt, messages before that being its replay.
type replica struct {
	name   string
	h      *Hub
	clk    *fakeClock
	loadAt time.Time
}

// run feeds the arrivals in order and ticks at each tick time (both
// sorted), then ticks at until. Ticks before loadAt do nothing, as on a
// loading hub.
func (r *replica) run(t *testing.T, feed string, in []arrival, ticks []time.Time, until time.Time) {
	t.Helper()
	loaded := false
	load := func(at time.Time) {
		if !loaded && !at.Before(r.loadAt) {
			r.clk.Set(r.loadAt)
			r.h.Loaded()
			loaded = true
		}
	}
	i, j := 0, 0
	for i < len(in) || j < len(ticks) {
		if j == len(ticks) || (i < len(in) && !in[i].at.After(ticks[j])) {
			load(in[i].at)
			r.clk.Set(in[i].at)
			if err := r.h.Apply(feed, in[i].u); err != nil && err != ErrDuplicate {
				t.Fatalf("%s: apply %+v: %v", r.name, in[i].u, err)
			}
			i++
			continue
		}
		load(ticks[j])
		r.clk.Set(ticks[j])
		r.h.Tick(ticks[j])
		j++
	}
	load(until)
	r.clk.Set(until)
	r.h.Tick(until)
}

func newReplica(t *testing.T, name string, cfg Config, loadAt time.Time) *replica {
	t.Helper()
	clk := &fakeClock{t: time.Unix(900, 0)}
	h, err := New(cfg, clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &replica{name: name, h: h, clk: clk, loadAt: loadAt}
}

// stream returns a scripted stream over segments 100..104 (10 s segments of
// 1 s parts): bursts right at part and segment boundaries, an idle stretch
// long enough for keepalives, deletes (of absent keys too), redeliveries,
// and timestamps that step back a little (a leader change). It leaves
// [999.5 s, 1000.1 s] empty, so that a replica loaded at 1000.1 s opens
// segment 100 by rotation.
func stream() []Update {
	rng := rand.New(rand.NewPCG(1, 2))
	var us []Update
	seq := uint64(10)
	add := func(ts time.Time, key, value string) {
		seq++
		us = append(us, Update{Key: key, Value: val(value), Seq: seq, Time: ts})
	}
	at := func(ms int64) time.Time { return time.UnixMilli(ms) }
	for ms := int64(995_000); ms < 999_500; ms += 300 {
		add(at(ms), "k"+fmt.Sprint(ms%5), fmt.Sprintf(`{"v":%d}`, ms))
	}
	keys := []string{"a", "b", "c", "d", "e"}
	for ms := int64(1_000_150); ms < 1_045_000; {
		next := ms + 20 + rng.Int64N(400)
		if ms%1000 > 990 || ms%1000 < 10 { // around a boundary: dense
			next = ms + 1 + rng.Int64N(4)
		}
		switch {
		case ms < 1_005_002 && next >= 1_005_002: // just after a part boundary
			next = 1_005_002
		case ms >= 1_012_000 && ms < 1_019_400: // idle from 1012.5 s: keepalives
			add(at(1_012_500), "a", `{"idle":true}`)
			ms = 1_019_400
			continue
		}
		ms = next
		k := keys[rng.IntN(len(keys))]
		switch r := rng.IntN(20); {
		case r == 0:
			add(at(ms), "absent."+k, "") // delete of a key never set
		case r < 3:
			add(at(ms), k, "") // delete
		case r == 3 && len(us) > 0:
			us = append(us, us[len(us)-1]) // a redelivery
		case r == 4:
			add(at(ms-5), k, `{"back":true}`) // stamped a little earlier than the one before
		default:
			add(at(ms), k, fmt.Sprintf(`{"v":%d}`, ms))
		}
	}
	return us
}

// arrivals gives each message a delay in [0, maxJitter), keeping stream
// order (a later message never arrives before an earlier one).
func arrivals(t *testing.T, us []Update, seed uint64, maxJitter time.Duration) []arrival {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([]arrival, len(us))
	var last time.Time
	for i, u := range us {
		at := u.Time.Add(time.Duration(rng.Int64N(int64(maxJitter))))
		if at.Before(last) {
			at = last
		}
		last = at
		out[i] = arrival{at: at, u: u}
	}
	return out
}

func tickEvery(from, to time.Time, d time.Duration) []time.Time {
	var ts []time.Time
	for t := from; t.Before(to); t = t.Add(d) {
		ts = append(ts, t)
	}
	return ts
}

func randomTicks(from, to time.Time, seed uint64) []time.Time {
	rng := rand.New(rand.NewPCG(seed, 3))
	var ts []time.Time
	for t := from; t.Before(to); t = t.Add(time.Duration(rng.Int64N(int64(3 * time.Second)))) {
		ts = append(ts, t)
	}
	return ts
}

// replicaSetup is one replica of a replicas test: when it loads, the seed
// of its arrival jitter, its ticks.
type replicaSetup struct {
	name   string
	loadAt time.Time
	seed   uint64
	ticks  []time.Time
	jitter time.Duration // below the allowance; default L − 10 ms
}

// replicaSetups are the replicas of the replicas tests over stream() and
// its variants: two running before segment 100 (one ticked every 50 ms,
// one at random), one loaded just after segment 100 started and never
// ticked, and four loaded mid-segment at chosen points.
func replicaSetups(cfg Config, end time.Time) []replicaSetup {
	var setups []replicaSetup
	for i, s := range []replicaSetup{
		{name: "A every 50ms", loadAt: time.Unix(990, 0), ticks: tickEvery(time.Unix(990, 0), end, 50*time.Millisecond)},
		{name: "B random ticks", loadAt: time.Unix(990, 0), ticks: randomTicks(time.Unix(990, 0), end, 9)},
		{name: "C loaded at 1000.1s, no ticks", loadAt: time.Unix(1000, 100_000_000)},
		{name: "D loaded at 1003.7s", loadAt: time.Unix(1003, 700_000_000), ticks: tickEvery(time.Unix(990, 3), end, 333*time.Millisecond)},
		// Just after a part boundary: the replay holds updates stamped in
		// part 5 while now − L is still in part 4.
		{name: "E loaded at 1005.1s", loadAt: time.Unix(1005, 100_000_000), ticks: randomTicks(time.Unix(990, 0), end, 5), jitter: 50 * time.Millisecond},
		// In the idle stretch of segment 101, before and after the first
		// keepalive there: the keepalive clock is rebuilt from the stream.
		{name: "F loaded at 1014.0s", loadAt: time.Unix(1014, 0), ticks: tickEvery(time.Unix(990, 0), end, time.Second)},
		{name: "G loaded at 1016.6s", loadAt: time.Unix(1016, 600_000_000), ticks: tickEvery(time.Unix(990, 0), end, 70*time.Millisecond)},
	} {
		s.seed = uint64(i + 1)
		if s.jitter == 0 {
			s.jitter = cfg.PartLateness - 10*time.Millisecond
		}
		setups = append(setups, s)
	}
	return setups
}

// runReplicas runs one replica per setup over us (feed "f") until end.
func runReplicas(t *testing.T, cfg Config, us []Update, setups []replicaSetup, end time.Time) []*replica {
	t.Helper()
	var rs []*replica
	for _, s := range setups {
		in := arrivals(t, us, s.seed, s.jitter)
		for _, a := range in {
			if d := a.at.Sub(a.u.Time); d < 0 || d >= cfg.PartLateness {
				t.Fatalf("%s: seq %d arrives %v after its timestamp: not within the allowance", s.name, a.u.Seq, d)
			}
		}
		r := newReplica(t, s.name, cfg, s.loadAt)
		r.run(t, "f", in, s.ticks, end)
		rs = append(rs, r)
	}
	return rs
}

// compareReplicas checks segments from..to of every replica against the
// first's: byte-identical logs where opened by rotation, identical parts
// from FirstPart on, and the same state in every upto from there.
func compareReplicas(t *testing.T, cfg Config, rs []*replica, from, to int64) {
	t.Helper()
	ref, _ := rs[0].h.Feed("f")
	for _, r := range rs[1:] {
		f, _ := r.h.Feed("f")
		for n := from; n <= to; n++ {
			want, _ := ref.Segment(n)
			if n < r.h.Grid().Index(r.loadAt.Add(-cfg.PartLateness)) {
				continue // before this replica started
			}
			got, ok := f.Segment(n)
			if !ok || got.State() != Closed {
				t.Fatalf("%s: segment %d missing or open", r.name, n)
			}
			if got.FirstPart() == 0 && !bytes.Equal(got.Bytes(), want.Bytes()) {
				t.Errorf("%s: segment %d differs:\n%s", r.name, n, firstDiff(got.Bytes(), want.Bytes()))
			}
			if opened := r.h.Grid().Index(r.loadAt.Add(-cfg.PartLateness)); n == opened && r.loadAt.After(time.Unix(1001, 0)) && got.FirstPart() == 0 {
				t.Errorf("%s: loaded mid-segment but serves segment %d from part 0", r.name, n)
			}
			for k := got.FirstPart(); k < got.Parts(); k++ {
				p, ok1, _, _ := got.Part(k)
				q, ok2, _, _ := want.Part(k)
				if !ok1 || !ok2 || !bytes.Equal(p, q) {
					t.Errorf("%s: segment %d part %d differs (ready %v %v):\n%s", r.name, n, k, ok1, ok2, firstDiff(p, q))
				}
				// upto of a log opened mid-segment: other bytes, same state.
				p, _, _, _ = got.UpTo(k)
				q, _, _, _ = want.UpTo(k)
				if g, w := stateOf(t, p), stateOf(t, q); g != w {
					t.Errorf("%s: segment %d upto %d holds %s, want %s", r.name, n, k, g, w)
				}
			}
		}
	}
}

// TestReplicasWriteIdenticalBytes: four hubs read the same stream with
// different arrival jitter (below the allowance) and different tick
// timings, one of them driven by its messages alone. Hubs running before
// a segment starts write byte-identical logs and parts; a hub that loaded
// in the middle of segment 100 writes the same parts from its FirstPart on
// and the same bytes from segment 101 on.
func TestReplicasWriteIdenticalBytes(t *testing.T) {
	cfg := testConfig() // D 10 s, P 1 s, H 3 s, L 250 ms
	cfg.Retention = time.Hour
	end := time.Unix(1050, 500_000_000)
	rs := runReplicas(t, cfg, stream(), replicaSetups(cfg, end), end)

	ref, _ := rs[0].h.Feed("f")
	// The reference saw everything: check the stream exercised what it should.
	var updates, keepalives, deletes int
	for n := int64(100); n <= 104; n++ {
		l, ok := ref.Segment(n)
		if !ok || l.State() != Closed {
			t.Fatalf("reference: segment %d missing or open", n)
		}
		for _, ev := range decodeAll(t, l.Bytes()) {
			if ev.Type == "update" {
				updates++
				if bytes.Contains(ev.Data, []byte(`"value":null`)) {
					deletes++
				}
			}
		}
		keepalives += bytes.Count(l.Bytes(), keepaliveFrame)
	}
	if updates < 150 || keepalives < 2 || deletes < 10 {
		t.Fatalf("stream too tame: %d updates, %d deletes, %d keepalives", updates, deletes, keepalives)
	}

	compareReplicas(t, cfg, rs, 100, 104)
	for i, want := range map[int]struct {
		n     int64
		first int
	}{
		2: {100, 0}, // opened by rotation
		3: {100, 4}, // opened in part 3
		4: {100, 6}, // opened in part 5 (the replay reached it)
		5: {101, 4}, // opened in part 3, idle since 1012.5 s
		6: {101, 7}, // opened in part 6, after the keepalive of part 5

	} {
		f, _ := rs[i].h.Feed("f")
		if l, _ := f.Segment(want.n); l.FirstPart() != want.first {
			t.Errorf("%s: segment %d FirstPart %d, want %d", rs[i].name, want.n, l.FirstPart(), want.first)
		}
	}
	for _, n := range []int64{101} {
		l, _ := ref.Segment(n)
		for k := 5; k <= 8; k += 3 {
			if p, _, _, _ := l.Part(k); !bytes.Equal(p, keepaliveFrame) {
				t.Errorf("reference: segment %d part %d = %q, want a keepalive (idle stretch)", n, k, p)
			}
		}
	}
}

// stateOf applies a log's events as a client does and returns the state
// and sequence it ends with, as a string.
func stateOf(t *testing.T, b []byte) string {
	t.Helper()
	state := map[string]string{}
	var seq uint64
	for _, ev := range decodeAll(t, b) {
		switch ev.Type {
		case wire.EventSnapshot:
			var s wire.Snapshot
			if err := json.Unmarshal(ev.Data, &s); err != nil {
				t.Fatal(err)
			}
			state, seq = map[string]string{}, s.Seq
			for k, v := range s.Entries {
				state[k] = string(v)
			}
		case wire.EventUpdate:
			var u wire.Update
			if err := json.Unmarshal(ev.Data, &u); err != nil {
				t.Fatal(err)
			}
			if u.Seq <= seq {
				continue
			}
			seq = u.Seq
			if u.Deleted() {
				delete(state, u.Key)
			} else {
				state[u.Key] = string(u.Value)
			}
		}
	}
	keys := slices.Sorted(maps.Keys(state))
	var out []byte
	for _, k := range keys {
		out = fmt.Appendf(out, "%s=%s ", k, state[k])
	}
	return fmt.Sprintf("seq %d: %s", seq, out)
}

func firstDiff(a, b []byte) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	lo := max(i-120, 0)
	return fmt.Sprintf("at byte %d (lengths %d, %d):\n got …%q\nwant …%q", i, len(a), len(b), a[lo:min(i+120, len(a))], b[lo:min(i+120, len(b))])
}

// partOf returns the part of l whose bytes hold the update with seq, or -1.
func partOf(t *testing.T, l *Log, seq uint64) int {
	t.Helper()
	id := []byte(fmt.Sprintf("id: %d\nevent: update\n", seq))
	for k := 0; k < l.Parts(); k++ {
		if p, ready, _, _ := l.Part(k); ready && bytes.Contains(p, id) {
			return k
		}
	}
	return -1
}

// TestLateUpdateGoesIntoOpenPart: an update that arrives after its part
// closed is written into the part open at its arrival, the one holding
// max(arrival − L, the latest placement so far); an on-time replica holds
// it in the part of its timestamp.
func TestLateUpdateGoesIntoOpenPart(t *testing.T) {
	cfg := testConfig()
	hOn, clkOn, _, lOn := rotated(t, cfg, "f")
	hLate, clkLate, _, lLate := rotated(t, cfg, "f")
	apply := func(h *Hub, clk *fakeClock, at time.Time, u Update) {
		t.Helper()
		clk.Set(at)
		if err := h.Apply("f", u); err != nil {
			t.Fatal(err)
		}
	}
	ms := func(v int64) time.Time { return time.UnixMilli(v) }

	// Stamped in part 2; the late replica gets it at 3.4 s, after part 2's
	// allowance ran out (3.25 s) and no tick recorded that: Apply catches
	// up first. 3.4 s − L = 3.15 s: part 3.
	u1 := Update{Key: "a", Value: val(`{}`), Seq: 1, Time: ms(1_002_500)}
	apply(hOn, clkOn, ms(1_002_600), u1)
	apply(hLate, clkLate, ms(1_003_400), u1)

	// Stamped in part 3 but arriving after one stamped in part 4 closed
	// part 3 (a leader clock stepping back): on every replica, part 4.
	u2 := Update{Key: "b", Value: val(`{}`), Seq: 2, Time: ms(1_004_100)}
	u3 := Update{Key: "c", Value: val(`{}`), Seq: 3, Time: ms(1_003_950)}
	for _, r := range []struct {
		h   *Hub
		clk *fakeClock
	}{{hOn, clkOn}, {hLate, clkLate}} {
		apply(r.h, r.clk, ms(1_004_110), u2)
		apply(r.h, r.clk, ms(1_004_120), u3)
		r.clk.Set(time.Unix(1006, 0))
		r.h.Tick(r.clk.Now())
	}
	for _, tc := range []struct {
		l    *Log
		seq  uint64
		want int
	}{{lOn, 1, 2}, {lLate, 1, 3}, {lOn, 2, 4}, {lOn, 3, 4}, {lLate, 2, 4}, {lLate, 3, 4}} {
		if got := partOf(t, tc.l, tc.seq); got != tc.want {
			t.Errorf("seq %d in part %d, want %d", tc.seq, got, tc.want)
		}
	}
	// The late replica's part 3 holds what the other has in part 2: the
	// only parts that differ.
	for k := 0; k < 5; k++ {
		p, _, _, _ := lOn.Part(k)
		q, _, _, _ := lLate.Part(k)
		if differ := !bytes.Equal(p, q); differ != (k == 2 || k == 3) {
			t.Errorf("part %d differs: %v", k, differ)
		}
	}
}

// TestRotationWithLateUpdates: segment n+1 opens at its start plus the
// allowance, or as soon as an update stamped in it arrives; until then,
// updates stamped before its start still go into segment n's last part and
// into n+1's snapshot.
func TestRotationWithLateUpdates(t *testing.T) {
	cfg := testConfig()
	ms := func(v int64) time.Time { return time.UnixMilli(v) }
	t.Run("content rotates", func(t *testing.T) {
		h, clk, f, l := rotated(t, cfg, "f")
		clk.Set(ms(1_010_100))
		h.Apply("f", Update{Key: "a", Value: val(`{"x":1}`), Seq: 1, Time: ms(1_009_950)})
		h.Tick(clk.Now())
		if l.State() != Open || f.Current() != l {
			t.Fatalf("rotated within the allowance without an update stamped after the boundary")
		}
		if got := partOf(t, l, 1); got != -1 {
			t.Fatalf("part 9 finished early (seq 1 in part %d)", got)
		}
		clk.Set(ms(1_010_150))
		h.Apply("f", Update{Key: "b", Value: val(`{"x":2}`), Seq: 2, Time: ms(1_010_050)})
		if l.State() != Closed {
			t.Fatalf("an update stamped after the boundary did not rotate")
		}
		if got := partOf(t, l, 1); got != 9 {
			t.Errorf("seq 1 in part %d of segment 100, want its last part", got)
		}
		next := f.Current()
		evs := decodeAll(t, next.Bytes())
		if next.N != 101 || next.FirstPart() != 0 || evs[0].ID != "1" || evs[1].ID != "2" {
			t.Fatalf("segment %d first %d events %+v", next.N, next.FirstPart(), evs)
		}
		// Stamped before the boundary but arriving after the rotation: the open part.
		clk.Set(ms(1_010_200))
		h.Apply("f", Update{Key: "c", Value: val(`{"x":3}`), Seq: 3, Time: ms(1_009_990)})
		clk.Set(ms(1_011_250))
		h.Tick(clk.Now())
		if got := partOf(t, next, 3); got != 0 {
			t.Errorf("seq 3 in part %d of segment 101, want 0", got)
		}
	})
	t.Run("allowance rotates", func(t *testing.T) {
		h, clk, f, l := rotated(t, cfg, "f")
		clk.Set(ms(1_010_249))
		h.Apply("f", Update{Key: "a", Value: val(`{}`), Seq: 1, Time: ms(1_009_999)})
		clk.Set(ms(1_010_300)) // no tick at 1010.25: Apply rotates first
		h.Apply("f", Update{Key: "b", Value: val(`{}`), Seq: 2, Time: ms(1_009_900)})
		next := f.Current()
		if l.State() != Closed || next.N != 101 {
			t.Fatalf("not rotated after the allowance")
		}
		evs := decodeAll(t, next.Bytes())
		if evs[0].ID != "1" || len(evs) != 2 || evs[1].ID != "2" {
			t.Errorf("segment 101: %+v, want snapshot at 1 and update 2", evs)
		}
		if got := partOf(t, l, 1); got != 9 {
			t.Errorf("seq 1 in part %d of segment 100, want 9", got)
		}
	})
}

// TestKeepalivesIndependentOfTicks: keepalives are derived from the stream
// and the grid, so a hub ticked every 10 ms and one never ticked (driven by
// its updates and one final tick) write the same bytes, and no two frames
// are more than H + P apart in stream time.
func TestKeepalivesIndependentOfTicks(t *testing.T) {
	cfg := testConfig()
	cfg.Retention = time.Hour
	var in []arrival
	seq := uint64(0)
	for _, s := range []float64{1000.4, 1001.2, 1007.9, 1008.0, 1015.5, 1026.95, 1027.1, 1039.99} {
		seq++
		ts := time.UnixMilli(int64(s * 1000))
		in = append(in, arrival{at: ts.Add(100 * time.Millisecond), u: Update{Key: "k", Value: val(`{}`), Seq: seq, Time: ts}})
	}
	end := time.Unix(1041, 0)
	a := newReplica(t, "ticked", cfg, time.Unix(990, 0))
	a.run(t, "f", in, tickEvery(time.Unix(990, 0), end, 10*time.Millisecond), end)
	b := newReplica(t, "not ticked", cfg, time.Unix(990, 0))
	b.run(t, "f", in, nil, end)
	fa, _ := a.h.Feed("f")
	fb, _ := b.h.Feed("f")
	for n := int64(100); n <= 103; n++ {
		la, _ := fa.Segment(n)
		lb, _ := fb.Segment(n)
		if !bytes.Equal(la.Bytes(), lb.Bytes()) {
			t.Errorf("segment %d differs:\n%s", n, firstDiff(lb.Bytes(), la.Bytes()))
		}
		// Stream time of each write: a part's end for a keepalive, the
		// segment's start for the snapshot, the timestamp for an update.
		last := la.Start
		for k := 0; k < la.Parts(); k++ {
			p, _, _, _ := la.Part(k)
			for _, ev := range decodeAll(t, p) {
				if ev.Type == "update" {
					i := slices.IndexFunc(in, func(a arrival) bool { return fmt.Sprint(a.u.Seq) == ev.ID })
					last = in[i].u.Time
				}
			}
			if bytes.HasSuffix(p, keepaliveFrame) {
				end := la.Start.Add(time.Duration(k+1) * cfg.PartLength)
				if gap := end.Sub(last); gap < cfg.Keepalive || gap >= cfg.Keepalive+cfg.PartLength {
					t.Errorf("segment %d part %d: keepalive %v after the last write", n, k, gap)
				}
				last = end
			}
			if end := la.Start.Add(time.Duration(k+1) * cfg.PartLength); k < la.Parts()-1 && end.Sub(last) >= cfg.Keepalive+cfg.PartLength {
				t.Errorf("segment %d: nothing written for %v at the end of part %d", n, end.Sub(last), k)
			}
		}
	}
	if st := a.h.Stats(); st.Keepalives < 4 {
		t.Errorf("keepalives = %d", st.Keepalives)
	}
}

// TestClampAbsurdTimestamps: a timestamp far ahead is placed at now + L (it
// cannot rotate into the future), one far behind in the open part, and a
// replay stamped ahead does not move a mid-segment open past now + L.
func TestClampAbsurdTimestamps(t *testing.T) {
	cfg := testConfig()
	h, clk, f, l := rotated(t, cfg, "f")
	clk.Set(time.Unix(1001, 500_000_000))
	if err := h.Apply("f", Update{Key: "a", Value: val(`{}`), Seq: 1, Time: clk.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := h.Apply("f", Update{Key: "b", Value: val(`{}`), Seq: 2, Time: clk.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := h.Apply("f", Update{Key: "c", Value: val(`{}`), Seq: 3}); err != nil { // no timestamp
		t.Fatal(err)
	}
	if f.Current() != l || l.FinishedParts() != 1 {
		t.Fatalf("segment %d, %d parts finished after far-off timestamps", f.Current().N, l.FinishedParts())
	}
	// Far ahead at 1001.9 s: placed at 1002.15 s, which ends part 1 at once.
	clk.Set(time.Unix(1001, 900_000_000))
	h.Apply("f", Update{Key: "d", Value: val(`{}`), Seq: 4, Time: clk.Now().Add(24 * time.Hour)})
	if l.FinishedParts() != 2 || f.Current() != l {
		t.Fatalf("finished parts = %d, want 2", l.FinishedParts())
	}
	for seq, want := range map[uint64]int{1: 1, 2: 1, 3: 1, 4: -1} {
		if got := partOf(t, l, seq); got != want {
			t.Errorf("seq %d in part %d, want %d", seq, got, want)
		}
	}
	// The frame keeps the message's own timestamp.
	p1, _, _, _ := l.Part(1)
	if want := fmt.Sprintf(`"time":%d`, time.Unix(1001, 500_000_000).Add(time.Hour).UnixMilli()); !bytes.Contains(p1, []byte(want)) {
		t.Errorf("part 1 = %q, want %s", p1, want)
	}

	// Loading: a replay stamped a day ahead opens at now + L, not then.
	clk2 := &fakeClock{t: time.Unix(1003, 500_000_000)}
	h2, _ := New(cfg, clk2, nil)
	h2.Apply("f", Update{Key: "a", Value: val(`{}`), Seq: 1, Time: clk2.Now().Add(24 * time.Hour)})
	h2.Loaded()
	f2, _ := h2.Feed("f")
	if l2 := f2.Current(); l2.N != 100 || l2.FirstPart() != 4 {
		t.Errorf("opened segment %d FirstPart %d, want 100 and 4 (3.75 s)", l2.N, l2.FirstPart())
	}
}
