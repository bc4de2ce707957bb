package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"marquee/cdn"
	"marquee/feed"
	"marquee/ingest"
	"marquee/origin"
	"marquee/segmenter"
)

// Timeouts of the public listener. There is no server-wide WriteTimeout:
// streams set a deadline per batch (origin.Config.WriteTimeout).
const (
	// PublicReadHeaderTimeout bounds reading a request's headers.
	PublicReadHeaderTimeout = 10 * time.Second
	// PublicIdleTimeout closes idle keep-alive connections. A CDN must
	// close its idle origin connections sooner (terraform/cloudfront's
	// origin_keepalive_timeout is checked against it).
	PublicIdleTimeout = 2 * time.Minute
)

// adminMux builds the admin listener's mux from cdn.AdminRoutes: every
// route in the table needs a handler and every handler a route.
func adminMux(handlers map[string]http.Handler) (*http.ServeMux, error) {
	mux := http.NewServeMux()
	for _, rt := range cdn.AdminRoutes {
		h, ok := handlers[rt.Pattern]
		if !ok {
			return nil, fmt.Errorf("admin route %s has no handler", rt.Pattern)
		}
		mux.Handle("GET "+rt.Pattern, h)
		delete(handlers, rt.Pattern)
	}
	for p := range handlers {
		return nil, fmt.Errorf("admin handler %s is not in cdn.AdminRoutes", p)
	}
	return mux, nil
}

// refuseBodies answers a request that announces a body with 400 and
// closes its connection without reading the body: the admin listener, like
// the public one, takes no request bodies.
func refuseBodies(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
			w.Header().Set("Connection", "close")
			w.Header().Set("Cache-Control", "no-store")
			http.NewResponseController(w).SetReadDeadline(time.Now().Add(time.Second))
			http.Error(w, "request bodies are not accepted", http.StatusBadRequest)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Deps are what an App is given rather than builds.
type Deps struct {
	// Log receives every component's logs. Nil discards.
	Log *slog.Logger
	// Stdout receives the start-up banner (the URLs to open). Nil: none.
	Stdout io.Writer
	// Registry is where every metric is registered and what the admin
	// listener serves. Nil: a new registry with the Go and process
	// collectors.
	Registry *prometheus.Registry
	// Testing holds knobs for tests only; the binary leaves it zero.
	Testing Testing
}

// Testing are test-only knobs, fenced off from Config (which is what an
// operator can set).
type Testing struct {
	// ShortSegments skips the operator range of MARQUEE_SEGMENT_LENGTH
	// (10s–300s) so tests can rotate every few seconds; the segmenter's
	// structural rules still apply.
	ShortSegments bool
	// IngestNow is the clock of the ingest listener's timestamp checks and
	// rate limits. Nil: time.Now.
	IngestNow func() time.Time
}

// App is one running marquee origin.
type App struct {
	cfg     Config
	log     *slog.Logger
	out     io.Writer
	reg     *prometheus.Registry
	natsURL string

	store *embeddedStore // the embedded NATS server; nil with an external NATS
	nc    *nats.Conn
	hub   *segmenter.Hub
	src   feed.Source
	demo  *feed.Demo // nil unless the embedded demo runs
	srv   *origin.Server
	ing   *ingest.Server // nil unless MARQUEE_INGEST_ADDR is set

	pub, adm          net.Listener // adm nil when the admin listener is off
	maxConns          int          // cap on concurrent public connections
	httpSrv, adminSrv *http.Server

	bg     context.Context // background work; cancelled by Close
	stopBG context.CancelFunc
	wg     sync.WaitGroup // owns every goroutine Run starts
	errc   chan error     // fatal errors of background work
	quit   chan struct{}  // closed by Close

	runOnce   sync.Once
	closeOnce sync.Once
	closeErr  error
}

// New constructs the whole program: it validates cfg, starts the embedded
// NATS server when cfg.NATS.URL is empty, connects, builds the hub, the feed
// source and the origin, and binds the listeners. Nothing consumes or
// serves until Run. On error everything built so far is released.
func New(cfg Config, deps Deps) (_ *App, err error) {
	if err := cfg.validate(deps.Testing.ShortSegments); err != nil {
		return nil, err
	}
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := deps.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	a := &App{cfg: cfg, log: log, out: deps.Stdout, reg: reg, errc: make(chan error, 8), quit: make(chan struct{})}
	a.bg, a.stopBG = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			a.release()
		}
	}()

	a.hub, err = segmenter.New(cfg.Segmenter, segmenter.SystemClock{}, log)
	if err != nil {
		return nil, err
	}
	for _, name := range cfg.NATS.Feeds {
		if err := a.hub.Ensure(name); err != nil {
			return nil, fmt.Errorf("MARQUEE_FEEDS: %s: %w", name, err)
		}
	}

	// NATS: an existing server, or an embedded one with JetStream.
	ncfg := cfg.NATS
	if ncfg.URL == "" {
		ecfg := ncfg.Embedded
		if ecfg.DataDir == "" {
			dir, err := feed.DefaultDataDir()
			if err != nil {
				return nil, fmt.Errorf("MARQUEE_DATA_DIR: no default (%w); set it", err)
			}
			ecfg.DataDir = dir
		}
		ecfg.DataDir, _ = filepath.Abs(ecfg.DataDir)
		a.store, err = startStore(ecfg, log)
		if err != nil {
			return nil, err
		}
		ncfg.URL = a.store.URL()
	}
	a.natsURL = ncfg.URL
	if cfg.Ingest.Enabled() {
		// A replay of a signed request within its tolerance is stored once.
		ncfg.DuplicateWindow = cfg.Ingest.DuplicateWindow()
	}
	fm := feed.NewMetrics(reg)
	if a.nc, err = feed.Connect(ncfg, log, fm); err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	if a.store != nil && ncfg.Demo.Enabled {
		if ncfg.JetStream {
			if err := feed.ResetDemoScores(context.Background(), a.nc, ncfg); err != nil {
				log.Warn("demo: could not reset stored games", "err", err)
			}
		}
		a.demo = feed.NewDemo(ncfg.Demo, a.nc, log)
	}
	if a.src, err = feed.NewSource(ncfg, a.nc, a.hub, log, fm); err != nil {
		return nil, err
	}

	om := origin.NewMetrics(reg)
	a.srv = origin.New(cfg.Origin, a.hub, a.Ready, om, log)
	// A removed feed's series go with it (the hub collector's per-feed
	// series are read from the live feeds at scrape time).
	a.hub.OnRemove(func(name string) {
		fm.FeedRemoved(name)
		om.FeedRemoved(name)
	})
	if a.store != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "marquee_store_healthy",
			Help: "1 while the embedded NATS server's JetStream store is healthy (enabled, every stream and consumer recovered, no write error), else 0.",
		}, func() float64 {
			if a.store.Err() != nil {
				return 0
			}
			return 1
		}), prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "marquee_store_restarts_total",
			Help: "Restarts of the embedded NATS server after its store stayed unhealthy.",
		}, func() float64 { return float64(a.store.restarts.Load()) }))
	}
	reg.MustRegister(newHubCollector(a.hub), prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "marquee_ready",
		Help: "1 while /readyz answers 200 (NATS connected, state loaded, not draining), else 0.",
	}, func() float64 {
		if a.Ready() == nil && !a.srv.Draining() {
			return 1
		}
		return 0
	}))

	maxConns, err := connectionCap(cfg.MaxConnections)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("MARQUEE_ADDR: listen %s: %w", cfg.Addr, err)
	}
	a.pub = origin.LimitListener(ln, maxConns, om)
	a.maxConns = maxConns
	errLog := slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	a.httpSrv = &http.Server{
		Handler:           a.srv.Handler(),
		ReadHeaderTimeout: PublicReadHeaderTimeout,
		IdleTimeout:       PublicIdleTimeout,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          errLog,
	}
	if cfg.Ingest.Enabled() {
		a.ing, err = ingest.New(cfg.Ingest, ingest.Deps{
			NATS: a.nc, JetStream: ncfg.JetStream, Feed: ncfg, Now: deps.Testing.IngestNow,
			Metrics: ingest.NewMetrics(reg), Log: log,
		})
		if err != nil {
			return nil, err
		}
	}
	if cfg.AdminAddr != "" {
		if a.adm, err = net.Listen("tcp", cfg.AdminAddr); err != nil {
			return nil, fmt.Errorf("MARQUEE_ADMIN_ADDR: listen %s: %w", cfg.AdminAddr, err)
		}
		mux, err := adminMux(map[string]http.Handler{
			"/metrics": promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}),
			"/healthz": a.srv.Handler(),
			"/readyz":  a.srv.Handler(),
		})
		if err != nil {
			return nil, err
		}
		a.adminSrv = &http.Server{
			Handler:           refuseBodies(mux),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    32 << 10,
			ErrorLog:          errLog,
		}
	}
	return a, nil
}

// Addr returns the bound address of the public listener.
func (a *App) Addr() string { return a.pub.Addr().String() }

// AdminAddr returns the bound address of the admin listener ("" when off).
func (a *App) AdminAddr() string {
	if a.adm == nil {
		return ""
	}
	return a.adm.Addr().String()
}

// IngestAddr returns the bound address of the ingest listener ("" when off).
func (a *App) IngestAddr() string {
	if a.ing == nil {
		return ""
	}
	return a.ing.Addr()
}

// MaxConnections returns the cap on concurrent public connections in force.
func (a *App) MaxConnections() int { return a.maxConns }

// NATSURL returns the URL of the NATS server in use (the embedded one's
// when cfg.NATS.URL was empty).
func (a *App) NATSURL() string { return a.natsURL }

// Embedded reports whether the App runs its own NATS server.
func (a *App) Embedded() bool { return a.store != nil }

// EmbeddedServer returns the embedded NATS server (nil with an external
// NATS, or while it restarts).
func (a *App) EmbeddedServer() *server.Server {
	if a.store == nil {
		return nil
	}
	return a.store.Server()
}

// Hub returns the segmenter hub.
func (a *App) Hub() *segmenter.Hub { return a.hub }

// Server returns the origin.
func (a *App) Server() *origin.Server { return a.srv }

// Source returns the feed source.
func (a *App) Source() feed.Source { return a.src }

// Registry returns the registry every metric is registered on.
func (a *App) Registry() *prometheus.Registry { return a.reg }

// Ready reports whether this replica serves current, correct state: nil
// when it does, else why not. /readyz answers 503 with the reason. The
// feed source knows most of it (NATS connected, state loaded or reloading,
// consumer stalled, stream missing); the hub adds whether its segments are
// open.
func (a *App) Ready() error {
	if a.store != nil {
		if err := a.store.Err(); err != nil {
			return err
		}
	}
	if r := a.src.Status().Reason(); r != "" {
		return errors.New(r)
	}
	if !a.hub.Live() {
		return errors.New("segments not open yet")
	}
	return nil
}

// Run starts consuming and serving and returns when ctx ends, Close is
// called or a part fails; it then drains and tears down (bounded by
// cfg.ShutdownTimeout) before returning. It returns the failure, or nil
// after an orderly stop. Run may be called once.
func (a *App) Run(ctx context.Context) (err error) {
	ran := false
	a.runOnce.Do(func() { ran = true })
	if !ran {
		return errors.New("app: Run called twice")
	}
	select {
	case <-a.quit:
		return errors.New("app: closed")
	default:
	}
	a.wg.Go(func() { a.hub.Run(a.bg) })
	a.wg.Go(func() {
		if err := a.src.Run(a.bg); err != nil {
			a.fail(fmt.Errorf("feed source: %w", err))
		}
	})
	a.wg.Go(func() {
		select {
		case <-a.hub.LoadedC():
			a.log.Info("state loaded; segments open", "feeds", len(a.hub.Feeds()))
			if a.ing != nil {
				a.ing.CheckStream(a.bg)
			}
		case <-a.bg.Done():
		}
	})
	if a.demo != nil {
		a.wg.Go(func() { a.demo.Run(a.bg) })
	}
	if a.store != nil {
		a.wg.Go(func() { a.store.watch(a.bg) })
	}
	a.wg.Go(func() {
		if err := a.httpSrv.Serve(a.pub); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.fail(fmt.Errorf("public listener: %w", err))
		}
	})
	if a.ing != nil {
		a.wg.Go(func() {
			if err := a.ing.Serve(); err != nil {
				a.fail(fmt.Errorf("ingest listener: %w", err))
			}
		})
	}
	if a.adminSrv != nil {
		a.wg.Go(func() {
			if err := a.adminSrv.Serve(a.adm); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.fail(fmt.Errorf("admin listener: %w", err))
			}
		})
	}
	a.banner()

	select {
	case <-ctx.Done():
		a.log.Info("shutting down")
	case <-a.quit:
	case err = <-a.errc:
		a.log.Error("fatal", "err", err)
	}
	cctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	a.Close(cctx)
	return err
}

func (a *App) fail(err error) {
	select {
	case a.errc <- err:
	default:
	}
}

// Close drains and tears down in reverse order of construction: the ingest
// listener stops taking requests (those in flight finish while NATS is
// still up), readiness 503 and the origin's drain, the hub aborted (no edge caches a truncated
// segment), the listeners shut down, background work stopped and waited
// for, NATS closed. ctx bounds the drain; what is still open when it ends
// is closed hard. Idempotent; every call returns the first call's result
// once teardown is complete.
func (a *App) Close(ctx context.Context) error {
	a.closeOnce.Do(func() {
		close(a.quit)
		var errs []error
		if a.ing != nil {
			if err := a.ing.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("ingest listener: %w", err))
			}
		}
		if err := a.srv.Drain(ctx); err != nil {
			errs = append(errs, fmt.Errorf("drain: %w", err))
		}
		a.hub.Abort()
		if err := a.httpSrv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("public listener: %w", err))
			a.httpSrv.Close()
		}
		if a.adminSrv != nil {
			if err := a.adminSrv.Shutdown(ctx); err != nil {
				a.adminSrv.Close()
			}
		}
		a.release()
		a.closeErr = errors.Join(errs...)
		if a.closeErr != nil {
			a.log.Warn("stopped with errors", "err", a.closeErr)
		} else {
			a.log.Info("stopped")
		}
	})
	return a.closeErr
}

// release stops background work and frees what New acquired. It is safe on
// a partly constructed App.
func (a *App) release() {
	a.stopBG()
	if a.hub != nil {
		a.hub.Abort()
	}
	// Listeners that were never served are closed here (Shutdown closed
	// the served ones; closing twice is harmless).
	if a.pub != nil {
		a.pub.Close()
	}
	if a.adm != nil {
		a.adm.Close()
	}
	if a.ing != nil {
		a.ing.Close()
	}
	a.wg.Wait()
	if a.nc != nil {
		a.nc.Close()
	}
	if a.store != nil {
		a.store.close()
	}
}

func (a *App) banner() {
	if a.out == nil {
		return
	}
	base := "http://" + displayAddr(a.Addr())
	fmt.Fprintf(a.out, "marquee listening on %s\n", base)
	fmt.Fprintf(a.out, "  dashboard:  %s/\n", base)
	fmt.Fprintf(a.out, "  feeds:      %s/v1/feeds\n", base)
	// The examples name a feed that exists: the demo's, else the first
	// allow-listed one, else a placeholder for one /v1/feeds lists.
	f := "FEED"
	switch {
	case a.demo != nil:
		f = "prices"
	case len(a.cfg.NATS.Feeds) > 0:
		f = a.cfg.NATS.Feeds[0]
	}
	fmt.Fprintf(a.out, "  stream:     curl -N %s/v1/feeds/%s/segments/$(curl -s %s/v1/feeds/%s | sed 's/.*\"segment\":\\([0-9]*\\).*/\\1/')\n", base, f, base, f)
	fmt.Fprintf(a.out, "  direct:     curl -N %s/v1/feeds/%s/events\n", base, f)
	if f == "FEED" {
		fmt.Fprintf(a.out, "              (FEED: a feed %s/v1/feeds lists)\n", base)
	}
	if ing := a.IngestAddr(); ing != "" {
		fmt.Fprintf(a.out, "  ingest:     POST http://%s/v1/ingest/{feed} (signed webhooks)\n", displayAddr(ing))
	}
	if adm := a.AdminAddr(); adm != "" {
		fmt.Fprintf(a.out, "  metrics:    http://%s/metrics\n", displayAddr(adm))
	}
	if a.store != nil {
		fmt.Fprintf(a.out, "  nats:       %s (embedded, JetStream)\n", a.natsURL)
	}
}

// displayAddr turns a bound address like [::]:8080 into one a person can open.
func displayAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
