package deploy

import (
	"bytes"
	"cmp"
	"fmt"
	"go/ast"
	goparser "go/parser"
	"go/token"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caarlos0/env/v11"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	ktypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"marquee/cdn"
	"marquee/internal/app"
)

const (
	// k8sDir is the kustomize base. Overlays of it are the other
	// directories of deploy/ with a kustomization (kind: a trial without
	// NATS credentials).
	k8sDir = "kubernetes"

	// drainMargin is what the checks of the drain timing leave for what
	// they do not count: teardown after the drain (listeners, NATS), and
	// the kubelet's own latency between preStop, SIGTERM and SIGKILL.
	drainMargin = 5 * time.Second

	// nonRootUID is the user of the image deploy/image builds.
	nonRootUID = 65532

	// image is the image deploy/image builds by default, which the
	// kustomization names (kind load image-archive uses it as it is).
	image = "marquee:dev"

	// natsRelease is the release name of the NATS Helm chart that
	// nats-values.yaml documents; the chart names its client Service after
	// it, on port 4222.
	natsRelease = "nats"
)

// kinds are the Kubernetes API types the manifests may use.
var kinds = map[string]func() any{
	"v1/Namespace":                  func() any { return new(corev1.Namespace) },
	"v1/ServiceAccount":             func() any { return new(corev1.ServiceAccount) },
	"v1/ConfigMap":                  func() any { return new(corev1.ConfigMap) },
	"v1/Service":                    func() any { return new(corev1.Service) },
	"apps/v1/Deployment":            func() any { return new(appsv1.Deployment) },
	"policy/v1/PodDisruptionBudget": func() any { return new(policyv1.PodDisruptionBudget) },
}

// decodeStrict decodes every YAML document of b into its Kubernetes API
// type, failing on unknown or duplicate fields.
func decodeStrict(b []byte) ([]any, error) {
	var objs []any
	for i, doc := range splitYAML(b) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		newObj, ok := kinds[tm.APIVersion+"/"+tm.Kind]
		if !ok {
			return nil, fmt.Errorf("document %d: %s %s is not a kind these checks know (add it to kinds)", i+1, tm.APIVersion, tm.Kind)
		}
		obj := newObj()
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			return nil, fmt.Errorf("document %d (%s): %w", i+1, tm.Kind, err)
		}
		objs = append(objs, obj)
	}
	return objs, nil
}

// splitYAML splits a YAML stream into its non-empty documents.
func splitYAML(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(append([]byte("\n"), b...), []byte("\n---")) {
		if len(bytes.TrimSpace(stripComments(d))) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

func stripComments(b []byte) []byte {
	var out []byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		if t := bytes.TrimSpace(l); len(t) > 0 && t[0] != '#' {
			out = append(out, l...)
			out = append(out, '\n')
		}
	}
	return out
}

// kustomization reads dir/kustomization.yaml strictly into kustomize's
// own type.
func kustomization(t *testing.T, dir string) ktypes.Kustomization {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k ktypes.Kustomization
	if err := yaml.UnmarshalStrict(b, &k); err != nil {
		t.Fatalf("%s/kustomization.yaml: %v", dir, err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("%s/kustomization.yaml: %s %s", dir, k.APIVersion, k.Kind)
	}
	return k
}

// overlays are the directories of deploy/ besides the base that hold a
// kustomization: each of the base and inline patches, nothing else.
func overlays(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(e.Name(), "kustomization.yaml")); e.IsDir() && e.Name() != k8sDir && err == nil {
			dirs = append(dirs, e.Name())
		}
	}
	if len(dirs) == 0 {
		t.Fatal("no overlay found (deploy/kind)")
	}
	return dirs
}

// TestManifestsDecodeStrictly: every file of kubernetes/ is a resource of
// the kustomization, an input of one of its generators or the NATS chart's
// values; every resource file decodes strictly into the API types.
func TestManifestsDecodeStrictly(t *testing.T) {
	k := kustomization(t, k8sDir)
	known := map[string]string{"kustomization.yaml": "kustomization", "nats-values.yaml": "values of the NATS chart"}
	for _, r := range k.Resources {
		known[r] = "resource"
	}
	for _, g := range k.ConfigMapGenerator {
		for _, f := range append(append([]string{}, g.EnvSources...), g.FileSources...) {
			known[f] = "generator input"
		}
	}
	entries, err := os.ReadDir(k8sDir)
	if err != nil {
		t.Fatal(err)
	}
	onDisk := map[string]bool{}
	for _, e := range entries {
		onDisk[e.Name()] = true
		if _, ok := known[e.Name()]; !ok {
			t.Errorf("%s/%s is neither a resource of kustomization.yaml nor an input of it", k8sDir, e.Name())
		}
	}
	for f, what := range known {
		if !onDisk[f] {
			t.Errorf("kustomization.yaml names %s (%s), which does not exist", f, what)
		}
	}
	for _, r := range k.Resources {
		b, err := os.ReadFile(filepath.Join(k8sDir, r))
		if err != nil {
			t.Fatal(err)
		}
		objs, err := decodeStrict(b)
		if err != nil {
			t.Errorf("%s: %v", r, err)
		} else if len(objs) == 0 {
			t.Errorf("%s: no object", r)
		}
	}
	for _, dir := range overlays(t) {
		k := kustomization(t, dir)
		if !slices.Equal(k.Resources, []string{"../" + k8sDir}) {
			t.Errorf("%s: an overlay's resources are the base (../%s), got %v", dir, k8sDir, k.Resources)
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Name() != "kustomization.yaml" {
				t.Errorf("%s/%s: an overlay holds its kustomization only (inline patches)", dir, e.Name())
			}
		}
	}
}

// settings returns every environment variable marquee reads: the env tags
// of internal/app.Config (walked like cmd/marquee's README test does) and
// those of cmd/marquee's own config (logging), which lives in package main
// and is read from its source.
func settings(t *testing.T) map[string]bool {
	t.Helper()
	s := map[string]bool{}
	var walk func(rt reflect.Type)
	walk = func(rt reflect.Type) {
		for i := range rt.NumField() {
			f := rt.Field(i)
			if tag, ok := f.Tag.Lookup("env"); ok {
				s["MARQUEE_"+strings.Split(tag, ",")[0]] = true
			} else if f.Type.Kind() == reflect.Struct && f.IsExported() {
				walk(f.Type)
			}
		}
	}
	walk(reflect.TypeFor[app.Config]())

	const src = "../cmd/marquee/config.go"
	f, err := goparser.ParseFile(token.NewFileSet(), src, nil, goparser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	own := 0
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok || ts.Name.Name != "config" {
			return true
		}
		st, ok := ts.Type.(*ast.StructType)
		if !ok {
			return false
		}
		for _, fld := range st.Fields.List {
			if fld.Tag == nil {
				continue
			}
			tag, err := strconv.Unquote(fld.Tag.Value)
			if err != nil {
				continue
			}
			if v, ok := reflect.StructTag(tag).Lookup("env"); ok {
				s["MARQUEE_"+strings.Split(v, ",")[0]] = true
				own++
			}
		}
		return false
	})
	if own == 0 || !s["MARQUEE_LOG_LEVEL"] {
		t.Fatalf("%s: found no settings of type config (LOG_LEVEL, LOG_FORMAT)", src)
	}
	return s
}

// built is the output of the kustomization, decoded strictly.
type built struct {
	namespaces []*corev1.Namespace
	deployment *appsv1.Deployment
	services   []*corev1.Service
	configMaps map[string]*corev1.ConfigMap
	pdbs       []*policyv1.PodDisruptionBudget
	accounts   []*corev1.ServiceAccount
}

func build(t *testing.T, dir string) built {
	t.Helper()
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := rm.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeStrict(out)
	if err != nil {
		t.Fatalf("kustomize build %s: %v\n%s", dir, err, out)
	}
	b := built{configMaps: map[string]*corev1.ConfigMap{}}
	for _, o := range objs {
		switch o := o.(type) {
		case *corev1.Namespace:
			b.namespaces = append(b.namespaces, o)
		case *appsv1.Deployment:
			if b.deployment != nil {
				t.Fatalf("two Deployments: %s and %s", b.deployment.Name, o.Name)
			}
			b.deployment = o
		case *corev1.Service:
			b.services = append(b.services, o)
		case *corev1.ConfigMap:
			b.configMaps[o.Name] = o
		case *policyv1.PodDisruptionBudget:
			b.pdbs = append(b.pdbs, o)
		case *corev1.ServiceAccount:
			b.accounts = append(b.accounts, o)
		}
	}
	if b.deployment == nil {
		t.Fatal("kustomize build: no Deployment")
	}
	return b
}

// container returns the marquee container of the Deployment.
func (b built) container(t *testing.T) *corev1.Container {
	t.Helper()
	for i, c := range b.deployment.Spec.Template.Spec.Containers {
		if c.Name == "marquee" {
			return &b.deployment.Spec.Template.Spec.Containers[i]
		}
	}
	t.Fatal("Deployment has no container named marquee")
	return nil
}

// environment returns the container's environment as marquee sees it:
// the ConfigMaps of envFrom, then env (which wins), and where each
// variable was set.
func (b built) environment(t *testing.T, c *corev1.Container) (map[string]string, map[string]string) {
	t.Helper()
	vars, from := map[string]string{}, map[string]string{}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil {
			t.Errorf("envFrom %+v: only ConfigMaps hold settings", ef)
			continue
		}
		cm, ok := b.configMaps[ef.ConfigMapRef.Name]
		if !ok {
			t.Errorf("envFrom names ConfigMap %s, which the kustomization does not make", ef.ConfigMapRef.Name)
			continue
		}
		for k, v := range cm.Data {
			vars[ef.Prefix+k] = v
			from[ef.Prefix+k] = "ConfigMap " + cm.Name
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			vars[e.Name] = ""
		} else {
			vars[e.Name] = e.Value
		}
		from[e.Name] = "env of container " + c.Name
	}
	return vars, from
}

// TestManifestsKeepInvariants builds the base and every overlay and checks
// what marquee needs of the objects. The kind overlay is the base without
// NATS credentials.
func TestManifestsKeepInvariants(t *testing.T) {
	for _, dir := range append([]string{k8sDir}, overlays(t)...) {
		t.Run(dir, func(t *testing.T) {
			checkBuilt(t, build(t, dir), filepath.Base(dir) != "kind")
		})
	}
}

func checkBuilt(t *testing.T, b built, withCreds bool) {
	d := b.deployment
	pod := d.Spec.Template
	c := b.container(t)
	known := settings(t)

	// Settings: only real ones, with values marquee accepts.
	vars, from := b.environment(t, c)
	m := map[string]string{}
	for k, v := range vars {
		if !strings.HasPrefix(k, "MARQUEE_") {
			continue
		}
		if !known[k] {
			t.Errorf("%s sets %s, which is no marquee setting", from[k], k)
		}
		m[k] = v
	}
	if len(b.configMaps) == 0 || len(c.EnvFrom) == 0 {
		t.Error("the settings must come from a ConfigMap (envFrom)")
	}
	cfg, err := env.ParseAsWithOptions[app.Config](env.Options{Prefix: "MARQUEE_", Environment: m})
	if err != nil {
		t.Fatalf("settings: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("settings: %v", err)
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(cmp.Or(m["MARQUEE_LOG_LEVEL"], "info"))); err != nil {
		t.Errorf("MARQUEE_LOG_LEVEL: %v", err)
	}
	if f := cmp.Or(m["MARQUEE_LOG_FORMAT"], "text"); f != "text" && f != "json" {
		t.Errorf("MARQUEE_LOG_FORMAT=%q", f)
	}

	// Ports: the listeners on the pod IP, on the ports the container names.
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	listenPort := func(variable, addr, name string) int32 {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("%s=%q: %v", variable, addr, err)
		}
		if host != "" && host != "0.0.0.0" && host != "::" {
			t.Errorf("%s=%q listens on %s only: the kubelet and Prometheus reach the pod IP (use :%s)", variable, addr, host, port)
		}
		n, _ := strconv.Atoi(port)
		if ports[name] != int32(n) {
			t.Errorf("%s=%q, but container port %q is %d", variable, addr, name, ports[name])
		}
		return int32(n)
	}
	if cfg.AdminAddr == "" {
		t.Fatal("MARQUEE_ADMIN_ADDR is empty: the probes and /metrics need the admin listener")
	}
	adminPort := listenPort("MARQUEE_ADMIN_ADDR", cfg.AdminAddr, "admin")
	publicPort := listenPort("MARQUEE_ADDR", cfg.Addr, "http")
	resolve := func(p intstr.IntOrString) int32 {
		if p.Type == intstr.String {
			n, ok := ports[p.StrVal]
			if !ok {
				t.Errorf("port %q is no port of the container", p.StrVal)
			}
			return n
		}
		return p.IntVal
	}

	// Probes: on the admin listener, on routes it serves.
	adminRoutes := map[string]bool{}
	for _, r := range cdn.AdminRoutes {
		adminRoutes[r.Pattern] = true
	}
	for _, pr := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"readinessProbe", c.ReadinessProbe, "/readyz"}, {"livenessProbe", c.LivenessProbe, "/healthz"}} {
		if pr.probe == nil || pr.probe.HTTPGet == nil {
			t.Errorf("%s: want an httpGet probe of %s", pr.name, pr.path)
			continue
		}
		g := pr.probe.HTTPGet
		if !adminRoutes[g.Path] {
			t.Errorf("%s: path %s is no route of the admin listener (cdn.AdminRoutes)", pr.name, g.Path)
		}
		if g.Path != pr.path {
			t.Errorf("%s: path %s, want %s", pr.name, g.Path, pr.path)
		}
		if resolve(g.Port) != adminPort {
			t.Errorf("%s: port %s is not the admin listener's %d", pr.name, g.Port.String(), adminPort)
		}
	}

	// Drain: the grace period covers the preStop pause and the whole
	// shutdown, which covers readiness 503 and the spread of stream ends.
	if lc := c.Lifecycle; lc == nil || lc.PreStop == nil || lc.PreStop.Sleep == nil {
		t.Fatal("preStop: want a sleep action (the image has no shell for exec)")
	}
	preStop := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	if preStop <= 0 {
		t.Error("preStop sleeps no time: load balancers may still send viewers when the drain starts")
	}
	if pod.Spec.TerminationGracePeriodSeconds == nil {
		t.Fatal("terminationGracePeriodSeconds unset")
	}
	grace := time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	drain := cfg.Origin.DrainDelay + cfg.Origin.DrainSpread
	if cfg.ShutdownTimeout < drain+drainMargin {
		t.Errorf("MARQUEE_SHUTDOWN_TIMEOUT=%s does not cover MARQUEE_DRAIN_DELAY + MARQUEE_DRAIN_SPREAD (%s) + %s",
			cfg.ShutdownTimeout, drain, drainMargin)
	}
	if grace < preStop+cfg.ShutdownTimeout+drainMargin {
		t.Errorf("terminationGracePeriodSeconds=%s does not cover preStop (%s) + MARQUEE_SHUTDOWN_TIMEOUT (%s) + %s",
			grace, preStop, cfg.ShutdownTimeout, drainMargin)
	}

	// Non-root, read-only, nothing extra.
	psc, sc := pod.Spec.SecurityContext, c.SecurityContext
	switch {
	case psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot:
		t.Error("pod securityContext: runAsNonRoot must be true")
	case psc.RunAsUser == nil || *psc.RunAsUser != nonRootUID:
		t.Errorf("pod securityContext: runAsUser must be %d, the image's user", nonRootUID)
	case psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Error("pod securityContext: seccompProfile RuntimeDefault")
	}
	switch {
	case sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("container securityContext: allowPrivilegeEscalation must be false")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("container securityContext: readOnlyRootFilesystem must be true")
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
		t.Error("container securityContext: drop ALL capabilities, add none")
	}
	if pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken {
		t.Error("automountServiceAccountToken must be false: marquee calls no Kubernetes API")
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			t.Errorf("resources.requests.%s unset", r)
		}
	}
	if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
		t.Error("resources.limits.memory unset")
	}
	if c.Image != image {
		t.Errorf("image %q, want %q (what deploy/image builds; set yours with kustomize edit set image)", c.Image, image)
	}

	// NATS credentials: a file of a Secret, mounted read-only.
	creds := cfg.NATS.Credentials
	switch {
	case !withCreds:
		if creds != "" || len(pod.Spec.Volumes) > 0 || len(c.VolumeMounts) > 0 {
			t.Errorf("an overlay without NATS credentials: MARQUEE_NATS_CREDS=%q, %d volumes, %d mounts", creds, len(pod.Spec.Volumes), len(c.VolumeMounts))
		}
	case creds == "":
		t.Error("MARQUEE_NATS_CREDS unset: NATS credentials come from a Secret")
	default:
		found := false
		for _, vm := range c.VolumeMounts {
			rel, ok := strings.CutPrefix(creds, strings.TrimSuffix(vm.MountPath, "/")+"/")
			if !ok {
				continue
			}
			found = true
			if !vm.ReadOnly {
				t.Errorf("volume %s: mount read-only", vm.Name)
			}
			i := slices.IndexFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == vm.Name })
			if i < 0 || pod.Spec.Volumes[i].Secret == nil {
				t.Errorf("MARQUEE_NATS_CREDS=%s is on volume %s, which is no Secret", creds, vm.Name)
				continue
			}
			sec := pod.Spec.Volumes[i].Secret
			if len(sec.Items) > 0 && !slices.ContainsFunc(sec.Items, func(k corev1.KeyToPath) bool { return path.Clean(k.Path) == rel }) {
				t.Errorf("MARQUEE_NATS_CREDS=%s: Secret %s projects no file %s", creds, sec.SecretName, rel)
			}
			if sec.Optional != nil && *sec.Optional {
				t.Errorf("Secret %s is optional, but marquee cannot connect without the file", sec.SecretName)
			}
		}
		if !found {
			t.Errorf("MARQUEE_NATS_CREDS=%s is on no volume of the container", creds)
		}
	}

	// NATS from the chart: the URL of its client Service, the stream
	// replicated over the cluster nats-values.yaml makes.
	checkNATS(t, cfg)

	// Services: the public one targets the public port only; the admin
	// port is on none that leaves the cluster.
	podLabels := pod.Labels
	selects := func(sel map[string]string) bool {
		if len(sel) == 0 {
			return false
		}
		for k, v := range sel {
			if podLabels[k] != v {
				return false
			}
		}
		return true
	}
	if !selects(d.Spec.Selector.MatchLabels) {
		t.Errorf("Deployment selector %v does not select its pods %v", d.Spec.Selector.MatchLabels, podLabels)
	}
	var public, metrics bool
	for _, s := range b.services {
		if !selects(s.Spec.Selector) {
			t.Errorf("Service %s: selector %v does not select marquee's pods", s.Name, s.Spec.Selector)
		}
		exposed := s.Spec.Type == corev1.ServiceTypeLoadBalancer || s.Spec.Type == corev1.ServiceTypeNodePort ||
			s.Spec.Type == corev1.ServiceTypeExternalName || len(s.Spec.ExternalIPs) > 0
		for _, p := range s.Spec.Ports {
			switch resolve(p.TargetPort) {
			case adminPort:
				metrics = true
				if exposed || s.Name == "marquee" {
					t.Errorf("Service %s (type %s) exposes the admin port %d: /metrics must not be public", s.Name, s.Spec.Type, adminPort)
				}
			case publicPort:
				public = public || s.Name == "marquee"
			default:
				t.Errorf("Service %s: port %s targets %s, no listener of marquee", s.Name, p.Name, p.TargetPort.String())
			}
		}
	}
	if !public {
		t.Error("no Service marquee for the public port")
	}
	if !metrics {
		t.Error("no Service for the admin port (for Prometheus inside the cluster)")
	}
	if ann := pod.Annotations["prometheus.io/port"]; ann != "" && ann != strconv.Itoa(int(adminPort)) {
		t.Errorf("annotation prometheus.io/port=%s, but the admin listener is on %d", ann, adminPort)
	}
	if ann := pod.Annotations["prometheus.io/path"]; ann != "" && !adminRoutes[ann] {
		t.Errorf("annotation prometheus.io/path=%s is no admin route", ann)
	}

	// Disruptions: one replica at a time.
	if len(b.pdbs) != 1 {
		t.Fatalf("%d PodDisruptionBudgets, want 1", len(b.pdbs))
	}
	pdb := b.pdbs[0]
	if pdb.Spec.Selector == nil || !selects(pdb.Spec.Selector.MatchLabels) {
		t.Error("PodDisruptionBudget does not select marquee's pods")
	}
	replicas := int32(1)
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	if replicas < 2 {
		t.Errorf("replicas=%d: one replica cannot drain without an outage", replicas)
	}
	switch {
	case pdb.Spec.MaxUnavailable != nil:
		if v := pdb.Spec.MaxUnavailable; v.Type != intstr.Int || v.IntVal < 1 || v.IntVal >= replicas {
			t.Errorf("PodDisruptionBudget maxUnavailable %s: want 1 … replicas-1", v.String())
		}
	case pdb.Spec.MinAvailable != nil:
		if v := pdb.Spec.MinAvailable; v.Type != intstr.Int || v.IntVal >= replicas {
			t.Errorf("PodDisruptionBudget minAvailable %s blocks every eviction with %d replicas", v.String(), replicas)
		}
	default:
		t.Error("PodDisruptionBudget sets neither maxUnavailable nor minAvailable")
	}

	// Everything in one namespace, which the kustomization makes.
	if len(b.namespaces) != 1 {
		t.Fatalf("%d Namespaces, want 1", len(b.namespaces))
	}
	ns := b.namespaces[0].Name
	metas := []metav1.ObjectMeta{d.ObjectMeta, pdb.ObjectMeta}
	for _, s := range b.services {
		metas = append(metas, s.ObjectMeta)
	}
	for _, cm := range b.configMaps {
		metas = append(metas, cm.ObjectMeta)
	}
	for _, sa := range b.accounts {
		metas = append(metas, sa.ObjectMeta)
	}
	for _, om := range metas {
		if om.Namespace != ns {
			t.Errorf("%s is in namespace %q, want %q", om.Name, om.Namespace, ns)
		}
	}
	if sa := pod.Spec.ServiceAccountName; sa != "" && !slices.ContainsFunc(b.accounts, func(a *corev1.ServiceAccount) bool { return a.Name == sa }) {
		t.Errorf("serviceAccountName %s is not made by the kustomization", sa)
	}
}

// checkNATS holds the settings to nats-values.yaml: marquee's NATS URL is
// the chart's client Service, its stream has as many replicas as the
// cluster has servers, and the cluster runs JetStream.
func checkNATS(t *testing.T, cfg app.Config) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(k8sDir, "nats-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("helm upgrade --install "+natsRelease+" ")) {
		t.Errorf("nats-values.yaml: document the install as release %q", natsRelease)
	}
	var v struct {
		Config struct {
			Cluster struct {
				Enabled  bool
				Replicas int
			}
			JetStream struct {
				Enabled   bool
				FileStore struct {
					Enabled *bool
					PVC     struct {
						Enabled *bool
						Size    string
					}
				} `json:"fileStore"`
			} `json:"jetstream"`
		}
	}
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatalf("nats-values.yaml: %v", err)
	}
	cl, js := v.Config.Cluster, v.Config.JetStream
	if !cl.Enabled || cl.Replicas != 3 {
		t.Errorf("nats-values.yaml: config.cluster enabled=%v replicas=%d, want a three-node cluster", cl.Enabled, cl.Replicas)
	}
	if !js.Enabled || (js.FileStore.Enabled != nil && !*js.FileStore.Enabled) || (js.FileStore.PVC.Enabled != nil && !*js.FileStore.PVC.Enabled) {
		t.Error("nats-values.yaml: JetStream with a file store on persistent volumes")
	}
	if !cfg.NATS.JetStream {
		t.Error("MARQUEE_NATS_JETSTREAM=false: the pack runs marquee on JetStream")
	}
	if cfg.NATS.StreamReplicas != cl.Replicas {
		t.Errorf("MARQUEE_NATS_STREAM_REPLICAS=%d, but the NATS cluster has %d servers", cfg.NATS.StreamReplicas, cl.Replicas)
	}
	for _, s := range strings.Split(cfg.NATS.URL, ",") {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil {
			t.Errorf("MARQUEE_NATS_URL: %v", err)
			continue
		}
		if u.Scheme != "nats" && u.Scheme != "tls" {
			t.Errorf("MARQUEE_NATS_URL=%s: scheme nats or tls", s)
		}
		if h := strings.Split(u.Hostname(), ".")[0]; h != natsRelease || u.Port() != "4222" {
			t.Errorf("MARQUEE_NATS_URL=%s is not the client Service of the chart's release %q (%s:4222)", s, natsRelease, natsRelease)
		}
	}
}
