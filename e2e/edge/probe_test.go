//go:build unix

package edge_test

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"marquee/internal/testenv"
)

// buildCommand builds ./cmd/<name> into a temporary directory.
func buildCommand(t *testing.T, name string) string {
	t.Helper()
	gobin := testenv.NeedProgram(t, "go")
	out := filepath.Join(t.TempDir(), name)
	cmd := exec.Command(gobin, "build", "-o", out, "marquee/cmd/"+name)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", name, err, b)
	}
	return out
}

// TestCdnprobe runs the cdnprobe command in stream mode (-mode stream, the
// exit status of stream mode alone), 50 viewers each, against three targets
// on one origin at once: the Varnish edge with marquee.vcl (PASS),
// the same edge with marquee-buffered.vcl (FAIL: it collapses but buffers),
// and the bare origin (FAIL: no collapsing).
func TestCdnprobe(t *testing.T) {
	bin := buildCommand(t, "cdnprobe")
	s := startStack(t)
	edge := StartVarnish(t, VarnishOptions{Backend: s.origin.Addr})
	buffered := StartVarnish(t, VarnishOptions{Backend: s.origin.Addr, VCL: "marquee-buffered.vcl"})
	type target struct {
		name    string
		base    string
		status  int
		verdict string   // prefix of the verdict line
		want    []string // in the verdict
		notWant []string
	}
	targets := []target{
		{"varnish", edge.URL, 0, "VERDICT: PASS stream mode collapses", []string{"50 viewers, 1 origin response per segment"}, nil},
		{"buffered", buffered.URL, 1, "VERDICT: FAIL buffers:", nil, []string{"collapse"}},
		{"origin", s.origin.URL, 1, "VERDICT: FAIL no collapse: 50 viewers saw 50 distinct origin responses", nil, []string{"buffers"}},
	}
	args := make([][]string, len(targets))
	for i, tc := range targets {
		args[i] = []string{"-mode", "stream", "-viewers", "50", tc.base, "scores"}
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
			verdict := lines[len(lines)-1]
			if o.status != tc.status || !strings.HasPrefix(verdict, tc.verdict) {
				t.Fatalf("exit %d, verdict %q; want exit %d, verdict %q…", o.status, verdict, tc.status, tc.verdict)
			}
			for _, w := range tc.want {
				if !strings.Contains(verdict, w) {
					t.Errorf("verdict %q lacks %q", verdict, w)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(verdict, w) {
					t.Errorf("verdict %q contains %q", verdict, w)
				}
			}
		})
	}
}

type probeOutcome struct {
	status         int
	stdout, stderr string
	err            error
}

// runCdnprobe runs the cdnprobe binary once per argument list, all at once
// (not as parallel subtests, which -parallel would serialise on a two-core
// machine), and returns each run's exit status and output.
func runCdnprobe(bin string, args [][]string) []probeOutcome {
	outcomes := make([]probeOutcome, len(args))
	var wg sync.WaitGroup
	for i, a := range args {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var stdout, stderr bytes.Buffer
			cmd := exec.CommandContext(ctx, bin, a...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
				outcomes[i].status, err = ee.ExitCode(), nil
			}
			outcomes[i].stdout, outcomes[i].stderr, outcomes[i].err = stdout.String(), stderr.String(), err
		})
	}
	wg.Wait()
	return outcomes
}
