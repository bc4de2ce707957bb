// Command ssebench is a load generator and latency meter for marquee: it
// opens many viewers against an origin or an edge, follows segments the way
// marquee's browser client does (stream mode), follows parts (parts mode:
// the descriptor, upto/{k} of the part in progress, then parts/{k+1}, … one
// request outstanding, across segment boundaries) or holds direct-mode
// streams, and reports how many were connected, time to first byte,
// publish-to-receive latency of updates, hand-over gaps, bytes and errors.
//
//	ssebench -url http://127.0.0.1:6081 -feed prices -viewers 1000 -duration 60s -ramp 10s
//	ssebench -url http://127.0.0.1:6081 -feed prices -viewers 1000 -mode parts
//
// It is bounded: it stops by itself after -duration (viewers join evenly
// over -ramp within it) and never opens more than -viewers streams at once.
// Latency is measured against the "time" (unix ms) each update carries,
// which is the NATS server's clock: run it on the same host or a host with
// a synchronised clock. To open more connections than one source address
// has ephemeral ports for, spread them with -local-addrs 127.0.0.1-127.0.0.20.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"marquee/wire"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "ssebench:", err)
		}
		os.Exit(2)
	}
}

// run is the whole program: it parses args, fetches the descriptor, runs
// the viewers for -duration and writes the report to stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	b := newBench(cfg)
	defer b.client.CloseIdleConnections()
	if err := b.describe(ctx); err != nil {
		return err
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i := range cfg.viewers {
		wg.Go(func() {
			t := time.NewTimer(cfg.ramp * time.Duration(i) / time.Duration(cfg.viewers))
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
			switch cfg.mode {
			case wire.ModeDirect:
				b.direct(ctx)
			case wire.ModeParts:
				b.parts(ctx)
			default:
				b.stream(ctx)
			}
		})
	}
	<-ctx.Done()
	endConnected := b.connected.Load()
	wg.Wait()
	r := b.report(time.Since(start), endConnected)
	if cfg.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	r.writeText(stdout)
	return nil
}
