//go:build unix

package edge_test

import (
	"strings"
	"testing"
)

// TestCdnprobeRecommend runs the cdnprobe command in its default mode
// (-mode auto: both probes, 50 viewers each, then a recommendation) against
// three targets on one origin at once: the Varnish edge with marquee.vcl
// (recommend stream: it streams to late joiners, and parts work too), the
// same edge with marquee-buffered.vcl (recommend parts: stream mode is
// buffered, parts collapse and are live), and the bare origin (FAIL: no
// collapsing in either mode).
func TestCdnprobeRecommend(t *testing.T) {
	bin := buildCommand(t, "cdnprobe")
	s := startStack(t)
	edge := StartVarnish(t, VarnishOptions{Backend: s.origin.Addr})
	buffered := StartVarnish(t, VarnishOptions{Backend: s.origin.Addr, VCL: "marquee-buffered.vcl"})
	type target struct {
		name      string
		base      string
		status    int
		recommend string // prefix of the RECOMMEND line
		env       string // the MARQUEE_CLIENT_MODE line
		verdict   string // prefix of the last line
		want      []string
	}
	targets := []target{
		{"varnish", edge.URL, 0, "RECOMMEND: stream (edge streams cacheable responses to late joiners; segments collapse 50→1",
			"MARQUEE_CLIENT_MODE=stream", "VERDICT: PASS stream mode works through this edge (parts mode too)",
			[]string{"VERDICT: PASS stream mode collapses and streams", "VERDICT: PASS parts mode collapses and is live"}},
		{"buffered", buffered.URL, 0, "RECOMMEND: parts (edge buffers cacheable responses; parts collapse 50→1 per part, median part latency",
			"MARQUEE_CLIENT_MODE=parts", "VERDICT: PASS parts mode works through this edge; stream mode does not",
			[]string{"VERDICT: FAIL buffers:", "VERDICT: PASS parts mode collapses and is live"}},
		{"origin", s.origin.URL, 1, "RECOMMEND: none (stream mode: no collapse: 50 viewers saw 50 distinct origin responses; parts mode: no collapse:",
			"MARQUEE_CLIENT_MODE: no setting helps", "VERDICT: FAIL neither stream nor parts mode works through this edge",
			nil},
	}
	args := make([][]string, len(targets))
	for i, tc := range targets {
		args[i] = []string{"-viewers", "50", "-part-slack", "1m", tc.base, "scores"}
	}
	outcomes := runCdnprobe(bin, args)
	for i, tc := range targets {
		t.Run(tc.name, func(t *testing.T) {
			o := outcomes[i]
			if o.err != nil {
				t.Fatalf("cdnprobe: %v\n%s", o.err, o.stderr)
			}
			t.Logf("cdnprobe %s scores → exit %d\n%s%s", tc.base, o.status, o.stdout, o.stderr)
			lines := strings.Split(strings.TrimSpace(o.stdout), "\n")
			if len(lines) < 3 {
				t.Fatalf("output too short")
			}
			rec, env, verdict := lines[len(lines)-3], lines[len(lines)-2], lines[len(lines)-1]
			if o.status != tc.status || !strings.HasPrefix(verdict, tc.verdict) {
				t.Errorf("exit %d, verdict %q; want exit %d, verdict %q…", o.status, verdict, tc.status, tc.verdict)
			}
			if !strings.HasPrefix(rec, tc.recommend) {
				t.Errorf("recommendation %q, want %q…", rec, tc.recommend)
			}
			if !strings.HasPrefix(env, tc.env) {
				t.Errorf("setting %q, want %q…", env, tc.env)
			}
			for _, w := range tc.want {
				if !strings.Contains(o.stdout, w) {
					t.Errorf("report lacks %q", w)
				}
			}
		})
	}
}
