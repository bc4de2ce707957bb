//go:build unix

package edge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBenchParts is the benchmark behind the parts-mode table in
// docs/BENCHMARKS.md: parts-mode viewers of one feed (cmd/ssebench -mode
// parts) straight at the origin and through Varnish with
// marquee-buffered.vcl (streaming off, as Cloudflare buffers), at 100, 1,000
// and 5,000 viewers: origin responses per part, origin and edge CPU, and
// publish-to-viewer latency against the target of P + 250 ms. The origin is
// cmd/marquee (embedded NATS, demo publisher, 10 s segments, 1 s parts);
// origin, viewers and varnishd are separate processes.
//
// It is not part of CI: it takes about six minutes. Run it with
//
//	MARQUEE_BENCH=1 go test ./e2e/edge -run TestBenchParts -v -timeout 30m
//
// MARQUEE_BENCH_VIEWERS=100,1000 picks the sizes; MARQUEE_BENCH_WINDOW=30s
// the measuring window; MARQUEE_BENCH_OUT=file writes the table.
func TestBenchParts(t *testing.T) {
	sizes, window := benchSettings(t, "about six minutes")
	const partLen = time.Second
	// startMarquee passes the environment on; these are not among the
	// variables it sets itself.
	t.Setenv("MARQUEE_PART_LENGTH", partLen.String())
	t.Setenv("MARQUEE_CLIENT_MODE", "parts")
	marquee := buildCommand(t, "marquee")
	ssebench := buildCommand(t, "ssebench")
	o := startMarquee(t, marquee)

	var rows []partsBenchRow
	for _, n := range sizes {
		for _, edge := range []bool{false, true} {
			rows = append(rows, partsBenchRun(t, o, ssebench, n, edge, window, partLen))
			t.Logf("%s", strings.ReplaceAll(rows[len(rows)-1].markdown(partLen), "|", " "))
		}
	}
	var table strings.Builder
	fmt.Fprint(&table, "| viewers | edge | viewers connected | origin `parts` responses per part | origin `upto` responses per part | origin part requests held at once (mean) | origin CPU (% of a core) | varnishd CPU (% of a core) | viewers' CPU (% of a core) | join → first byte p50 / p99 (ms) | publish→viewer p50 / p99 (ms) | median ≤ P + 250 ms | errors |\n")
	fmt.Fprint(&table, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|\n")
	for _, r := range rows {
		fmt.Fprintf(&table, "%s\n", r.markdown(partLen))
	}
	t.Logf("window %s, 10 s segments, 1 s parts, demo publisher 20 updates/s (≈13/s on feed prices)\n%s", window, table.String())
	if out := os.Getenv("MARQUEE_BENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(table.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}

type partsBenchRow struct {
	viewers      int
	edge         bool
	connected    int64
	perPart      float64 // origin parts/{k} responses per part that ended in the window
	uptoPerPart  float64
	held         float64 // mean of marquee_http_open_streams{mode="part"}
	originCPU    float64 // cores
	varnishCPU   float64
	viewersCPU   float64
	ttfb50       float64
	ttfb99       float64
	lat50, lat99 float64
	errors       int64
}

func (r partsBenchRow) markdown(partLen time.Duration) string {
	edge, vcpu := "none", "—"
	if r.edge {
		edge, vcpu = "Varnish, buffering", fmt.Sprintf("%.1f", 100*r.varnishCPU)
	}
	met := "yes"
	if r.lat50 > float64((partLen+250*time.Millisecond)/time.Millisecond) {
		met = "**no**"
	}
	return fmt.Sprintf("| %d | %s | %d | %.2f | %.2f | %.1f | %.1f | %s | %.1f | %.1f / %.1f | %.1f / %.1f | %s | %d |",
		r.viewers, edge, r.connected, r.perPart, r.uptoPerPart, r.held, 100*r.originCPU, vcpu, 100*r.viewersCPU,
		r.ttfb50, r.ttfb99, r.lat50, r.lat99, met, r.errors)
}

// partsBenchRun runs n parts-mode viewers of feed prices against the origin
// or a fresh buffering Varnish edge and measures the steady state over
// window.
func partsBenchRun(t *testing.T, o *marqueeProc, ssebench string, n int, edge bool, window, partLen time.Duration) partsBenchRow {
	t.Helper()
	const ramp, settle = 10 * time.Second, 5 * time.Second
	target := "http://" + o.addr
	var v *Varnish
	if edge {
		v = StartVarnish(t, VarnishOptions{Backend: o.addr, VCL: "marquee-buffered.vcl", Threads: n/2 + 100})
		target = v.URL
	}
	ctx, cancel := context.WithTimeout(context.Background(), ramp+settle+window+2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, ssebench, "-mode", "parts", "-url", target, "-feed", "prices", "-viewers", strconv.Itoa(n),
		"-ramp", ramp.String(), "-duration", (ramp + settle + window + 3*time.Second).String(), "-json")
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(ramp + settle)

	counts := func() (part, upto float64) {
		name := "marquee_part_responses_total"
		part = o.metrics(t, []string{name}, `feed="prices",kind="part"`)[name]
		upto = o.metrics(t, []string{name}, `feed="prices",kind="upto"`)[name]
		return part, upto
	}
	open := func() float64 {
		return o.metrics(t, []string{"marquee_http_open_streams"}, `mode="part"`)["marquee_http_open_streams"]
	}
	p0, u0 := counts()
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
		time.Sleep(250 * time.Millisecond)
	}
	t1 := time.Now()
	el := t1.Sub(t0).Seconds()
	c1, _ := procCPU(o.cmd.Process.Pid)
	b1, _ := procCPU(cmd.Process.Pid)
	p1, u1 := counts()
	row := partsBenchRow{viewers: n, edge: edge}
	if v != nil {
		v1, _ := cpuTime(v.cmd.Process.Pid)
		row.varnishCPU = (v1 - v0).Seconds() / el
		v.LogStats()
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ssebench: %v\n%s", err, errb.String())
	}
	var rep ssebenchReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("ssebench report: %v: %s", err, out.String())
	}
	var sum float64
	for _, s := range samples {
		sum += s
	}
	// Parts that ended within the window: the origin answers a part (once
	// per edge) just after it ends.
	parts := float64(t1.Truncate(partLen).Sub(t0.Truncate(partLen)) / partLen)
	row.connected = rep.PeakConnected
	row.perPart = (p1 - p0) / parts
	row.uptoPerPart = (u1 - u0) / parts
	row.held = sum / float64(len(samples))
	row.originCPU = (c1 - c0).Seconds() / el
	row.viewersCPU = (b1 - b0).Seconds() / el
	row.ttfb50, row.ttfb99 = rep.TTFBP50, rep.TTFBP99
	row.lat50, row.lat99 = rep.LatencyP50, rep.LatencyP99
	row.errors = rep.Errors
	return row
}
