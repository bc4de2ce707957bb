//go:build linux

// Command compare measures marquee's direct mode side by side with Nchan
// (nginx with the Nchan module, one worker): the same meter, the same load,
// on loopback, a fresh server per run, rounds interleaved. For every
// subscriber count it prints, per server, the median and range over the
// rounds of
//
//   - server CPU seconds per million deliveries (utime + stime of the
//     server's processes from /proc, over the publishing window until
//     every delivery of it arrived or the drain timeout),
//   - publish → receive latency p50 and p99 (the publisher's clock is in
//     every message; meter and publisher are one process),
//   - RSS per idle subscriber (RSS with N idle subscribers minus RSS
//     before they connected, over N),
//
// and one line per figure with the ratio between the servers.
//
//	go run ./bench/compare                       # 1,000, 5,000, 10,000 subscribers, 3 rounds
//	go run ./bench/compare -subs 1000 -rounds 1  # a quick look
//	go run ./bench/compare -targets nchan,marquee,marquee-stream,marquee-base -base-rev acca388
//
// Targets: nchan; marquee (this tree's cmd/marquee, direct mode);
// marquee-nohandoff (the same binary with MARQUEE_HANDOFF=false);
// marquee-stream (stream mode, for its idle memory and cost);
// marquee-base (cmd/marquee built from git revision -base-rev: before/after
// in one run); floor (the least any server can do per delivery: one
// write(2) of the frame per socket from one loop, see floor.go). marquee
// reads from a NATS server this program runs
// in-process (core NATS, no JetStream); Nchan is published to over HTTP.
//
// It installs Debian's nginx-light and libnginx-mod-nchan with apt-get
// when they are missing (-install=false to refuse). It is bounded: every
// run stops by itself, subscribers are capped by the open-file limit, and
// everything runs on loopback, spread over 127.0.0.x source addresses.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) == 5 && os.Args[1] == "-floor-server" && os.Args[3] == "-floor-control" {
		if err := runFloor(os.Args[2], os.Args[4]); err != nil {
			fmt.Fprintln(os.Stderr, "compare: floor server:", err)
			os.Exit(2)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "compare:", err)
		}
		os.Exit(2)
	}
}

// config is the command line.
type config struct {
	subs       []int
	rounds     int
	rate       int
	duration   time.Duration
	size       int
	settle     time.Duration
	drain      time.Duration
	targets    []string
	install    bool
	baseRev    string
	localAddrs []netip.Addr
	verbose    bool
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	subs := fs.String("subs", "1000,5000,10000", "subscriber counts, comma-separated")
	fs.IntVar(&c.rounds, "rounds", 3, "interleaved rounds (a fresh server per run)")
	fs.IntVar(&c.rate, "rate", 10, "messages published per second")
	fs.DurationVar(&c.duration, "duration", 12*time.Second, "publishing window per run")
	fs.IntVar(&c.size, "size", 100, "published message size in bytes")
	fs.DurationVar(&c.settle, "settle", 5*time.Second, "idle time after the last subscriber connected, before RSS is read")
	fs.DurationVar(&c.drain, "drain", 3*time.Second, "how long after the last publish deliveries may still arrive")
	targets := fs.String("targets", "nchan,marquee,floor", "servers to run: nchan, marquee, marquee-nohandoff, marquee-stream, marquee-base, floor")
	fs.BoolVar(&c.install, "install", true, "apt-get install nginx-light and libnginx-mod-nchan when missing")
	fs.StringVar(&c.baseRev, "base-rev", "", "git revision that marquee-base is built from")
	local := fs.String("local-addrs", "127.0.0.2-127.0.0.61", "source addresses the subscribers are spread over (a range a-b or a comma list)")
	fs.BoolVar(&c.verbose, "v", false, "log each run's steps")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	for _, s := range strings.Split(*subs, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 15000 {
			return c, fmt.Errorf("-subs: %q is not a count between 1 and 15000", s)
		}
		c.subs = append(c.subs, n)
	}
	for _, t := range strings.Split(*targets, ",") {
		t = strings.TrimSpace(t)
		switch t {
		case "nchan", "marquee", "marquee-nohandoff", "marquee-stream", "marquee-base", "floor":
		default:
			return c, fmt.Errorf("-targets: unknown %q", t)
		}
		c.targets = append(c.targets, t)
	}
	switch {
	case c.rounds < 1 || c.rounds > 20:
		return c, fmt.Errorf("-rounds must be 1..20")
	case c.rate < 1 || c.rate > 1000:
		return c, fmt.Errorf("-rate must be 1..1000")
	case c.duration < time.Second || c.duration > 5*time.Minute:
		return c, fmt.Errorf("-duration must be 1s..5m")
	case c.size < 40 || c.size > 16<<10:
		return c, fmt.Errorf("-size must be 40..16384")
	}
	if slicesContains(c.targets, "marquee-base") && c.baseRev == "" {
		return c, fmt.Errorf("marquee-base needs -base-rev")
	}
	var err error
	if c.localAddrs, err = parseAddrs(*local); err != nil {
		return c, fmt.Errorf("-local-addrs: %w", err)
	}
	return c, nil
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func parseAddrs(s string) ([]netip.Addr, error) {
	if from, to, ok := strings.Cut(s, "-"); ok {
		a, err := netip.ParseAddr(from)
		if err != nil {
			return nil, err
		}
		b, err := netip.ParseAddr(to)
		if err != nil {
			return nil, err
		}
		var out []netip.Addr
		for x := a; x.Compare(b) <= 0 && len(out) < 1024; x = x.Next() {
			out = append(out, x)
		}
		return out, nil
	}
	var out []netip.Addr
	for _, f := range strings.Split(s, ",") {
		a, err := netip.ParseAddr(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if runtime.GOOS != "linux" {
		return errors.New("linux only (/proc, nginx from Debian)")
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil {
		for _, n := range cfg.subs {
			if uint64(n)+256 > rl.Cur {
				return fmt.Errorf("%d subscribers need %d open files, the limit is %d", n, n+256, rl.Cur)
			}
		}
	}
	logf := func(format string, a ...any) {
		if cfg.verbose {
			fmt.Fprintf(stderr, "# "+format+"\n", a...)
		}
	}
	env, err := prepare(ctx, cfg, stderr, logf)
	if err != nil {
		return err
	}
	defer env.close()

	fmt.Fprintf(stdout, "# compare: %s, %s, %d CPUs, Go %s\n", time.Now().UTC().Format(time.RFC3339), machine(), runtime.NumCPU(), runtime.Version())
	fmt.Fprintf(stdout, "# load: %d B messages at %d/s for %s, subscribers %v, %d rounds, targets %v\n", cfg.size, cfg.rate, cfg.duration, cfg.subs, cfg.rounds, cfg.targets)
	res := newResults()
	for round := range cfg.rounds {
		for _, n := range cfg.subs {
			order := append([]string(nil), cfg.targets...)
			if round%2 == 1 { // interleave: alternate who goes first
				for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
					order[i], order[j] = order[j], order[i]
				}
			}
			for _, t := range order {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				r, err := env.runOne(ctx, t, n, logf)
				if err != nil {
					fmt.Fprintf(stdout, "run round=%d target=%s subs=%d: error: %v\n", round+1, t, n, err)
					continue
				}
				r.round = round + 1
				fmt.Fprintln(stdout, r.line())
				res.add(t, n, r)
			}
		}
	}
	res.summary(stdout, cfg)
	return nil
}

// machine names the CPU model.
func machine() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// loadavg returns the 1-minute load average.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return f[0] + " " + f[1] + " " + f[2]
}
