//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// result is one run: one server, n subscribers.
type result struct {
	target     string
	subs       int
	round      int
	connected  int64
	published  int   // messages published in the window
	skipped    int   // publishing ticks missed (the publisher was held up)
	delivered  int64 // deliveries of the window's messages
	cpu        time.Duration
	cpuPerM    float64 // server CPU seconds per 1M deliveries
	p50, p99   time.Duration
	maxLat     time.Duration
	rssBase    int64
	rssIdle    int64
	rssPerSub  float64 // bytes
	ended      int64
	failed     int64
	loadBefore string
	loadAfter  string
}

func (r result) lost() int64 { return int64(r.published)*int64(r.subs) - r.delivered }

func (r result) line() string {
	return fmt.Sprintf("run round=%d target=%s subs=%d connected=%d published=%d skipped=%d delivered=%d lost=%d cpu=%.2fs cpu_per_1M=%.2fs p50=%.1fms p99=%.1fms max=%.1fms rss_base=%.1fMiB rss_idle=%.1fMiB rss_per_idle_sub=%.2fKiB ended=%d failed=%d load_before=[%s] load_after=[%s]",
		r.round, r.target, r.subs, r.connected, r.published, r.skipped, r.delivered, r.lost(), r.cpu.Seconds(), r.cpuPerM,
		ms(r.p50), ms(r.p99), ms(r.maxLat), mib(r.rssBase), mib(r.rssIdle), r.rssPerSub/1024, r.ended, r.failed, r.loadBefore, r.loadAfter)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func mib(b int64) float64        { return float64(b) / (1 << 20) }

// runOne starts a fresh server, connects n subscribers, lets them idle
// (RSS), publishes for the window (CPU, latency), and stops everything.
func (e *env) runOne(ctx context.Context, name string, n int, logf func(string, ...any)) (result, error) {
	r := result{target: name, subs: n, loadBefore: loadavg()}
	t, err := e.start(ctx, name)
	if err != nil {
		return r, err
	}
	defer t.stop()
	time.Sleep(time.Second) // let start-up settle before the baseline
	r.rssBase = t.p.rss()

	m := &meter{addrs: e.cfg.localAddrs}
	m.from.Store(time.Now().Add(time.Hour).UnixNano()) // nothing counts until the window opens
	subCtx, stopSubs := context.WithCancel(ctx)
	defer stopSubs()
	path, err := t.subPath(ctx)
	if err != nil {
		return r, err
	}
	var ready, running sync.WaitGroup
	ready.Add(n)
	sem := make(chan struct{}, 64) // connections being opened at once
	logf("%s: connecting %d subscribers", name, n)
	for range n {
		sem <- struct{}{}
		running.Add(1)
		once := sync.OnceFunc(func() { ready.Done(); <-sem })
		go func() {
			defer running.Done()
			m.subscribe(subCtx, t.base, path, once)
		}()
	}
	waitTimeout(&ready, 60*time.Second)
	r.connected = m.ready.Load()
	if r.connected < int64(n) {
		return r, fmt.Errorf("%d of %d subscribers connected (%d failed: %v)", r.connected, n, m.failed.Load(), m.firstErr)
	}
	logf("%s: %d connected; idle for %s", name, n, e.cfg.settle)
	time.Sleep(e.cfg.settle)
	r.rssIdle = t.p.rss()
	r.rssPerSub = float64(r.rssIdle-r.rssBase) / float64(n)
	if t.stats != nil {
		logf("%s: idle: %s", name, t.stats())
	}

	// The publishing window.
	body := func(ts int64) []byte {
		b := []byte(`{"ts":` + strconv.FormatInt(ts, 10) + `,"pad":"`)
		for len(b) < e.cfg.size-2 {
			b = append(b, 'x')
		}
		return append(b, '"', '}')
	}
	start := time.Now()
	m.from.Store(start.UnixNano())
	cpu0 := t.p.cpu()
	interval := time.Second / time.Duration(e.cfg.rate)
	ticks := int(e.cfg.duration / interval)
	for i := range ticks {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		} else if -d > interval {
			r.skipped++ // held up by the last publish: this tick is dropped
			continue
		}
		if err := t.publish(ctx, body(time.Now().UnixNano())); err != nil {
			return r, fmt.Errorf("publish: %w", err)
		}
		r.published++
	}
	want := int64(r.published) * int64(n)
	deadline := time.Now().Add(e.cfg.drain)
	for m.delivered.Load() < want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	r.cpu = t.p.cpu() - cpu0
	r.delivered = m.delivered.Load()
	if r.delivered > 0 {
		r.cpuPerM = r.cpu.Seconds() / float64(r.delivered) * 1e6
	}
	r.p50, r.p99, r.maxLat = m.lat.quantile(0.5), m.lat.quantile(0.99), time.Duration(m.lat.max.Load())
	r.ended, r.failed = m.ended.Load(), m.failed.Load()
	r.loadAfter = loadavg()
	stopSubs()
	waitTimeout(&running, 30*time.Second)
	return r, nil
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// results collects the runs by target and subscriber count.
type results struct {
	runs map[string]map[int][]result
}

func newResults() *results { return &results{runs: map[string]map[int][]result{}} }

func (rs *results) add(t string, n int, r result) {
	if rs.runs[t] == nil {
		rs.runs[t] = map[int][]result{}
	}
	rs.runs[t][n] = append(rs.runs[t][n], r)
}

// stat is the median and range of one figure over the rounds.
type stat struct{ med, lo, hi float64 }

func statOf(rs []result, f func(result) float64) (stat, bool) {
	if len(rs) == 0 {
		return stat{}, false
	}
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	med := v[len(v)/2]
	if len(v)%2 == 0 {
		med = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return stat{med, v[0], v[len(v)-1]}, true
}

func (s stat) String() string {
	return fmt.Sprintf("%s [%s–%s]", num(s.med), num(s.lo), num(s.hi))
}

func num(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

// summary prints one line per figure and subscriber count: every target's
// median [range] and, against Nchan, the ratio of the medians.
func (rs *results) summary(w io.Writer, cfg config) {
	figures := []struct {
		name   string
		f      func(result) float64
		better string // "lower" or "higher"
	}{
		{"server CPU-s per 1M deliveries", func(r result) float64 { return r.cpuPerM }, "lower"},
		{"deliveries per server CPU-s", func(r result) float64 {
			if r.cpu <= 0 {
				return 0
			}
			return float64(r.delivered) / r.cpu.Seconds()
		}, "higher"},
		{"publish→receive p50 ms", func(r result) float64 { return ms(r.p50) }, "lower"},
		{"publish→receive p99 ms", func(r result) float64 { return ms(r.p99) }, "lower"},
		{"RSS per idle subscriber KiB", func(r result) float64 { return r.rssPerSub / 1024 }, "lower"},
		{"lost deliveries", func(r result) float64 { return float64(r.lost()) }, "lower"},
		{"skipped publishes", func(r result) float64 { return float64(r.skipped) }, "lower"},
	}
	fmt.Fprintf(w, "# summary: median [min–max] over %d rounds; load average at the end: %s\n", cfg.rounds, loadavg())
	for _, n := range cfg.subs {
		for _, fig := range figures {
			var parts []string
			ref, hasRef := statOf(rs.runs["nchan"][n], fig.f)
			for _, t := range cfg.targets {
				s, ok := statOf(rs.runs[t][n], fig.f)
				if !ok {
					continue
				}
				p := t + " " + s.String()
				if hasRef && t != "nchan" && ref.med > 0 && s.med > 0 && !strings.HasPrefix(fig.name, "lost") && !strings.HasPrefix(fig.name, "skipped") {
					ratio := ref.med / s.med
					if fig.better == "higher" {
						ratio = s.med / ref.med
					}
					p += fmt.Sprintf(" (%.2f× better than Nchan)", ratio)
				}
				parts = append(parts, p)
			}
			fmt.Fprintf(w, "subs=%d %s: %s\n", n, fig.name, strings.Join(parts, "; "))
		}
	}
}
