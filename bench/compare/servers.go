//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

const nchanModule = "/usr/lib/nginx/modules/ngx_nchan_module.so"

// env is what every run shares: binaries, a scratch directory, the NATS
// server marquee reads from, the publisher's connection.
type env struct {
	cfg     config
	dir     string
	nginx   string
	marquee string // this tree's cmd/marquee
	base    string // cmd/marquee at -base-rev
	ns      *server.Server
	nc      *nats.Conn
}

// prepare installs what is missing and builds what is needed.
func prepare(ctx context.Context, cfg config, stderr io.Writer, logf func(string, ...any)) (*env, error) {
	e := &env{cfg: cfg}
	var err error
	if e.dir, err = os.MkdirTemp("", "marquee-compare-"); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			e.close()
		}
	}()
	if slicesContains(cfg.targets, "nchan") {
		if e.nginx, err = ensureNchan(ctx, cfg.install, stderr); err != nil {
			return nil, err
		}
	}
	root, err := moduleRoot(ctx)
	if err != nil {
		return nil, err
	}
	needMarquee := false
	for _, t := range cfg.targets {
		if t == "marquee" || t == "marquee-nohandoff" || t == "marquee-stream" {
			needMarquee = true
		}
	}
	if needMarquee {
		e.marquee = filepath.Join(e.dir, "marquee")
		logf("building %s", e.marquee)
		if err := goBuild(ctx, root, e.marquee); err != nil {
			return nil, err
		}
	}
	if slicesContains(cfg.targets, "marquee-base") {
		src := filepath.Join(e.dir, "base-src")
		os.MkdirAll(src, 0o755)
		archive := exec.CommandContext(ctx, "sh", "-c", "git archive "+shellQuote(cfg.baseRev)+" | tar -x -C "+shellQuote(src))
		archive.Dir = root
		if out, err := archive.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("git archive %s: %v: %s", cfg.baseRev, err, out)
		}
		e.base = filepath.Join(e.dir, "marquee-base")
		logf("building %s from %s", e.base, cfg.baseRev)
		if err := goBuild(ctx, src, e.base); err != nil {
			return nil, err
		}
	}
	if needMarquee || e.base != "" {
		opts := &server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, MaxPayload: 1 << 20}
		if e.ns, err = server.NewServer(opts); err != nil {
			return nil, err
		}
		go e.ns.Start()
		if !e.ns.ReadyForConnections(10 * time.Second) {
			return nil, errors.New("nats: not ready")
		}
		if e.nc, err = nats.Connect(e.ns.ClientURL()); err != nil {
			return nil, err
		}
	}
	ok = true
	return e, nil
}

func (e *env) close() {
	if e.nc != nil {
		e.nc.Close()
	}
	if e.ns != nil {
		e.ns.Shutdown()
		e.ns.WaitForShutdown()
	}
	if e.dir != "" {
		os.RemoveAll(e.dir)
	}
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run from inside the marquee module")
	}
	return filepath.Dir(mod), nil
}

func goBuild(ctx context.Context, dir, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/marquee")
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/marquee in %s: %v: %s", dir, err, b)
	}
	return nil
}

// ensureNchan returns the nginx binary, installing nginx-light and the
// Nchan module with apt-get when either is missing.
func ensureNchan(ctx context.Context, install bool, stderr io.Writer) (string, error) {
	nginx, err := exec.LookPath("nginx")
	if err == nil {
		if _, err := os.Stat(nchanModule); err == nil {
			return nginx, nil
		}
	}
	if !install {
		return "", errors.New("nginx or the Nchan module is missing (apt-get install nginx-light libnginx-mod-nchan, or run with -install)")
	}
	fmt.Fprintln(stderr, "# installing nginx-light and libnginx-mod-nchan with apt-get")
	aptInstall := func() error {
		cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "-q", "--no-install-recommends", "nginx-light", "libnginx-mod-nchan")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = stderr, stderr
		return cmd.Run()
	}
	if err := aptInstall(); err != nil {
		update := exec.CommandContext(ctx, "apt-get", "update", "-q")
		update.Stdout, update.Stderr = stderr, stderr
		if err := update.Run(); err != nil {
			return "", fmt.Errorf("apt-get update: %w", err)
		}
		if err := aptInstall(); err != nil {
			return "", fmt.Errorf("apt-get install: %w", err)
		}
	}
	if nginx, err = exec.LookPath("nginx"); err != nil {
		return "", err
	}
	if _, err := os.Stat(nchanModule); err != nil {
		return "", err
	}
	return nginx, nil
}

// proc is a server process (with its children: nginx's worker).
type proc struct {
	cmd  *exec.Cmd
	port int
	out  bytes.Buffer
	done chan struct{}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startProc(cmd *exec.Cmd, port int) (*proc, error) {
	p := &proc{cmd: cmd, port: port, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { cmd.Wait(); close(p.done) }()
	return p, nil
}

// stop ends the process: SIGTERM, then SIGKILL to its process group.
func (p *proc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// pids returns the process and its children.
func (p *proc) pids() []int {
	pid := p.cmd.Process.Pid
	out := []int{pid}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		f := statFields(b)
		if len(f) > 2 && f[2] == strconv.Itoa(pid) {
			out = append(out, n)
		}
	}
	return out
}

// statFields splits /proc/<pid>/stat after the command name, numbered so
// that f[k] is field k+2 of proc(5): f[1] the state, f[2] the ppid, f[12]
// utime, f[13] stime.
func statFields(b []byte) []string {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	f := strings.Fields(string(b[i+1:]))
	return append([]string{""}, f...)
}

const clockTick = 100 // USER_HZ: /proc reports times in 1/100 s on Linux

// cpu returns the CPU time (user + system) of the process tree.
func (p *proc) cpu() time.Duration {
	var ticks int64
	for _, pid := range p.pids() {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		f := statFields(b)
		if len(f) > 13 {
			u, _ := strconv.ParseInt(f[12], 10, 64)
			s, _ := strconv.ParseInt(f[13], 10, 64)
			ticks += u + s
		}
	}
	return time.Duration(ticks) * time.Second / clockTick
}

// rss returns the resident set of the process tree in bytes.
func (p *proc) rss() int64 {
	var kb int64
	for _, pid := range p.pids() {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				kb += n
			}
		}
	}
	return kb << 10
}

// target is one server under test, started fresh for a run.
type target struct {
	name    string
	p       *proc
	base    string // http://127.0.0.1:port
	subPath func(ctx context.Context) (string, error)
	publish func(ctx context.Context, body []byte) error
	stats   func() string // optional diagnostics after a run
	closers []func()
}

// stop ends the server and what the run opened to it.
func (t *target) stop() {
	for _, c := range t.closers {
		c()
	}
	t.p.stop()
}

func (e *env) start(ctx context.Context, name string) (*target, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	t := &target{name: name, base: "http://127.0.0.1:" + strconv.Itoa(port)}
	switch name {
	case "nchan":
		err = e.startNchan(t, port)
	case "floor":
		err = e.startFloor(t, port)
	default:
		err = e.startMarquee(ctx, t, port, name)
	}
	if err != nil {
		return nil, err
	}
	return t, nil
}

func (e *env) startNchan(t *target, port int) error {
	dir, err := os.MkdirTemp(e.dir, "nchan-")
	if err != nil {
		return err
	}
	conf := fmt.Sprintf(`load_module %s;
worker_processes 1;
worker_rlimit_nofile 20000;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
daemon off;
events { worker_connections 19000; use epoll; multi_accept on; }
http {
  access_log off;
  client_body_temp_path %[2]s/body;
  proxy_temp_path %[2]s/proxy;
  fastcgi_temp_path %[2]s/fastcgi;
  uwsgi_temp_path %[2]s/uwsgi;
  scgi_temp_path %[2]s/scgi;
  keepalive_timeout 120s;
  server {
    listen 127.0.0.1:%[3]d backlog=4096;
    location = /pub { nchan_publisher; nchan_channel_id bench; }
    location = /sub {
      nchan_subscriber eventsource;
      nchan_channel_id bench;
      nchan_subscriber_first_message newest;
    }
  }
}
`, nchanModule, dir, port)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return err
	}
	cmd := exec.Command(e.nginx, "-c", path, "-p", dir+"/")
	if t.p, err = startProc(cmd, port); err != nil {
		return err
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	t.publish = func(ctx context.Context, body []byte) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, t.base+"/pub", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("publish: %s", resp.Status)
		}
		return nil
	}
	t.subPath = func(context.Context) (string, error) { return "/sub", nil }
	return waitHTTP(t, "/sub", http.StatusForbidden) // no Accept: refused, but up
}

func (e *env) startMarquee(ctx context.Context, t *target, port int, name string) error {
	bin := e.marquee
	if name == "marquee-base" {
		bin = e.base
	}
	dir, err := os.MkdirTemp(e.dir, name+"-")
	if err != nil {
		return err
	}
	admin, err := freePort()
	if err != nil {
		return err
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"MARQUEE_ADDR=127.0.0.1:"+strconv.Itoa(port),
		"MARQUEE_ADMIN_ADDR=127.0.0.1:"+strconv.Itoa(admin),
		"MARQUEE_NATS_URL="+e.ns.ClientURL(),
		"MARQUEE_NATS_JETSTREAM=false",
		"MARQUEE_FEEDS=bench",
		"MARQUEE_DATA_DIR="+dir,
		"MARQUEE_LOG_LEVEL=warn",
		"MARQUEE_SEGMENT_LENGTH=300s",
		"MARQUEE_DRAIN_DELAY=0s",
		"MARQUEE_DRAIN_SPREAD=0s",
		"MARQUEE_SHUTDOWN_TIMEOUT=5s",
	)
	if name == "marquee-nohandoff" {
		cmd.Env = append(cmd.Env, "MARQUEE_HANDOFF=false")
	}
	if t.p, err = startProc(cmd, port); err != nil {
		return err
	}
	t.publish = func(_ context.Context, body []byte) error { return e.nc.Publish("feeds.bench.k", body) }
	t.stats = func() string { return goStats("http://127.0.0.1:" + strconv.Itoa(admin) + "/metrics") }
	t.subPath = func(context.Context) (string, error) { return "/v1/feeds/bench/events", nil }
	if name == "marquee-stream" {
		t.subPath = func(ctx context.Context) (string, error) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, t.base+"/v1/feeds/bench", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return "", err
			}
			defer resp.Body.Close()
			var d struct {
				URL string `json:"url"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&d); err != nil || d.URL == "" {
				return "", fmt.Errorf("descriptor: %v", err)
			}
			return d.URL, nil
		}
	}
	return waitHTTP(t, "/readyz", http.StatusOK)
}

// waitHTTP waits until GET path answers want.
func waitHTTP(t *target, path string, want int) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get(t.base + path)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return nil
			}
		}
		select {
		case <-t.p.done:
			return fmt.Errorf("%s exited: %s", t.name, t.p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.p.stop()
			return fmt.Errorf("%s not ready on %s (last: %v): %s", t.name, path, err, t.p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// goStats picks the Go runtime's memory figures out of a marquee's
// /metrics (diagnostics for the RSS figure).
func goStats(url string) string {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		for _, name := range []string{"go_goroutines", "go_memstats_heap_inuse_bytes", "go_memstats_heap_idle_bytes", "go_memstats_heap_released_bytes", "go_memstats_stack_inuse_bytes", "go_memstats_sys_bytes", "go_memstats_next_gc_bytes"} {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				if name != "go_goroutines" {
					v = fmt.Sprintf("%.1fMiB", f/(1<<20))
				}
				out = append(out, strings.TrimPrefix(strings.TrimPrefix(name, "go_memstats_"), "go_")+"="+v)
			}
		}
	}
	return strings.Join(out, " ")
}
