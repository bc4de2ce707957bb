// Command image builds marquee's container image without Docker or any
// registry: FROM scratch, one layer with the static binary (CGO_ENABLED=0,
// the dashboard and the browser client embedded in it), /etc/passwd and
// /etc/group with the non-root user nonroot (uid and gid 65532), a home
// directory for it (the embedded demo keeps its JetStream store there), the
// CA certificates of the building machine, and an empty /tmp. The image
// runs as 65532:65532 with /usr/local/bin/marquee as its entrypoint and
// exposes 8080 (public) and 9090 (admin).
//
//	go run ./deploy/image -o marquee-image.tar             # builds ./cmd/marquee
//	go run ./deploy/image -o marquee-image.tar -arch arm64
//	docker load -i marquee-image.tar                      # marquee:dev
//	kind load image-archive marquee-image.tar
//	crane push marquee-image.tar registry.example.com/marquee:v1
//
// The archive is an OCI image layout (oci-layout, index.json, blobs/) that
// is also a `docker save` archive (manifest.json naming the same blobs), as
// `docker save` itself writes since Docker 25: docker load, podman load,
// containerd (kind, ctr import), skopeo and crane all read it. The image is
// reproducible: file times and the creation time are SOURCE_DATE_EPOCH (0
// when unset), so the same binary gives the same digest.
package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's user, paths and ports.
const (
	UID        = 65532
	User       = "nonroot"
	Home       = "/home/nonroot"
	Entrypoint = "/usr/local/bin/marquee"
	CAFile     = "/etc/ssl/certs/ca-certificates.crt"
	DefaultTag = "marquee:dev"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	out := fs.String("o", "marquee-image.tar", "the archive to write")
	tag := fs.String("tag", DefaultTag, "the image's name and tag in the archive")
	arch := fs.String("arch", runtime.GOARCH, "GOARCH of the image (linux only)")
	binary := fs.String("binary", "", "a static linux binary of marquee to use instead of building ./cmd/marquee")
	ca := fs.String("ca", "/etc/ssl/certs/ca-certificates.crt", "the CA certificates bundle to put in the image")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	created, err := sourceDateEpoch()
	if err != nil {
		return err
	}
	bin := *binary
	if bin == "" {
		dir, err := os.MkdirTemp("", "marquee-image-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if bin, err = buildBinary(dir, *arch); err != nil {
			return err
		}
	}
	exe, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	certs, err := os.ReadFile(*ca)
	if err != nil {
		return fmt.Errorf("CA certificates: %w", err)
	}
	img, err := Build(Input{Binary: exe, CACerts: certs, Arch: *arch, Created: created})
	if err != nil {
		return err
	}
	if err := WriteArchive(*out, img, *tag); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %s linux/%s %s\n", *out, *tag, *arch, digest)
	return nil
}

// sourceDateEpoch is the time every file and the image carry.
func sourceDateEpoch() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH: %w", err)
	}
	return time.Unix(n, 0).UTC(), nil
}

// buildBinary builds ./cmd/marquee of the module this program is run in,
// static and without paths of the building machine, into dir.
func buildBinary(dir, arch string) (string, error) {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(gomod))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the marquee module: run from the repository (go run ./deploy/image)")
	}
	root := filepath.Dir(mod)
	bin := filepath.Join(dir, "marquee")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", bin, "./cmd/marquee")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/marquee: %w", err)
	}
	return bin, nil
}

// Input is what goes into the image.
type Input struct {
	Binary  []byte    // static linux ELF of marquee
	CACerts []byte    // PEM bundle
	Arch    string    // GOARCH
	Created time.Time // every file's time and the image's
}

// elfMachines are the GOARCH values the image may be built for.
var elfMachines = map[string]elf.Machine{
	"amd64":   elf.EM_X86_64,
	"arm64":   elf.EM_AARCH64,
	"arm":     elf.EM_ARM,
	"386":     elf.EM_386,
	"ppc64le": elf.EM_PPC64,
	"s390x":   elf.EM_S390,
	"riscv64": elf.EM_RISCV,
}

// CheckStatic returns an error unless b is a statically linked linux ELF
// executable for arch: FROM scratch there is no dynamic loader and no libc.
func CheckStatic(b []byte, arch string) error {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("binary: not an ELF file: %w", err)
	}
	defer f.Close()
	if want, ok := elfMachines[arch]; !ok || f.Machine != want {
		return fmt.Errorf("binary: machine %s, want GOARCH %s", f.Machine, arch)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return errors.New("binary: dynamically linked (it has an interpreter): build it with CGO_ENABLED=0")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		return fmt.Errorf("binary: needs shared libraries %v: build it with CGO_ENABLED=0", libs)
	}
	return nil
}

// Build assembles the image.
func Build(in Input) (v1.Image, error) {
	if err := CheckStatic(in.Binary, in.Arch); err != nil {
		return nil, err
	}
	if !bytes.Contains(in.CACerts, []byte("-----BEGIN CERTIFICATE-----")) {
		return nil, errors.New("CA certificates: no PEM certificate in the bundle")
	}
	layerTar, err := rootfs(in)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	created := v1.Time{Time: in.Created}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History: v1.History{
			Created:   created,
			CreatedBy: "deploy/image: " + Entrypoint + ", /etc/passwd, /etc/group, CA certificates, " + Home + ", /tmp",
		},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Created = created
	cf.OS = "linux"
	cf.Architecture = in.Arch
	if in.Arch == "arm64" {
		cf.Variant = "v8"
	}
	cf.Config = v1.Config{
		User:       fmt.Sprintf("%d:%d", UID, UID),
		Entrypoint: []string{Entrypoint},
		WorkingDir: Home,
		Env: []string{
			"PATH=/usr/local/bin:/usr/bin:/bin",
			"HOME=" + Home,
			"SSL_CERT_FILE=" + CAFile,
		},
		ExposedPorts: map[string]struct{}{"8080/tcp": {}, "9090/tcp": {}},
		StopSignal:   "SIGTERM",
		Labels: map[string]string{
			"org.opencontainers.image.title":       "marquee",
			"org.opencontainers.image.description": "CDN-friendly broadcast origin: NATS feeds as cacheable Server-Sent Events",
		},
	}
	return mutate.ConfigFile(img, cf)
}

// rootfs is the image's one layer, uncompressed, in a fixed order.
func rootfs(in Input) ([]byte, error) {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:%s:/sbin/nologin\n", User, UID, UID, User, Home)
	group := fmt.Sprintf("root:x:0:\n%s:x:%d:\n", User, UID)
	type entry struct {
		name string
		mode int64
		uid  int
		body []byte
		dir  bool
	}
	dir := func(name string, mode int64, uid int) entry {
		return entry{name: name, mode: mode, uid: uid, dir: true}
	}
	file := func(name string, mode int64, body []byte) entry {
		return entry{name: name, mode: mode, body: body}
	}
	entries := []entry{
		dir("etc/", 0o755, 0),
		file("etc/group", 0o644, []byte(group)),
		file("etc/nsswitch.conf", 0o644, []byte("hosts: files dns\n")),
		file("etc/passwd", 0o644, []byte(passwd)),
		dir("etc/ssl/", 0o755, 0),
		dir("etc/ssl/certs/", 0o755, 0),
		file(strings.TrimPrefix(CAFile, "/"), 0o644, in.CACerts),
		dir("home/", 0o755, 0),
		dir(strings.TrimPrefix(Home, "/")+"/", 0o700, UID),
		dir("tmp/", 0o1777, 0),
		dir("usr/", 0o755, 0),
		dir("usr/local/", 0o755, 0),
		dir("usr/local/bin/", 0o755, 0),
		file(strings.TrimPrefix(Entrypoint, "/"), 0o755, in.Binary),
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name:    e.name,
			Mode:    e.mode,
			Uid:     e.uid,
			Gid:     e.uid,
			ModTime: in.Created,
			Format:  tar.FormatPAX,
		}
		if e.uid == UID {
			h.Uname, h.Gname = User, User
		} else {
			h.Uname, h.Gname = "root", "root"
		}
		if e.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteArchive writes img as an OCI image layout that is also a docker
// save archive, named tag.
func WriteArchive(path string, img v1.Image, tag string) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("tag %q: %w", tag, err)
	}
	manifest, err := img.RawManifest()
	if err != nil {
		return err
	}
	mediaType, err := img.MediaType()
	if err != nil {
		return err
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	blob := func(b []byte) string {
		sum := sha256.Sum256(b)
		return "blobs/sha256/" + hex.EncodeToString(sum[:])
	}
	type file struct {
		name string
		body []byte
	}
	files := []file{{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}` + "\n")}}

	var layerPaths []string
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return err
		}
		files = append(files, file{blob(b), b})
		layerPaths = append(layerPaths, blob(b))
	}
	files = append(files, file{blob(config), config}, file{blob(manifest), manifest})

	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	index, err := json.Marshal(v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests: []v1.Descriptor{{
			MediaType: mediaType,
			Size:      int64(len(manifest)),
			Digest:    v1.Hash{Algorithm: "sha256", Hex: strings.TrimPrefix(blob(manifest), "blobs/sha256/")},
			Platform:  &v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant},
			Annotations: map[string]string{
				"io.containerd.image.name":          containerdName(ref),
				"org.opencontainers.image.ref.name": ref.TagStr(),
			},
		}},
	})
	if err != nil {
		return err
	}
	files = append(files, file{"index.json", append(index, '\n')})
	dockerManifest, err := json.Marshal([]struct {
		Config   string
		RepoTags []string
		Layers   []string
	}{{Config: blob(config), RepoTags: []string{dockerTag(ref)}, Layers: layerPaths}})
	if err != nil {
		return err
	}
	files = append(files, file{"manifest.json", append(dockerManifest, '\n')})

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	for _, f := range files {
		h := &tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f.body)), ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := tw.Write(f.body); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// containerdName is the fully qualified name containerd gives the image
// (docker.io/library/marquee:dev).
func containerdName(ref name.Tag) string {
	reg := ref.RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	return reg + "/" + ref.RepositoryStr() + ":" + ref.TagStr()
}

// dockerTag is the name docker load gives the image: short for Docker
// Hub (marquee:dev), fully qualified elsewhere.
func dockerTag(ref name.Tag) string {
	if ref.RegistryStr() == name.DefaultRegistry {
		return strings.TrimPrefix(ref.RepositoryStr(), "library/") + ":" + ref.TagStr()
	}
	return ref.Name()
}
