// Command feedsim publishes demo price and score feeds to a NATS server:
// the same publisher that `go run ./cmd/marquee` embeds, for driving a
// marquee that is pointed at an existing NATS, or for load. With -webhook
// it posts the same updates to a marquee ingest listener instead, signed
// per Standard Webhooks, one batch per feed per tick.
//
//	go run ./cmd/feedsim -nats nats://127.0.0.1:4222 -rate 50 -duration 10m
//	go run ./cmd/feedsim -webhook http://127.0.0.1:8081 -secret @secret.txt
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"marquee/feed"
	"marquee/feed/demogen"
	"marquee/ingest"
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
	webhook := fs.String("webhook", "", "post signed webhooks to this marquee ingest listener (http://host:port) instead of publishing to NATS")
	secret := fs.String("secret", "", "the webhook signing secret (whsec_...), or @file to read it from a file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *webhook != "" {
		return runWebhook(ctx, *webhook, *secret, *rate, *seed, *duration, stderr)
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

func runWebhook(ctx context.Context, base, secret string, rate float64, seed uint64, duration time.Duration, stderr io.Writer) error {
	if path, ok := strings.CutPrefix(secret, "@"); ok {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("-secret: %w", err)
		}
		secret = strings.TrimSpace(string(b))
	}
	if _, err := ingest.Sign(secret, "check", 0, nil); err != nil {
		return fmt.Errorf("-secret: %w", err)
	}
	if !(rate > 0 && rate <= feed.MaxDemoRate) {
		return fmt.Errorf("-rate must be above 0 and at most %d", feed.MaxDemoRate)
	}
	if duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, duration)
		defer cancel()
	}
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	log.Info("posting webhooks", "url", strings.TrimRight(base, "/")+"/v1/ingest/{feed}", "rate", rate)
	s := &webhookSim{
		base: strings.TrimRight(base, "/"), secret: secret, rate: rate, log: log,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}},
		idBase: fmt.Sprintf("feedsim_%d", time.Now().UnixNano()),
	}
	return s.run(ctx, demogen.New(seed))
}
