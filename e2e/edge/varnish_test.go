//go:build unix

// Package edge_test checks marquee behind a real edge cache: varnishd with
// cdn/varnish/marquee.vcl in front of a real origin (embedded NATS, short
// segments), with up to thousands of concurrent viewers, and cmd/cdnprobe's
// logic against that edge and against the bare origin.
//
// Everything runs on loopback, is bounded in time and stops by itself.
// varnishd must be installed (Debian package varnish); without it the tests
// skip, or fail under CI=true.
package edge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"marquee/internal/testenv"
)

// vclDir is where the VCL files live, relative to this package.
const vclDir = "../../cdn/varnish"

// Varnish is one varnishd running in the foreground with its own working
// directory, on a loopback port, in front of one backend.
type Varnish struct {
	t   testing.TB
	URL string // http://127.0.0.1:port
	Dir string // working directory (-n)
	cmd *exec.Cmd
	out *bytes.Buffer
}

// VarnishOptions configures StartVarnish.
type VarnishOptions struct {
	VCL     string // file in cdn/varnish; default marquee.vcl
	Backend string // host:port of the origin
	// Backends, when set instead of Backend, are several origin replicas
	// behind a vmod_directors round-robin director, as an operator without
	// a load balancer would set them up: consecutive fetches (misses) go to
	// different replicas.
	Backends []string
	// Threads is the minimum number of worker threads per pool (2 pools);
	// a streaming viewer holds one thread. Default 200.
	Threads int
}

var (
	reHost = regexp.MustCompile(`(?m)^(\s*\.host\s*=\s*)"[^"]*";`)
	rePort = regexp.MustCompile(`(?m)^(\s*\.port\s*=\s*)"[^"]*";`)
)

// writeVCL copies the VCL files to dir with marquee.vcl's backend pointed at
// backend (host:port), the way an operator edits .host and .port.
func writeVCL(t testing.TB, dir string, backends ...string) {
	t.Helper()
	host, port, err := net.SplitHostPort(backends[0])
	if err != nil {
		t.Fatalf("backend %q: %v", backends[0], err)
	}
	entries, err := os.ReadDir(vclDir)
	if err != nil {
		t.Fatalf("read %s: %v", vclDir, err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".vcl") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(vclDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "marquee.vcl" {
			if len(reHost.FindAll(b, -1)) != 1 || len(rePort.FindAll(b, -1)) != 1 {
				t.Fatalf("marquee.vcl must have exactly one .host and one .port line")
			}
			b = reHost.ReplaceAll(b, []byte(`${1}"`+host+`";`))
			b = rePort.ReplaceAll(b, []byte(`${1}"`+port+`";`))
			if len(backends) > 1 {
				b = roundRobin(t, b, backends)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// reBackend is marquee.vcl's backend block (it has no nested braces).
var reBackend = regexp.MustCompile(`(?s)\nbackend default \{.*?\n\}\n`)

// roundRobin turns marquee.vcl's one backend into one per replica behind a
// round-robin director, the setup its comment describes for several
// origins without a load balancer: the backend block is repeated with each
// address, and a vcl_recv placed before marquee's own picks the director.
func roundRobin(t testing.TB, vcl []byte, backends []string) []byte {
	t.Helper()
	block := reBackend.Find(vcl)
	if block == nil {
		t.Fatal("marquee.vcl: no backend default block")
	}
	var out bytes.Buffer
	out.WriteString("\nimport directors;\n")
	for i, be := range backends {
		host, port, err := net.SplitHostPort(be)
		if err != nil {
			t.Fatalf("backend %q: %v", be, err)
		}
		b := bytes.Replace(block, []byte("backend default {"), fmt.Appendf(nil, "backend replica%d {", i), 1)
		b = reHost.ReplaceAll(b, []byte(`${1}"`+host+`";`))
		b = rePort.ReplaceAll(b, []byte(`${1}"`+port+`";`))
		out.Write(b)
	}
	out.WriteString("\nsub vcl_init {\n    new replicas = directors.round_robin();\n")
	for i := range backends {
		fmt.Fprintf(&out, "    replicas.add_backend(replica%d);\n", i)
	}
	out.WriteString("}\n\nsub vcl_recv {\n    set req.backend_hint = replicas.backend();\n}\n")
	return reBackend.ReplaceAll(vcl, out.Bytes())
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// varnishArgs returns varnishd's command line: foreground, no jail (works as
// root and as a normal user), malloc storage, and thread pools sized for the
// audience.
func varnishArgs(dir, listen, vcl string, threads int) []string {
	return []string{
		"-F", "-j", "none",
		"-n", dir,
		"-a", listen,
		"-T", "127.0.0.1:0",
		"-f", vcl,
		"-s", "malloc,256m",
		"-p", "thread_pools=2",
		"-p", "thread_pool_min=" + strconv.Itoa(threads),
		"-p", "thread_pool_max=" + strconv.Itoa(max(5000, threads)),
		"-p", "thread_queue_limit=1000",
		"-p", "listen_depth=4096",
		// Keep-alive between a viewer's segments; the next request follows
		// the previous body at once, so the default 5s is plenty.
		"-p", "timeout_idle=10",
	}
}

// StartVarnish starts varnishd with opts and stops it at cleanup. It returns
// when varnishd answers through to the backend.
func StartVarnish(t testing.TB, opts VarnishOptions) *Varnish {
	t.Helper()
	bin := testenv.NeedProgram(t, "varnishd", "/usr/sbin/varnishd")
	if opts.VCL == "" {
		opts.VCL = "marquee.vcl"
	}
	if opts.Threads == 0 {
		opts.Threads = 200
	}
	root := t.TempDir()
	vclPath := filepath.Join(root, "vcl")
	if err := os.Mkdir(vclPath, 0o755); err != nil {
		t.Fatal(err)
	}
	backends := opts.Backends
	if len(backends) == 0 {
		backends = []string{opts.Backend}
	}
	writeVCL(t, vclPath, backends...)
	v := &Varnish{t: t, Dir: filepath.Join(root, "work"), out: &bytes.Buffer{}}
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	v.URL = "http://" + listen
	v.cmd = exec.Command(bin, varnishArgs(v.Dir, listen, filepath.Join(vclPath, opts.VCL), opts.Threads)...)
	v.cmd.Stdout, v.cmd.Stderr = v.out, v.out
	if err := v.cmd.Start(); err != nil {
		t.Fatalf("start varnishd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- v.cmd.Wait() }()
	t.Cleanup(func() { v.stop(exited) })
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("varnishd exited at start: %v\n%s", err, v.out)
		default:
		}
		resp, err := http.Get(v.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return v
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			t.Fatalf("varnishd not ready after 30s: %v\n%s", err, v.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends varnishd (SIGTERM, then SIGKILL after 10s). The manager stops
// its cache child before it exits.
func (v *Varnish) stop(exited chan error) {
	v.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		v.cmd.Process.Kill()
		<-exited
	}
	if v.t.Failed() {
		v.t.Logf("varnishd output:\n%s", v.out)
	}
}

// Stats returns varnishstat's counters (name → value), or nil when
// varnishstat is not available.
func (v *Varnish) Stats() map[string]uint64 {
	bin, err := exec.LookPath("varnishstat")
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-n", v.Dir, "-1", "-j").Output()
	if err != nil {
		v.t.Logf("varnishstat: %v", err)
		return nil
	}
	var doc struct {
		Counters map[string]struct {
			Value uint64 `json:"value"`
		} `json:"counters"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		v.t.Logf("varnishstat: %v", err)
		return nil
	}
	m := make(map[string]uint64, len(doc.Counters))
	for k, c := range doc.Counters {
		m[k] = c.Value
	}
	return m
}

// LogStats logs the counters that show what the edge did.
func (v *Varnish) LogStats() {
	s := v.Stats()
	if s == nil {
		return
	}
	var b strings.Builder
	for _, k := range []string{"MAIN.client_req", "MAIN.cache_hit", "MAIN.cache_miss", "MAIN.cache_hitmiss", "MAIN.cache_hitpass",
		"MAIN.busy_sleep", "MAIN.busy_wakeup", "MAIN.backend_req", "MAIN.backend_conn", "MAIN.s_pass", "MAIN.s_fetch",
		"MAIN.threads", "MAIN.threads_failed", "MAIN.sess_dropped", "MAIN.sess_fail", "MAIN.fetch_failed"} {
		fmt.Fprintf(&b, " %s=%d", strings.TrimPrefix(k, "MAIN."), s[k])
	}
	v.t.Logf("varnish:%s", b.String())
}

// cpuTime returns the user+system CPU time of process pid and its direct
// children (varnishd's manager and its cache child), from /proc. Linux only;
// clock ticks are assumed to be 100 per second (USER_HZ on every Linux
// architecture Go supports).
func cpuTime(pid int) (time.Duration, error) {
	total, err := procCPU(pid)
	if err != nil {
		return 0, err
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		f := statFields(b)
		if len(f) > 2 && f[1] == strconv.Itoa(pid) {
			if c, err := procCPU(child); err == nil {
				total += c
			}
		}
	}
	return total, nil
}

// procCPU returns utime+stime of one process.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	f := statFields(b)
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	// Fields after the command: state(0) ppid(1) ... utime(11) stime(12).
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond, nil
}

// statFields returns the fields of /proc/pid/stat after "(comm)".
func statFields(b []byte) []string {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}
