package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"marquee/feed"
	"marquee/origin"
	"marquee/segmenter"
)

// listening is told the bound addresses once the listeners are up (tests
// use it to learn random ports).
type listening func(public, admin string)

// run is the whole program: it returns when ctx ends and the drain is done.
// Teardown happens in reverse order of setup.
func run(ctx context.Context, environ []string, stdout io.Writer, ready listening) error {
	cfg, err := parseConfig(environ)
	if err != nil {
		return err
	}
	return runConfig(ctx, cfg, stdout, ready)
}

func runConfig(ctx context.Context, cfg config, stdout io.Writer, ready listening) (err error) {
	if err := cfg.Validate(); err != nil {
		return err
	}
	level, _ := cfg.level()
	opts := &slog.HandlerOptions{Level: level}
	var handler slog.Handler = slog.NewTextHandler(os.Stderr, opts)
	if cfg.LogFormat == "json" {
		handler = slog.NewJSONHandler(os.Stderr, opts)
	}
	log := slog.New(handler)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	hub, err := segmenter.New(cfg.Segmenter, segmenter.SystemClock{}, log)
	if err != nil {
		return err
	}
	for _, name := range cfg.NATS.Feeds {
		if err := hub.Ensure(name); err != nil {
			return fmt.Errorf("MARQUEE_FEEDS: %s: %w", name, err)
		}
	}

	// NATS: an existing server, or an embedded one with JetStream.
	var embedded *server.Server
	natsCfg := cfg.NATS
	if natsCfg.URL == "" {
		ecfg := natsCfg.Embedded
		if ecfg.DataDir == "" {
			dir, err := feed.DefaultDataDir()
			if err != nil {
				return fmt.Errorf("MARQUEE_DATA_DIR: no default (%w); set it", err)
			}
			ecfg.DataDir = dir
		}
		ecfg.DataDir, _ = filepath.Abs(ecfg.DataDir)
		embedded, err = feed.StartEmbedded(ecfg, log)
		if err != nil {
			return fmt.Errorf("embedded nats: %w", err)
		}
		defer func() {
			embedded.Shutdown()
			embedded.WaitForShutdown()
		}()
		natsCfg.URL = embedded.ClientURL()
		log.Info("embedded NATS started", "url", natsCfg.URL, "store", ecfg.DataDir)
	}
	fm := feed.NewMetrics(reg)
	nc, err := feed.Connect(natsCfg, log, fm)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	defer nc.Close()
	demo := embedded != nil && natsCfg.Demo.Enabled
	if demo && natsCfg.JetStream {
		if err := feed.ResetDemoScores(ctx, nc, natsCfg); err != nil {
			log.Warn("demo: could not reset stored games", "err", err)
		}
	}
	src, err := feed.NewSource(natsCfg, nc, hub, log, fm)
	if err != nil {
		return err
	}

	srv := origin.New(cfg.Origin, hub, func() error {
		st := src.Status()
		switch {
		case !st.Connected:
			return errors.New("nats disconnected")
		case !st.Loaded:
			return errors.New("loading state")
		}
		return nil
	}, origin.NewMetrics(reg), log)

	// Background work, each with an owner that waits for it.
	bg, stopBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	wg.Go(func() { hub.Run(bg) })
	wg.Go(func() {
		if err := src.Run(bg); err != nil {
			errc <- fmt.Errorf("feed source: %w", err)
		}
	})
	if demo {
		demo := feed.NewDemo(natsCfg.Demo, nc, log)
		wg.Go(func() { demo.Run(bg) })
	}
	defer func() {
		stopBG()
		hub.Abort()
		wg.Wait()
	}()

	pub, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("MARQUEE_ADDR: listen %s: %w", cfg.Addr, err)
	}
	httpSrv := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(handler, slog.LevelDebug),
	}
	wg.Go(func() {
		if err := httpSrv.Serve(pub); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("public listener: %w", err)
		}
	})
	adminAddr := ""
	var adminSrv *http.Server
	if cfg.AdminAddr != "" {
		adm, err := net.Listen("tcp", cfg.AdminAddr)
		if err != nil {
			httpSrv.Close()
			return fmt.Errorf("MARQUEE_ADMIN_ADDR: listen %s: %w", cfg.AdminAddr, err)
		}
		adminAddr = adm.Addr().String()
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		mux.Handle("GET /healthz", srv.Handler())
		mux.Handle("GET /readyz", srv.Handler())
		adminSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		wg.Go(func() {
			if err := adminSrv.Serve(adm); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("admin listener: %w", err)
			}
		})
	}

	base := "http://" + displayAddr(pub.Addr().String())
	fmt.Fprintf(stdout, "marquee listening on %s\n", base)
	fmt.Fprintf(stdout, "  dashboard:  %s/\n", base)
	fmt.Fprintf(stdout, "  feeds:      %s/v1/feeds\n", base)
	fmt.Fprintf(stdout, "  stream:     curl -N %s/v1/feeds/prices/segments/$(curl -s %s/v1/feeds/prices | sed 's/.*\"segment\":\\([0-9]*\\).*/\\1/')\n", base, base)
	fmt.Fprintf(stdout, "  direct:     curl -N %s/v1/feeds/prices/events\n", base)
	if adminAddr != "" {
		fmt.Fprintf(stdout, "  metrics:    http://%s/metrics\n", displayAddr(adminAddr))
	}
	if embedded != nil {
		fmt.Fprintf(stdout, "  nats:       %s (embedded, JetStream)\n", natsCfg.URL)
	}
	if ready != nil {
		ready(pub.Addr().String(), adminAddr)
	}

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err = <-errc:
		log.Error("fatal", "err", err)
	}

	// Drain for the CDN: readiness 503, then streams end in spread-out
	// batches (unfinished segments aborted), then the listeners close.
	dctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if derr := srv.Drain(dctx); derr != nil {
		log.Warn("drain incomplete", "err", derr)
	}
	hub.Abort()
	if serr := httpSrv.Shutdown(dctx); serr != nil {
		log.Warn("shutdown", "err", serr)
		httpSrv.Close()
	}
	if adminSrv != nil {
		adminSrv.Shutdown(dctx)
	}
	log.Info("stopped")
	return err
}

// displayAddr turns a bound address like [::]:8080 into one a person can open.
func displayAddr(a string) string {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return a
	}
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
