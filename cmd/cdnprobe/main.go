// Command cdnprobe checks that a CDN edge in front of marquee does what
// marquee needs, and says which delivery mode suits it: stream mode where
// the edge collapses all viewers of a segment into one origin response and
// streams it to every viewer as it is written, parts mode where the edge
// collapses but buffers cacheable responses (Cloudflare documents that it
// does).
//
//	cdnprobe [flags] <edge-base-url> [feed]
//	cdnprobe https://live.example.com scores
//	cdnprobe -mode stream https://live.example.com scores
//
// With -mode auto (the default) it runs both probes at once, -viewers each:
// stream-mode viewers follow segments the way marquee's browser client does,
// parts-mode viewers read the descriptor, then upto/{k} of the part in
// progress and every following part. It reports, per segment, how many
// distinct origin responses (Marquee-Response-Id) the viewers of a segment
// or of a part shared, whether bytes arrived progressively, late joiners'
// time to snapshot, heartbeat and hand-over gaps, whether held parts arrived
// promptly, publish-to-viewer latency, whether every parts-mode viewer
// applied every update exactly once, and the cache headers the edge
// returned. It ends with the recommendation, the MARQUEE_CLIENT_MODE to set
// and the verdict:
//
//	RECOMMEND: parts (edge buffers cacheable responses; parts collapse 50→1 per part, median part latency 0.52 s)
//	MARQUEE_CLIENT_MODE=parts
//	VERDICT: PASS parts mode works through this edge; stream mode does not
//
// The last line is the verdict; the exit status is 0 for PASS (auto: at
// least one mode works; stream or parts: that mode works), 1 for FAIL and 2
// when the probe could not run.
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

	"marquee/cdn/probe"
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
			"segment (stream mode) or per part (parts mode) and says which mode suits it.\n"+
			"Exit status: 0 PASS, 1 FAIL, 2 could not run.\n\nflags:\n")
		fs.PrintDefaults()
	}
	viewers := fs.Int("viewers", probe.DefaultViewers, "number of viewers")
	stagger := fs.Duration("stagger", 0, "window over which viewers join (default: half a segment)")
	random := fs.Bool("random", false, "join at random moments within -stagger instead of evenly spaced")
	follow := fs.Int("follow", 1, "segments every viewer watches whole after the last join")
	noise := fs.Bool("noise", true, "mix in requests with cookies, Last-Event-ID and query strings, as real viewers send")
	ratio := fs.Float64("min-ratio", probe.DefaultMinCollapseRatio, "fewest viewers per origin response that counts as collapsing")
	threshold := fs.Duration("buffer-threshold", 0, "delivery delay that counts as buffering (default: a quarter segment, 0.5s..5s)")
	slack := fs.Duration("part-slack", 0, "parts mode: how late after its part ended a held part may arrive (default: half a part, 250ms..2s)")
	mode := fs.String("mode", "auto", "auto (probe both modes and recommend one; PASS if either works), stream or parts")
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
	if *mode != "auto" && *mode != "stream" && *mode != "parts" {
		fmt.Fprintf(stderr, "cdnprobe: -mode must be auto, stream or parts, got %q\n", *mode)
		return exitUsage
	}
	cfg := probe.Config{
		Base:             fs.Arg(0),
		Feed:             fs.Arg(1),
		Viewers:          *viewers,
		Stagger:          *stagger,
		Random:           *random,
		Follow:           *follow,
		Noise:            *noise,
		MinCollapseRatio: *ratio,
		BufferThreshold:  *threshold,
		PartSlack:        *slack,
		Header:           http.Header(hdr),
	}
	if *verbose {
		cfg.Logf = func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	switch *mode {
	case "stream":
		res, err := probe.Stream(ctx, cfg)
		if err != nil {
			return probeError(stderr, err)
		}
		res.WriteReport(stdout)
		return status(res.Pass)
	case "parts":
		res, err := probe.Parts(ctx, cfg)
		if err != nil {
			return probeError(stderr, err)
		}
		res.WriteReport(stdout)
		return status(res.Pass)
	}
	// auto: both probes at once, then the recommendation.
	stream, streamErr, parts, pErr := probe.Both(ctx, cfg)
	if streamErr != nil && pErr != nil {
		return probeError(stderr, streamErr)
	}
	fmt.Fprintf(stdout, "== stream mode ==\n")
	if stream != nil {
		stream.WriteReport(stdout)
	} else {
		fmt.Fprintf(stdout, "could not probe: %v\n", streamErr)
	}
	fmt.Fprintf(stdout, "\n== parts mode ==\n")
	if parts != nil {
		parts.WriteReport(stdout)
	} else {
		fmt.Fprintf(stdout, "could not probe: %v\n", pErr)
	}
	fmt.Fprintf(stdout, "\n== recommendation ==\n")
	rec := probe.Recommend(stream, streamErr, parts, pErr)
	rec.WriteReport(stdout)
	return status(rec.Pass)
}

// probeError reports a probe that could not run and returns the exit
// status: FAIL when it was cut short, could-not-run otherwise.
func probeError(stderr io.Writer, err error) int {
	fmt.Fprintln(stderr, "cdnprobe:", err)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return exitFail
	}
	return exitUsage
}

func status(pass bool) int {
	if pass {
		return exitPass
	}
	return exitFail
}
