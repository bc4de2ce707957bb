// Command marquee is the CDN-friendly broadcast origin: it consumes feeds
// from NATS and serves them as segmented Server-Sent Events.
//
// `marquee token -feed NAME` prints the current token of a protected feed
// (see tokenMain).
//
// With no MARQUEE_NATS_URL it starts an embedded NATS server with JetStream
// and a demo publisher, so `go run ./cmd/marquee` shows a live demo.
// Every setting is an environment variable; see README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "token" {
		// marquee token -feed NAME [-key ID] [-at RFC3339]: mint a token.
		os.Exit(tokenMain(os.Args[2:], os.Environ(), time.Now(), os.Stdout, os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Environ(), os.Stdout, nil); err != nil {
		fmt.Fprintln(os.Stderr, "marquee:", err)
		os.Exit(1)
	}
}
