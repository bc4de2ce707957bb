//go:build linux

package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestImage builds the real image (go build ./cmd/marquee, static) into an
// archive and reads it back with go-containerregistry both ways a runtime
// does, as a docker save archive and as an OCI image layout; then checks
// the user, the files, that the binary is static with the dashboard
// embedded, and runs it.
func TestImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/marquee")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the image is linux; the test runs its binary")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "marquee-image.tar")
	var stdout bytes.Buffer
	if err := run([]string{"-o", out}, &stdout); err != nil {
		t.Fatal(err)
	}
	t.Log(strings.TrimSpace(stdout.String()))

	// As containerd and crane read it: an OCI image layout whose index
	// names the image by the tag.
	lp := filepath.Join(dir, "layout")
	untar(t, out, lp)
	idx, err := layout.ImageIndexFromPath(lp)
	if err != nil {
		t.Fatalf("OCI layout: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("index.json: %d manifests", len(im.Manifests))
	}
	desc := im.Manifests[0]
	digest := desc.Digest
	if !strings.Contains(stdout.String(), digest.String()) {
		t.Errorf("printed %q, want the digest %s", stdout.String(), digest)
	}
	if got, want := desc.Annotations["io.containerd.image.name"], "docker.io/library/marquee:dev"; got != want {
		t.Errorf("io.containerd.image.name %q, want %q", got, want)
	}
	if got := desc.Annotations["org.opencontainers.image.ref.name"]; got != "dev" {
		t.Errorf("org.opencontainers.image.ref.name %q", got)
	}
	img, err := idx.Image(digest)
	if err != nil {
		t.Fatal(err)
	}

	// As docker load reads it: manifest.json naming the same config and
	// layer blobs under the tag (the manifest itself docker makes anew).
	tag, _ := name.NewTag(DefaultTag)
	dimg, err := tarball.ImageFromPath(out, &tag)
	if err != nil {
		t.Fatalf("docker archive: %v", err)
	}
	if a, b := configName(t, img), configName(t, dimg); a != b {
		t.Errorf("docker archive config %s, OCI layout %s", b, a)
	}
	if a, b := layerDigests(t, img), layerDigests(t, dimg); !slices.Equal(a, b) {
		t.Errorf("docker archive layers %v, OCI layout %v", b, a)
	}

	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
	}
	if c.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532 (non-root)", c.User)
	}
	if !slices.Equal(c.Entrypoint, []string{Entrypoint}) {
		t.Errorf("entrypoint %q", c.Entrypoint)
	}
	for _, p := range []string{"8080/tcp", "9090/tcp"} {
		if _, ok := c.ExposedPorts[p]; !ok {
			t.Errorf("port %s not exposed", p)
		}
	}
	if !cf.Created.Equal(time.Unix(0, 0)) {
		t.Errorf("created %s, want the epoch (SOURCE_DATE_EPOCH unset)", cf.Created)
	}

	files := extract(t, img)
	for name, want := range map[string]struct {
		mode int64
		uid  int
	}{
		"etc/passwd":                        {0o644, 0},
		"etc/group":                         {0o644, 0},
		"etc/ssl/certs/ca-certificates.crt": {0o644, 0},
		"home/nonroot":                      {0o700, UID},
		"tmp":                               {0o1777, 0},
		"usr/local/bin/marquee":             {0o755, 0},
	} {
		f, ok := files[name]
		if !ok {
			t.Errorf("%s missing", name)
			continue
		}
		if f.hdr.Mode&0o7777 != want.mode || f.hdr.Uid != want.uid {
			t.Errorf("%s: mode %o uid %d, want %o %d", name, f.hdr.Mode, f.hdr.Uid, want.mode, want.uid)
		}
	}
	if p := string(files["etc/passwd"].body); !strings.Contains(p, "nonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd has no nonroot user:\n%s", p)
	}
	bin := files["usr/local/bin/marquee"].body
	if err := CheckStatic(bin, runtime.GOARCH); err != nil {
		t.Error(err)
	}
	// The dashboard and the browser client are in the binary (go:embed
	// stores the files as they are).
	for _, asset := range []string{"client.js", "index.html", "dashboard.js"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "origin", "web", asset))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(bin, b) {
			t.Errorf("origin/web/%s is not embedded in the binary", asset)
		}
	}

	// The binary runs: an invalid setting stops it with a message naming
	// the variable.
	exe := filepath.Join(dir, "marquee")
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = []string{"MARQUEE_LOG_LEVEL=loud"}
	outb, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(outb), "MARQUEE_LOG_LEVEL") {
		t.Errorf("marquee with MARQUEE_LOG_LEVEL=loud: %v\n%s", err, outb)
	}

	t.Run("runs as nonroot in its filesystem", func(t *testing.T) {
		runRootfs(t, img, cf, filepath.Join(dir, "rootfs"))
	})

	// Reproducible: the same binary gives the same image.
	certs, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Fatal(err)
	}
	again, err := Build(Input{Binary: bin, CACerts: certs, Arch: runtime.GOARCH, Created: time.Unix(0, 0).UTC()})
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := again.Digest(); d != digest {
		t.Errorf("rebuilt from the same binary: %s, first %s", d, digest)
	}
}

// TestRefusesDynamicBinaries: FROM scratch there is no loader or libc.
func TestRefusesDynamicBinaries(t *testing.T) {
	for _, p := range []string{"/bin/ls", "/usr/bin/env"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if err := CheckStatic(b, runtime.GOARCH); err == nil {
			t.Errorf("%s accepted as a static binary", p)
		}
		return
	}
	t.Skip("no dynamically linked program to try")
}

func configName(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// layerDigests are the image's layer digests, each checked against its
// bytes.
func layerDigests(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var ds []v1.Hash
	for _, l := range ls {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		h, _, err := v1.SHA256(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if h != d {
			t.Errorf("layer %s has the bytes of %s", d, h)
		}
		ds = append(ds, d)
	}
	if len(ds) != 1 {
		t.Errorf("%d layers, want 1", len(ds))
	}
	return ds
}

type tarFile struct {
	hdr  *tar.Header
	body []byte
}

func extract(t *testing.T, img v1.Image) map[string]tarFile {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	files := map[string]tarFile{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimSuffix(h.Name, "/")] = tarFile{h, b}
	}
	return files
}

func untar(t *testing.T, archive, dir string) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// runRootfs unpacks the image into dir and runs its entrypoint there the
// way a container runtime would, as far as a test can without one:
// chrooted into the image's files, as the image's user, with the image's
// environment and working directory. With no settings, marquee starts the
// embedded NATS (its store under the nonroot home) and the demo; the test
// waits until /readyz answers 200, then stops it with SIGTERM and expects
// an orderly exit. It needs root (chroot, setuid), which CI has.
func runRootfs(t *testing.T, img v1.Image, cf *v1.ConfigFile, dir string) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for chroot and setuid")
	}
	files := extract(t, img)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names) // parents first
	for _, n := range names {
		f := files[n]
		p := filepath.Join(dir, filepath.FromSlash(n))
		mode := os.FileMode(f.hdr.Mode & 0o777)
		if f.hdr.Mode&0o1000 != 0 {
			mode |= os.ModeSticky
		}
		var err error
		if f.hdr.Typeflag == tar.TypeDir {
			err = os.MkdirAll(p, 0o700)
		} else {
			err = os.WriteFile(p, f.body, 0o600)
		}
		if err == nil {
			err = os.Chmod(p, mode)
		}
		if err == nil {
			err = os.Chown(p, f.hdr.Uid, f.hdr.Gid)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(cf.Config.Entrypoint[0], cf.Config.Cmd...)
	cmd.Dir = cf.Config.WorkingDir
	cmd.Env = append(slices.Clone(cf.Config.Env), "MARQUEE_ADDR=127.0.0.1:0", "MARQUEE_ADMIN_ADDR=127.0.0.1:0")
	var uid, gid uint32
	if _, err := fmt.Sscanf(cf.Config.User, "%d:%d", &uid, &gid); err != nil {
		t.Fatalf("user %q: %v", cf.Config.User, err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Chroot:     dir,
		Credential: &syscall.Credential{Uid: uid, Gid: gid},
		Pdeathsig:  syscall.SIGKILL,
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	done := make(chan error, 1)
	urls := make(chan string, 1)
	go func() {
		// The banner names the public URL; the rest is drained.
		sc := bufio.NewScanner(stdout)
		url := ""
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "marquee listening on "); ok && url == "" {
				url = u
				urls <- u
			}
		}
		done <- cmd.Wait()
	}()
	defer func() {
		cmd.Process.Kill()
		<-done
	}()
	var base string
	select {
	case base = <-urls:
	case err := <-done:
		done <- err
		t.Fatalf("marquee exited before listening: %v\n%s", err, stderr.Bytes())
	case <-time.After(30 * time.Second):
		t.Fatalf("no banner after 30s\n%s", stderr.Bytes())
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz not 200 after 30s (%v)\n%s", err, stderr.Bytes())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(dir, "home", "nonroot", ".cache", "marquee")); err != nil {
		t.Errorf("the embedded store is not under the nonroot home: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, stderr.Bytes())
		}
	case <-time.After(40 * time.Second):
		t.Errorf("still running 40s after SIGTERM\n%s", stderr.Bytes())
	}
}
