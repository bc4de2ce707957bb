// Command feedsim publishes demo price and score feeds to a NATS server:
// the same publisher that `go run ./cmd/marquee` embeds, for driving a
// marquee that is pointed at an existing NATS, or for load.
//
//	go run ./cmd/feedsim -nats nats://127.0.0.1:4222 -rate 50 -duration 10m
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/nats-io/nats.go"

	"marquee/feed"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "feedsim:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("feedsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("nats", nats.DefaultURL, "NATS server URL")
	rate := fs.Float64("rate", 5, "updates per second, all feeds together")
	seed := fs.Uint64("seed", 0, "random seed (0: time-based)")
	prefix := fs.String("prefix", "feeds", "subject prefix")
	duration := fs.Duration("duration", 0, "stop after this long (0: until interrupted)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := feed.DefaultDemoConfig()
	cfg.Rate, cfg.Seed, cfg.SubjectPrefix = *rate, *seed, *prefix
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	nc, err := nats.Connect(*url, nats.Name("feedsim"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connect %s: %w", *url, err)
	}
	defer nc.Close()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	log.Info("publishing", "nats", *url, "rate", *rate, "prefix", *prefix)
	err = feed.NewDemo(cfg, nc, log).Run(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		err = nil
	}
	if ferr := nc.Flush(); err == nil && ferr != nil && !errors.Is(ferr, nats.ErrConnectionClosed) {
		err = ferr
	}
	return err
}
