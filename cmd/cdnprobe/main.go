// Command cdnprobe checks that a CDN edge in front of marquee does what
// marquee needs: it collapses all viewers of a segment into one origin
// response, and it streams that response to every viewer as it is written
// instead of buffering it until the segment ends.
//
//	cdnprobe [flags] <edge-base-url> [feed]
//	cdnprobe https://live.example.com scores
//
// It opens -viewers viewers (default 50) through the edge at staggered
// moments, each following segments the way marquee's browser client does,
// and reports per segment how many distinct origin responses
// (Marquee-Response-Id) the viewers shared, whether bytes arrived
// progressively, late joiners' time to snapshot, heartbeat and hand-over
// gaps, and the cache headers the edge returned. The last line is the
// verdict; the exit status is 0 for PASS, 1 for FAIL and 2 when the probe
// could not run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"marquee/cdn"
)

// Exit statuses.
const (
	exitPass  = 0
	exitFail  = 1
	exitUsage = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// headerFlag collects repeated -header "Name: value" flags.
type headerFlag http.Header

func (h headerFlag) String() string { return "" }

func (h headerFlag) Set(s string) error {
	name, value, ok := strings.Cut(s, ":")
	if !ok || strings.TrimSpace(name) == "" {
		return fmt.Errorf("want \"Name: value\", got %q", s)
	}
	http.Header(h).Add(strings.TrimSpace(name), strings.TrimSpace(value))
	return nil
}

// run is the whole program; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cdnprobe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: cdnprobe [flags] <edge-base-url> [feed]\n\n"+
			"Checks that a CDN edge collapses marquee viewers into one origin response per\n"+
			"segment and streams it. Exit status: 0 PASS, 1 FAIL, 2 could not run.\n\nflags:\n")
		fs.PrintDefaults()
	}
	viewers := fs.Int("viewers", cdn.DefaultProbeViewers, "number of viewers")
	stagger := fs.Duration("stagger", 0, "window over which viewers join (default: half a segment)")
	random := fs.Bool("random", false, "join at random moments within -stagger instead of evenly spaced")
	follow := fs.Int("follow", 1, "segments every viewer watches whole after the last join")
	noise := fs.Bool("noise", true, "mix in requests with cookies, Last-Event-ID and query strings, as real viewers send")
	ratio := fs.Float64("min-ratio", cdn.DefaultMinCollapseRatio, "fewest viewers per origin response that counts as collapsing")
	threshold := fs.Duration("buffer-threshold", 0, "delivery delay that counts as buffering (default: a quarter segment, 0.5s..5s)")
	timeout := fs.Duration("timeout", 15*time.Minute, "give up after this long")
	verbose := fs.Bool("v", false, "log progress to stderr")
	hdr := headerFlag{}
	fs.Var(hdr, "header", "extra request header \"Name: value\" (repeatable)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		fs.Usage()
		return exitUsage
	}
	cfg := cdn.ProbeConfig{
		Base:             fs.Arg(0),
		Feed:             fs.Arg(1),
		Viewers:          *viewers,
		Stagger:          *stagger,
		Random:           *random,
		Follow:           *follow,
		Noise:            *noise,
		MinCollapseRatio: *ratio,
		BufferThreshold:  *threshold,
		Header:           http.Header(hdr),
	}
	if *verbose {
		cfg.Logf = func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	res, err := cdn.Probe(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "cdnprobe:", err)
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return exitFail
		}
		return exitUsage
	}
	res.WriteReport(stdout)
	if !res.Pass {
		return exitFail
	}
	return exitPass
}
