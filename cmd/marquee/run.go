package main

import (
	"context"
	"io"
	"log/slog"
	"os"

	"marquee/internal/app"
)

// listening is told the bound addresses once the listeners are up (tests
// use it to learn random ports).
type listening func(public, admin string)

// run is the whole program: it parses the environment, builds the app and
// runs it until ctx ends and the drain is done.
func run(ctx context.Context, environ []string, stdout io.Writer, ready listening) error {
	cfg, err := parseConfig(environ)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := cfg.logger(os.Stderr)
	for _, u := range cfg.unknown {
		if u.Like != "" {
			log.Warn("not a setting, ignored: "+u.Name, "did_you_mean", u.Like)
		} else {
			log.Warn("not a setting, ignored: " + u.Name)
		}
	}
	a, err := app.New(cfg.Config, app.Deps{Log: log, Stdout: stdout})
	if err != nil {
		return err
	}
	if ready != nil {
		ready(a.Addr(), a.AdminAddr())
	}
	return a.Run(ctx)
}

// logger returns the logger the settings ask for, writing to w.
func (c config) logger(w io.Writer) *slog.Logger {
	level, _ := c.level()
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
