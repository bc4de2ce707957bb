//go:build unix

package edge_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBenchOriginCost is the benchmark behind the table in
// docs/BENCHMARKS.md: origin connections and origin CPU per viewer, with
// and without the Varnish edge, at 100, 1,000 and 5,000 viewers. The origin
// (cmd/marquee with its embedded NATS and demo publisher, 10 s segments),
// the viewers (cmd/ssebench) and varnishd are separate processes, so each
// one's CPU time is its own (read from /proc).
//
// It is not part of CI: it takes about ten minutes. Run it with
//
//	MARQUEE_BENCH=1 go test ./e2e/edge -run TestBenchOriginCost -v -timeout 30m
//
// MARQUEE_BENCH_VIEWERS=100,1000 picks the sizes; MARQUEE_BENCH_WINDOW=30s
// the measuring window.
func TestBenchOriginCost(t *testing.T) {
	sizes, window := benchSettings(t, "about ten minutes")
	marquee := buildCommand(t, "marquee")
	ssebench := buildCommand(t, "ssebench")
	o := startMarquee(t, marquee)

	// The idle origin (embedded NATS, JetStream, demo publisher, segmenter)
	// costs CPU with no viewer at all; measure it first.
	c0, _ := procCPU(o.cmd.Process.Pid)
	t0 := time.Now()
	time.Sleep(min(window, 20*time.Second))
	c1, _ := procCPU(o.cmd.Process.Pid)
	idle := (c1 - c0).Seconds() / time.Since(t0).Seconds()
	t.Logf("idle origin: %.1f%% of a core", 100*idle)

	var rows []benchRow
	for _, n := range sizes {
		for _, edge := range []bool{false, true} {
			rows = append(rows, benchRun(t, o, ssebench, n, edge, window))
			t.Logf("%s", rows[len(rows)-1])
		}
	}
	var table strings.Builder
	fmt.Fprint(&table, "| viewers | edge | viewers connected | origin stream responses open | origin responses per segment | origin CPU (% of a core) | origin CPU above idle per viewer (µs/s) | origin egress (KiB/s) | varnishd CPU (% of a core) | viewers' CPU (% of a core) | TTFB p50 / p99 (ms) | publish→receive p50 / p99 (ms) | errors |\n")
	fmt.Fprint(&table, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	fmt.Fprintf(&table, "| 0 (idle) | — | 0 | 0 | 0 | %.1f | — | 0 | — | — | — | — | — |\n", 100*idle)
	for _, r := range rows {
		r.idle = idle
		fmt.Fprintf(&table, "%s\n", r.markdown())
	}
	t.Logf("window %s, 10 s segments, demo publisher 20 updates/s (≈13/s on feed prices)\n%s", window, table.String())
	if out := os.Getenv("MARQUEE_BENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(table.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// marqueeProc is cmd/marquee running as a child process.
type marqueeProc struct {
	cmd   *exec.Cmd
	addr  string // public host:port
	admin string // admin host:port
}

func startMarquee(t *testing.T, bin string) *marqueeProc {
	t.Helper()
	p := &marqueeProc{
		addr:  fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		admin: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
	}
	var logs bytes.Buffer
	p.cmd = exec.Command(bin)
	p.cmd.Env = append(os.Environ(),
		"MARQUEE_ADDR="+p.addr,
		"MARQUEE_ADMIN_ADDR="+p.admin,
		"MARQUEE_DATA_DIR="+filepath.Join(t.TempDir(), "data"),
		"MARQUEE_SEGMENT_LENGTH=10s",
		"MARQUEE_KEEPALIVE=5s",
		"MARQUEE_DEMO_RATE=20",
		"MARQUEE_FEEDS=prices,scores",
		"MARQUEE_LOG_LEVEL=warn",
		"MARQUEE_DRAIN_DELAY=0s",
		"MARQUEE_DRAIN_SPREAD=100ms",
	)
	p.cmd.Stdout, p.cmd.Stderr = &logs, &logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			p.cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("marquee output:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + p.addr + "/v1/feeds/prices")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("marquee not serving feed prices: %v\n%s", err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return p
}

// metrics reads the admin listener's Prometheus text: the sum of every
// sample of each named metric whose labels contain all of match.
func (p *marqueeProc) metrics(t *testing.T, names []string, match string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + p.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		for _, n := range names {
			if !strings.HasPrefix(line, n) || (len(line) > len(n) && line[len(n)] != '{' && line[len(n)] != ' ') {
				continue
			}
			if match != "" && strings.Contains(line, "{") && !strings.Contains(line, match) {
				continue
			}
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			out[n] += v
		}
	}
	return out
}

// benchRow is one line of the table.
type benchRow struct {
	viewers      int
	edge         bool
	connected    int64
	openStreams  float64 // mean of marquee_http_open_streams{mode="stream"}
	perSegment   float64
	originCPU    float64 // cores
	idle         float64 // cores the idle origin uses
	egress       float64 // bytes/s
	varnishCPU   float64
	viewersCPU   float64
	ttfb50       float64
	ttfb99       float64
	lat50, lat99 float64
	errors       int64
}

func (r benchRow) String() string {
	return strings.ReplaceAll(r.markdown(), "|", " ")
}

func (r benchRow) markdown() string {
	edge, vcpu := "none", "—"
	if r.edge {
		edge, vcpu = "Varnish", fmt.Sprintf("%.1f", 100*r.varnishCPU)
	}
	return fmt.Sprintf("| %d | %s | %d | %.0f | %.1f | %.1f | %.1f | %.1f | %s | %.1f | %.1f / %.1f | %.1f / %.1f | %d |",
		r.viewers, edge, r.connected, r.openStreams, r.perSegment, 100*r.originCPU, 1e6*max(r.originCPU-r.idle, 0)/float64(r.viewers),
		r.egress/1024, vcpu, 100*r.viewersCPU, r.ttfb50, r.ttfb99, r.lat50, r.lat99, r.errors)
}

// ssebenchReport is the part of cmd/ssebench's JSON report used here.
type ssebenchReport struct {
	PeakConnected int64   `json:"peak_connected"`
	Errors        int64   `json:"errors"`
	TTFBP50       float64 `json:"ttfb_p50_ms"`
	TTFBP99       float64 `json:"ttfb_p99_ms"`
	LatencyP50    float64 `json:"latency_p50_ms"`
	LatencyP99    float64 `json:"latency_p99_ms"`
}

// benchRun runs n viewers of feed prices against the origin or a fresh
// Varnish edge and measures the steady state over window.
func benchRun(t *testing.T, o *marqueeProc, ssebench string, n int, edge bool, window time.Duration) benchRow {
	t.Helper()
	const ramp, settle = 10 * time.Second, 5 * time.Second
	target := "http://" + o.addr
	var v *Varnish
	if edge {
		v = StartVarnish(t, VarnishOptions{Backend: o.addr, Threads: n/2 + 100})
		target = v.URL
	}
	ctx, cancel := context.WithTimeout(context.Background(), ramp+settle+window+2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, ssebench, "-url", target, "-feed", "prices", "-viewers", strconv.Itoa(n),
		"-ramp", ramp.String(), "-duration", (ramp + settle + window + 3*time.Second).String(), "-json")
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(ramp + settle)

	names := []string{"marquee_segment_responses_total", "marquee_http_bytes_written_total"}
	open := func() float64 {
		return o.metrics(t, []string{"marquee_http_open_streams"}, `mode="stream"`)["marquee_http_open_streams"]
	}
	m0 := o.metrics(t, names, `mode="stream"`)
	r0 := o.metrics(t, names[:1], `feed="prices"`)
	c0, _ := procCPU(o.cmd.Process.Pid)
	b0, _ := procCPU(cmd.Process.Pid)
	var v0 time.Duration
	if v != nil {
		v0, _ = cpuTime(v.cmd.Process.Pid)
	}
	t0 := time.Now()
	var samples []float64
	for time.Since(t0) < window {
		samples = append(samples, open())
		time.Sleep(time.Second)
	}
	el := time.Since(t0).Seconds()
	c1, _ := procCPU(o.cmd.Process.Pid)
	b1, _ := procCPU(cmd.Process.Pid)
	m1 := o.metrics(t, names, `mode="stream"`)
	r1 := o.metrics(t, names[:1], `feed="prices"`)
	row := benchRow{viewers: n, edge: edge}
	if v != nil {
		v1, _ := cpuTime(v.cmd.Process.Pid)
		row.varnishCPU = (v1 - v0).Seconds() / el
		v.LogStats()
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ssebench: %v\n%s", err, errb.String())
	}
	var rep ssebenchReport
	if err := json.NewDecoder(io.MultiReader(&out)).Decode(&rep); err != nil {
		t.Fatalf("ssebench report: %v: %s", err, out.String())
	}
	var sum float64
	for _, s := range samples {
		sum += s
	}
	row.connected = rep.PeakConnected
	row.openStreams = sum / float64(len(samples))
	row.perSegment = (r1["marquee_segment_responses_total"] - r0["marquee_segment_responses_total"]) / (el / 10)
	row.originCPU = (c1 - c0).Seconds() / el
	row.egress = (m1["marquee_http_bytes_written_total"] - m0["marquee_http_bytes_written_total"]) / el
	row.viewersCPU = (b1 - b0).Seconds() / el
	row.ttfb50, row.ttfb99 = rep.TTFBP50, rep.TTFBP99
	row.lat50, row.lat99 = rep.LatencyP50, rep.LatencyP99
	row.errors = rep.Errors
	return row
}

// benchSettings skips a benchmark unless MARQUEE_BENCH is set and returns
// its viewer counts (MARQUEE_BENCH_VIEWERS, default 100,1000,5000) and its
// measuring window (MARQUEE_BENCH_WINDOW, default 30s).
func benchSettings(t *testing.T, takes string) (sizes []int, window time.Duration) {
	t.Helper()
	if os.Getenv("MARQUEE_BENCH") == "" {
		t.Skip("benchmark: set MARQUEE_BENCH=1 to run (" + takes + ")")
	}
	sizes = []int{100, 1000, 5000}
	if s := os.Getenv("MARQUEE_BENCH_VIEWERS"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				t.Fatalf("MARQUEE_BENCH_VIEWERS: %v", err)
			}
			sizes = append(sizes, n)
		}
	}
	window = 30 * time.Second
	if s := os.Getenv("MARQUEE_BENCH_WINDOW"); s != "" {
		var err error
		if window, err = time.ParseDuration(s); err != nil {
			t.Fatalf("MARQUEE_BENCH_WINDOW: %v", err)
		}
	}
	return sizes, window
}
