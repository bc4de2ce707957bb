package segmenter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"marquee/wire"
)

// hotStream is stream() with a ticker key "hot" updated every millisecond
// (1,000 msg/s) from 1000.15 s to 1030 s, except in stream()'s idle
// stretch [1012 s, 1019.4 s), which keeps its keepalives; sequences are
// renumbered in stream order, redeliveries keeping theirs.
func hotStream() []Update {
	base := stream()
	var out []Update
	seq := uint64(10)
	hot := time.UnixMilli(1_000_150)
	var lastOrig, lastNew uint64
	for _, u := range base {
		for ; hot.Before(u.Time) && hot.Before(time.UnixMilli(1_030_000)); hot = hot.Add(time.Millisecond) {
			if ms := hot.UnixMilli(); ms >= 1_012_000 && ms < 1_019_400 {
				continue
			}
			seq++
			out = append(out, Update{Key: "hot", Value: val(fmt.Sprintf(`{"p":%d}`, hot.UnixMilli())), Seq: seq, Time: hot})
		}
		if u.Seq == lastOrig {
			u.Seq = lastNew // a redelivery: a duplicate wherever it lands
		} else {
			seq++
			lastOrig, u.Seq, lastNew = u.Seq, seq, seq
		}
		out = append(out, u)
	}
	return out
}

func conflateConfig(every time.Duration) Config {
	cfg := testConfig() // D 10 s, P 1 s, H 3 s, L 250 ms
	cfg.Retention = time.Hour
	cfg.History = 1 << 16
	cfg.Conflate = Conflation{Every: every}
	return cfg
}

// TestConflatedReplicasWriteIdenticalBytes: with conflation on, the
// replicas of TestReplicasWriteIdenticalBytes (different jitter below L,
// different ticks, four opened mid-segment) still write the same bytes,
// for buckets within a part and of several parts; and the reference's logs
// hold exactly the latest update per key per bucket (see checkConflated).
func TestConflatedReplicasWriteIdenticalBytes(t *testing.T) {
	us := hotStream()
	end := time.Unix(1050, 500_000_000)
	for _, every := range []time.Duration{250 * time.Millisecond, time.Second, 2 * time.Second, 5 * time.Second} {
		t.Run(every.String(), func(t *testing.T) {
			cfg := conflateConfig(every)
			rs := runReplicas(t, cfg, us, replicaSetups(cfg, end), end)
			compareReplicas(t, cfg, rs, 100, 104)
			// The hot key runs for 22.45 s (1000.15–1012 s, 1019.4–1030 s).
			checkConflated(t, cfg, rs[0], us, 22450*time.Millisecond)
			if every > cfg.PartLength {
				// D, loaded at 1003.7 s (part 3), refuses up to the end of
				// the bucket holding 1003.45 s.
				f, _ := rs[3].h.Feed("f")
				l, _ := f.Segment(100)
				if want := int((3450*time.Millisecond)/every+1) * int(every/cfg.PartLength); l.FirstPart() != want {
					t.Errorf("D: FirstPart %d, want %d (the end of its bucket)", l.FirstPart(), want)
				}
			}
		})
	}
}

// checkConflated checks the logs of a replica r that read every message of
// us on time (within L) and was running before the feed's first message:
//
//   - the update frames are exactly, for every bucket of I and key, the
//     last applied message of the key in the bucket (a message's bucket
//     being the one holding the latest timestamp so far: its placement,
//     or a later one when timestamps step back), with its key, value and
//     time, but the feed's first message (which opens its first segment
//     and is in its snapshot);
//   - so at most one frame per key per bucket: per part when I ≤ P, per
//     run of I/P parts otherwise;
//   - walking the segments as a client does, every update's prev is the
//     sequence held, and every segment's snapshot equals the state the
//     client built from the frames before it;
//   - the final state is the fold of every message;
//   - the key "hot", updated during hotFor in all, has at most one frame
//     per bucket of that time.
func checkConflated(t *testing.T, cfg Config, r *replica, us []Update, hotFor time.Duration) {
	t.Helper()
	every := cfg.Conflate.Every
	f, _ := r.h.Feed("f")
	type bk struct {
		b   int64
		key string
	}
	last := map[bk]Update{}
	state := map[string]string{}
	bySeq := map[uint64]Update{}
	var seq uint64
	var runmax time.Time
	first := true
	for _, u := range us {
		if u.Seq <= seq {
			continue // a redelivery
		}
		seq = u.Seq
		runmax = later(runmax, u.Time)
		if len(u.Value) == 0 {
			delete(state, u.Key)
		} else {
			state[u.Key] = string(u.Value)
		}
		bySeq[u.Seq] = u
		if first {
			first = false
			continue
		}
		last[bk{runmax.UnixNano() / int64(every), u.Key}] = u
	}
	want := map[uint64]bool{}
	for _, u := range last {
		want[u.Seq] = true
	}

	got := map[uint64]bool{}
	client := map[string]string{}
	var held uint64
	c := &chainCheck{t: t}
	n0 := f.hub.grid.Index(us[0].Time)
	for n := n0; n <= f.Current().N; n++ {
		l, ok := f.Segment(n)
		if !ok {
			t.Fatalf("segment %d missing", n)
		}
		where := "segment " + strconv.FormatInt(n, 10)
		evs := decodeAll(t, l.Bytes())
		c.events(where, evs)
		(&chainCheck{t: t}).events(where+" alone", evs)
		for _, ev := range evs {
			switch ev.Type {
			case wire.EventSnapshot:
				var s wire.Snapshot
				if err := json.Unmarshal(ev.Data, &s); err != nil {
					t.Fatal(err)
				}
				snap := map[string]string{}
				for k, v := range s.Entries {
					snap[k] = string(v)
				}
				if n > n0 && !maps.Equal(snap, client) {
					t.Errorf("%s: snapshot %v, the frames before it built %v", where, snap, client)
				}
				client, held = snap, s.Seq
			case wire.EventUpdate:
				var w wire.Update
				if err := json.Unmarshal(ev.Data, &w); err != nil {
					t.Fatal(err)
				}
				got[w.Seq] = true
				if w.Seq <= held {
					t.Errorf("%s: update %d after %d: a client drops it", where, w.Seq, held)
				}
				held = w.Seq
				u := bySeq[w.Seq]
				if w.Key != u.Key || w.Time != u.Time.UnixMilli() || (len(u.Value) > 0) == w.Deleted() || (len(u.Value) > 0 && string(w.Value) != string(u.Value)) {
					t.Errorf("%s: frame %s is not message %d %+v", where, ev.Data, w.Seq, u)
				}
				if w.Deleted() {
					delete(client, w.Key)
				} else {
					client[w.Key] = string(w.Value)
				}
			}
		}
		// At most one frame per key per bucket of parts (I ≥ P), or per
		// P/I buckets in a part (I < P).
		group, perGroup := max(int(every/cfg.PartLength), 1), max(int(cfg.PartLength/every), 1)
		for k0 := 0; k0 < l.Parts(); k0 += group {
			keys := map[string]int{}
			for k := k0; k < k0+group; k++ {
				p, _, _, _ := l.Part(k)
				for _, ev := range decodeAll(t, p) {
					if ev.Type == wire.EventUpdate {
						var w wire.Update
						json.Unmarshal(ev.Data, &w)
						if keys[w.Key]++; keys[w.Key] > perGroup {
							t.Errorf("%s parts %d..%d: %d frames of %s, want at most %d", where, k0, k0+group-1, keys[w.Key], w.Key, perGroup)
						}
					}
				}
			}
		}
	}
	if !maps.Equal(got, want) {
		var missing, extra []uint64
		for s := range want {
			if !got[s] {
				missing = append(missing, s)
			}
		}
		for s := range got {
			if !want[s] {
				extra = append(extra, s)
			}
		}
		t.Errorf("frames: %d written, %d expected; missing %v, extra %v", len(got), len(want), first10(missing), first10(extra))
	}
	if !maps.Equal(client, state) {
		t.Errorf("client state %v, want %v", client, state)
	}
	snapJSON, s := f.Snapshot(r.clk.Now())
	var snap wire.Snapshot
	if err := json.Unmarshal(snapJSON, &snap); err != nil {
		t.Fatal(err)
	}
	final := map[string]string{}
	for k, v := range snap.Entries {
		final[k] = string(v)
	}
	if s != seq || !maps.Equal(final, state) {
		t.Errorf("final state seq %d %v, want seq %d %v", s, final, seq, state)
	}
	applied := len(bySeq)
	if st := r.h.Stats(); st.Conflated != uint64(applied-1-len(want)) || st.Updates != uint64(applied) {
		t.Errorf("stats: %d updates, %d conflated; want %d and %d", st.Updates, st.Conflated, applied, applied-1-len(want))
	}
	if hot, most := countKey(got, bySeq, "hot"), int(hotFor/every)+2; hot == 0 || hot > most {
		t.Errorf("%d frames of the hot key (updated for %v), want at most %d", hot, hotFor, most)
	}
}

func countKey(seqs map[uint64]bool, bySeq map[uint64]Update, key string) int {
	n := 0
	for s := range seqs {
		if bySeq[s].Key == key {
			n++
		}
	}
	return n
}

func first10(s []uint64) []uint64 { return s[:min(len(s), 10)] }

// backStream is a stream of three keys every 1–5 ms from 1000.15 s to
// 1025 s, a tenth of whose timestamps step back up to 100 ms behind the
// latest one (a leader clock stepping back, or publishers racing), so
// that many updates land in a bucket the feed has already passed.
func backStream() []Update {
	rng := rand.New(rand.NewPCG(3, 4))
	var us []Update
	seq := uint64(10)
	keys := []string{"hot", "b", "c"}
	for ts := time.UnixMilli(1_000_150); ts.Before(time.Unix(1025, 0)); ts = ts.Add(time.Duration(1+rng.IntN(5)) * time.Millisecond) {
		at := ts
		if rng.IntN(10) == 0 {
			at = ts.Add(-time.Duration(1+rng.IntN(100)) * time.Millisecond)
		}
		seq++
		value := fmt.Sprintf(`{"t":%d}`, at.UnixMilli())
		if rng.IntN(30) == 0 {
			value = "" // a delete
		}
		us = append(us, Update{Key: keys[rng.IntN(len(keys))], Value: val(value), Seq: seq, Time: at})
	}
	return us
}

// TestConflatedReplicasTimestampsStepBack: with timestamps often stepping
// back across bucket boundaries (and arrival jitter up to 100 ms, so every
// message still reaches every replica within L of its own timestamp), the
// replicas agree byte for byte and write the latest update per key of each
// bucket, a message's bucket being the one of the latest timestamp so far.
func TestConflatedReplicasTimestampsStepBack(t *testing.T) {
	us := backStream()
	end := time.Unix(1030, 500_000_000)
	for _, every := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, time.Second, 2 * time.Second} {
		t.Run(every.String(), func(t *testing.T) {
			cfg := conflateConfig(every)
			setups := replicaSetups(cfg, end)
			for i := range setups {
				setups[i].jitter = 100 * time.Millisecond
			}
			rs := runReplicas(t, cfg, us, setups, end)
			compareReplicas(t, cfg, rs, 100, 102)
			checkConflated(t, cfg, rs[0], us, 25*time.Second)
		})
	}
}

// conflated returns a hub rotated into segment 100 whose feed "f" is
// conflated every I.
func conflated(t *testing.T, every time.Duration) (*Hub, *fakeClock, *Feed, *Log) {
	t.Helper()
	cfg := testConfig()
	cfg.Retention = time.Hour
	cfg.Conflate = Conflation{Every: every}
	return rotated(t, cfg, "f")
}

func updateSeqs(t *testing.T, b []byte) []string {
	t.Helper()
	var ids []string
	for _, ev := range decodeAll(t, b) {
		if ev.Type == wire.EventUpdate {
			ids = append(ids, ev.ID)
		}
	}
	return ids
}

// TestConflationDeletes: deletes conflate like updates, the latest wins:
// a set then a delete in one bucket writes the delete, a delete then a set
// the set; the state follows every message at once.
func TestConflationDeletes(t *testing.T) {
	h, clk, f, l := conflated(t, 500*time.Millisecond)
	ms := func(v int64) time.Time { return time.UnixMilli(v) }
	apply := func(at int64, key, value string, seq uint64) {
		t.Helper()
		clk.Set(ms(at))
		if err := h.Apply("f", Update{Key: key, Value: val(value), Seq: seq, Time: ms(at)}); err != nil {
			t.Fatal(err)
		}
	}
	apply(1_000_300, "a", `{"v":1}`, 1)
	apply(1_000_310, "b", `{"v":1}`, 2)
	apply(1_000_320, "a", ``, 3)   // a: set, then deleted
	apply(1_000_330, "b", ``, 4)   // b: deleted,
	apply(1_000_340, "b", `{}`, 5) // then set again
	if f.Keys() != 1 || f.Seq() != 5 {
		t.Fatalf("state: %d keys seq %d, want 1 and 5 at once", f.Keys(), f.Seq())
	}
	if ids := updateSeqs(t, l.Bytes()); len(ids) != 0 {
		t.Fatalf("frames %v written before the bucket ended", ids)
	}
	clk.Set(ms(1_000_760)) // the bucket [1000.0, 1000.5) ended 260 ms ago
	h.Tick(clk.Now())
	evs := decodeAll(t, l.Bytes())
	want := []string{
		`{"key":"a","seq":3,"prev":0,"time":1000320,"value":null}`,
		`{"key":"b","seq":5,"prev":3,"time":1000340,"value":{}}`,
	}
	if len(evs) != 3 || string(evs[1].Data) != want[0] || string(evs[2].Data) != want[1] {
		t.Fatalf("log events %+v, want the snapshot then %v", evs, want)
	}
	if got := h.Stats().Conflated; got != 3 {
		t.Errorf("conflated = %d, want 3", got)
	}
	clk.Set(ms(1_001_300))
	h.Tick(clk.Now())
	if p, ready, _, _ := l.Part(0); !ready || !bytes.Contains(p, []byte(`"seq":5`)) {
		t.Errorf("part 0 (ready %v) = %q, want the flushed frames", ready, p)
	}
}

// TestConflationDirect: direct mode sees the state at once and the frames
// when their bucket ends: a viewer on the snapshot resumes (it is not
// "too slow") while updates are pending, is woken by the flush (not by
// each pending update), and gets the frames above its sequence; the
// frames' prev never exceeds what it holds.
func TestConflationDirect(t *testing.T) {
	h, clk, f, _ := conflated(t, time.Second)
	at := time.Unix(1000, 400_000_000)
	clk.Set(at)
	for i := range uint64(5) {
		h.Apply("f", Update{Key: "k" + strconv.Itoa(int(i%2)), Value: val(`{}`), Seq: i + 1, Time: at})
	}
	wake := f.Direct().Wake()
	_, seq := f.SnapshotFrame(clk.Now())
	if seq != 5 {
		t.Fatalf("snapshot seq %d, want 5", seq)
	}
	data, last, ok, _, _ := f.DirectSince(seq, nil)
	if !ok || len(data) != 0 || last != 5 {
		t.Fatalf("direct since the snapshot: ok %v last %d data %q", ok, last, data)
	}
	data, _, ok, _, _ = f.DirectSince(0, nil)
	if !ok || len(data) != 0 {
		t.Fatalf("direct since 0 before the flush: ok %v data %q", ok, data)
	}
	h.Apply("f", Update{Key: "k1", Value: val(`{"v":6}`), Seq: 6, Time: at})
	select {
	case <-wake:
		t.Fatal("a pending update woke direct viewers: they would wake once per message")
	default:
	}
	clk.Set(time.Unix(1001, 300_000_000))
	h.Tick(clk.Now())
	select {
	case <-wake:
	default:
		t.Fatal("the flush did not wake direct viewers")
	}
	data, last, ok, _, _ = f.DirectSince(seq, nil)
	if !ok || last != 6 {
		t.Fatalf("direct since %d after the flush: ok %v last %d", seq, ok, last)
	}
	(&chainCheck{t: t, held: seq, started: true}).events("direct from the snapshot", decodeAll(t, data))
	if ids := updateSeqs(t, data); strings.Join(ids, ",") != "6" {
		t.Errorf("frames above the snapshot: %v, want 6", ids)
	}
	data, _, _, _, _ = f.DirectSince(0, nil)
	if ids := updateSeqs(t, data); strings.Join(ids, ",") != "5,6" {
		t.Errorf("frames in the history: %v, want 5,6 (k0's latest, k1's latest)", ids)
	}
}

// TestConflationReloadDropsPending: a reload's snapshot replaces the
// pending updates of the old state (counted), which are never written
// after it; the chain goes on from the snapshot.
func TestConflationReloadDropsPending(t *testing.T) {
	h, clk, f, l := conflated(t, time.Second)
	at := time.Unix(1000, 400_000_000)
	clk.Set(at)
	h.Apply("f", Update{Key: "a", Value: val(`{"old":1}`), Seq: 41, Time: at})
	h.Apply("f", Update{Key: "a", Value: val(`{"old":2}`), Seq: 42, Time: at})
	h.Reload()
	// The stream was recreated: sequences restart.
	h.Apply("f", Update{Key: "b", Value: val(`{"new":1}`), Seq: 1, Time: at})
	h.Apply("f", Update{Key: "b", Value: val(`{"new":2}`), Seq: 2, Time: at})
	if ids := updateSeqs(t, l.Bytes()); len(ids) != 0 {
		t.Fatalf("frames %v during the reload", ids)
	}
	h.Loaded()
	clk.Set(time.Unix(1000, 600_000_000))
	h.Apply("f", Update{Key: "b", Value: val(`{"new":3}`), Seq: 3, Time: clk.Now()})
	clk.Set(time.Unix(1001, 300_000_000))
	h.Tick(clk.Now())
	evs := decodeAll(t, l.Bytes())
	var types []string
	for _, ev := range evs {
		types = append(types, ev.Type+":"+ev.ID)
	}
	if got, want := strings.Join(types, " "), "snapshot:0 snapshot:2 update:3"; got != want {
		t.Fatalf("log %s, want %s", got, want)
	}
	(&chainCheck{t: t}).events("after the reload", evs[1:])
	if got := h.Stats().Conflated; got != 2 {
		t.Errorf("conflated = %d, want 2 (41 replaced, 42 dropped at the reload)", got)
	}
	if snap, _ := f.Snapshot(clk.Now()); !bytes.Contains(snap, []byte(`"b":{"new":3}`)) || bytes.Contains(snap, []byte(`"a"`)) {
		t.Errorf("state %s", snap)
	}
}

// TestConflationGapStillDetected: a replica that received a message later
// than the allowance holds it in a later part; a viewer taking part 2 from
// that replica and part 3 from an on-time one misses it, and the first
// frame of part 3 shows it: its prev is above what the viewer holds.
func TestConflationGapStillDetected(t *testing.T) {
	hOn, clkOn, _, lOn := conflated(t, time.Second)
	hLate, clkLate, _, lLate := conflated(t, time.Second)
	ms := func(v int64) time.Time { return time.UnixMilli(v) }
	msgs := []Update{
		{Key: "a", Value: val(`{"v":1}`), Seq: 1, Time: ms(1_002_100)},
		{Key: "x", Value: val(`{"v":1}`), Seq: 2, Time: ms(1_002_900)}, // late on hLate
		{Key: "a", Value: val(`{"v":2}`), Seq: 3, Time: ms(1_003_500)},
	}
	for i, u := range msgs {
		clkOn.Set(u.Time.Add(10 * time.Millisecond))
		hOn.Apply("f", u)
		at := u.Time.Add(10 * time.Millisecond)
		if i == 1 {
			// Part 2's allowance ran out before it arrived: a tick closed it.
			clkLate.Set(ms(1_003_260))
			hLate.Tick(clkLate.Now())
			at = ms(1_003_300)
		}
		clkLate.Set(later(at, clkLate.Now()))
		hLate.Apply("f", u)
	}
	for _, r := range []struct {
		h   *Hub
		clk *fakeClock
	}{{hOn, clkOn}, {hLate, clkLate}} {
		r.clk.Set(time.Unix(1005, 0))
		r.h.Tick(r.clk.Now())
	}
	upto1, _, _, _ := lLate.UpTo(1)
	p2, _, _, _ := lLate.Part(2)
	p3, _, _, _ := lOn.Part(3)
	if partOf(t, lOn, 2) != 2 || partOf(t, lLate, 2) != 3 {
		t.Fatalf("seq 2 in parts %d (on time) and %d (late), want 2 and 3", partOf(t, lOn, 2), partOf(t, lLate, 2))
	}
	var held uint64
	gap := false
	for _, ev := range decodeAll(t, append(append(append([]byte{}, upto1...), p2...), p3...)) {
		switch ev.Type {
		case wire.EventSnapshot:
			var s wire.Snapshot
			json.Unmarshal(ev.Data, &s)
			held = s.Seq
		case wire.EventUpdate:
			var u wire.Update
			json.Unmarshal(ev.Data, &u)
			if u.Prev > held {
				gap = true
				break
			}
			held = u.Seq
		}
	}
	if !gap {
		t.Errorf("a viewer mixing the replicas missed seq 2 without noticing:\n%s%s%s", upto1, p2, p3)
	}
	// Each replica's own log is a gap-free chain.
	(&chainCheck{t: t}).events("on time", decodeAll(t, lOn.Bytes()))
	(&chainCheck{t: t}).events("late", decodeAll(t, lLate.Bytes()))
}

// TestRunFlushesBucketsInsideAPart: Hub.Run wakes at the end of a bucket
// shorter than the part (plus the allowance) to write its frames, not at
// the end of the part: conflation delays a frame by at most I + L.
func TestRunFlushesBucketsInsideAPart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Conflate = Conflation{Every: 250 * time.Millisecond}
		h, err := New(cfg, SystemClock{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		h.Loaded()
		open(h, "f")
		f, _ := h.Feed("f")
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { h.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()

		// Go to 100 ms into a part, then apply.
		now := time.Now()
		start := now.Truncate(cfg.PartLength).Add(cfg.PartLength)
		time.Sleep(start.Add(100 * time.Millisecond).Sub(now))
		synctest.Wait()
		l := f.Current()
		if err := h.Apply("f", Update{Key: "k", Value: val(`{}`), Seq: 1, Time: time.Now()}); err != nil {
			t.Fatal(err)
		}
		_, _, wake := l.Since(0)
		<-wake
		if got, want := time.Since(start), 250*time.Millisecond+cfg.PartLateness; got != want {
			t.Errorf("frame written %v into the part, want %v (bucket end + L)", got, want)
		}
		if ids := updateSeqs(t, l.Bytes()); len(ids) != 1 {
			t.Errorf("log frames %v", ids)
		}
	})
}

// TestConflationSetting: the text form of MARQUEE_CONFLATE and the rule
// that keeps buckets on the grid.
func TestConflationSetting(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want: the parsed form, or "error: …" (a substring)
	}{
		{"", ""},
		{"500ms", "500ms"},
		{" 1s , prices=250ms,scores=2s ", "1s,prices=250ms,scores=2s"},
		{"b=1s,a=2s", "a=2s,b=1s"},
		{"1s,audit=0s", "1s,audit=0s"},
		{"fast", `error: "fast" is not a duration`},
		{"1s,2s", "error: more than one default"},
		{"a=1s,a=2s", "error: feed a is named twice"},
		{"bad.name=1s", `error: "bad.name" is not a feed name`},
		{"-1s", "error: must not be negative"},
	} {
		var c Conflation
		err := c.UnmarshalText([]byte(tc.in))
		if want, isErr := strings.CutPrefix(tc.want, "error: "); isErr {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%q: error %v, want %q", tc.in, err, want)
			}
			continue
		}
		if err != nil || c.String() != tc.want {
			t.Errorf("%q: %q, %v; want %q", tc.in, c.String(), err, tc.want)
		}
	}
	var c Conflation
	c.UnmarshalText([]byte("1s,audit=0s,prices=250ms"))
	for feed, want := range map[string]time.Duration{"audit": 0, "prices": 250 * time.Millisecond, "other": time.Second} {
		if got := c.For(feed); got != want {
			t.Errorf("For(%s) = %v, want %v", feed, got, want)
		}
	}
	if (Conflation{}).On() || !c.On() {
		t.Errorf("On() wrong")
	}

	// D 60 s, P 1 s.
	for spec, ok := range map[string]bool{
		"250ms": true, "1s": true, "2s": true, "30s": true, "60s": true, "10ms": true,
		"300ms": false, "1500ms": false, "7s": false, "120s": false, "5ms": false, "x=7s": false, "1s,x=300ms": false,
	} {
		cfg := Defaults()
		if err := cfg.Conflate.UnmarshalText([]byte(spec)); err != nil {
			t.Fatal(err)
		}
		err := cfg.Validate()
		if (err == nil) != ok {
			t.Errorf("%s: Validate() = %v, want ok %v", spec, err, ok)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "MARQUEE_CONFLATE") {
			t.Errorf("%s: error %q does not name the variable first", spec, err)
		}
	}
}

// TestConflationRefusalsWriteNothing: a conflated feed refuses what the
// caps and validation refuse before anything is pending: the refused
// update neither replaces a pending one nor reaches the log.
func TestConflationRefusalsWriteNothing(t *testing.T) {
	cfg := testConfig()
	cfg.MaxKeys = 1
	cfg.Conflate = Conflation{Every: 500 * time.Millisecond}
	h, clk, _, l := rotated(t, cfg, "f")
	at := time.Unix(1000, 300_000_000)
	clk.Set(at)
	for _, tc := range []struct {
		u    Update
		want error
	}{
		{Update{Key: "a", Value: val(`{"v":1}`), Seq: 1, Time: at}, nil},
		{Update{Key: "b", Value: val(`{}`), Seq: 2, Time: at}, ErrTooManyKeys},
		{Update{Key: "a", Value: val(`{"v":`), Seq: 2, Time: at}, ErrInvalidValue},
		{Update{Key: "a", Value: val(`{"v":2}`), Seq: 1, Time: at}, ErrDuplicate},
	} {
		if err := h.Apply("f", tc.u); !errors.Is(err, tc.want) {
			t.Fatalf("apply %+v: %v, want %v", tc.u, err, tc.want)
		}
	}
	clk.Set(time.Unix(1001, 300_000_000))
	h.Tick(clk.Now())
	if ids := updateSeqs(t, l.Bytes()); strings.Join(ids, ",") != "1" {
		t.Errorf("frames %v, want 1", ids)
	}
	if !bytes.Contains(l.Bytes(), []byte(`"value":{"v":1}`)) || h.Stats().Conflated != 0 {
		t.Errorf("log %q, conflated %d", l.Bytes(), h.Stats().Conflated)
	}
}
