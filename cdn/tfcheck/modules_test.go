package tfcheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// The Terraform directories, relative to this package.
const (
	tfCloudflare        = "../../terraform/cloudflare"
	tfCloudFront        = "../../terraform/cloudfront"
	tfExampleCloudflare = "../../terraform/examples/cloudflare"
	tfExampleCloudFront = "../../terraform/examples/cloudfront"
)

func TestTerraformModules(t *testing.T) {
	for _, tc := range []struct {
		dir      string
		vars     map[string]cty.Value
		provider string // source of the one provider, pinned to a major version
		major    string
	}{
		{tfCloudflare, cloudflareVars, "cloudflare/cloudflare", "5"},
		{tfCloudFront, cloudfrontVars, "hashicorp/aws", "6"},
		{tfExampleCloudflare, cloudflareVars, "cloudflare/cloudflare", "5"},
		{tfExampleCloudFront, cloudfrontVars, "hashicorp/aws", "6"},
	} {
		t.Run(filepath.Base(filepath.Dir(tc.dir))+"/"+filepath.Base(tc.dir), func(t *testing.T) {
			m := loadModule(t, tc.dir, tc.vars)
			for _, v := range m.blocksOf("variable") {
				for _, a := range []string{"type", "description"} {
					if _, ok := v.Body.Attributes[a]; !ok {
						t.Errorf("variable %s has no %s", v.Labels[0], a)
					}
				}
				// Defaults (and the test's sample values) pass validation.
				if !m.validates(t, v.Labels[0], m.vars[v.Labels[0]]) {
					t.Errorf("variable %s: its default or sample value fails its own validation", v.Labels[0])
				}
			}
			for _, o := range m.blocksOf("output") {
				if _, ok := o.Body.Attributes["description"]; !ok {
					t.Errorf("output %s has no description", o.Labels[0])
				}
			}
			tf := m.blocksOf("terraform")
			if len(tf) != 1 {
				t.Fatalf("%d terraform blocks", len(tf))
			}
			if _, ok := tf[0].Body.Attributes["required_version"]; !ok {
				t.Errorf("no required_version")
			}
			rp := blocks(tf[0].Body, "required_providers")
			if len(rp) != 1 {
				t.Fatalf("%d required_providers blocks", len(rp))
			}
			if len(rp[0].Body.Attributes) != 1 {
				t.Errorf("%d required providers, want 1", len(rp[0].Body.Attributes))
			}
			for name, a := range rp[0].Body.Attributes {
				v := m.eval(t, a.Expr)
				src, _ := goValue(t, get(v, "source")).(string)
				ver, _ := goValue(t, get(v, "version")).(string)
				if src != tc.provider || !strings.HasPrefix(ver, "~> "+tc.major+".") {
					t.Errorf("provider %s = {source %q, version %q}, want %s pinned with \"~> %s.x\"", name, src, ver, tc.provider, tc.major)
				}
			}
		})
	}
}

func TestTerraformExamples(t *testing.T) {
	for _, tc := range []struct {
		dir, module string
		vars        map[string]cty.Value
		mode        string
	}{
		{tfExampleCloudflare, tfCloudflare, cloudflareVars, "parts"},
		{tfExampleCloudFront, tfCloudFront, cloudfrontVars, "stream"},
	} {
		t.Run(filepath.Base(tc.dir), func(t *testing.T) {
			ex := loadModule(t, tc.dir, tc.vars)
			mod := loadModule(t, tc.module, tc.vars)
			calls := ex.blocksOf("module")
			if len(calls) != 1 {
				t.Fatalf("%d module calls, want 1", len(calls))
			}
			call := calls[0]
			if got, want := ex.str(t, ex.attr(t, call.Body, "source")), "../../"+filepath.Base(tc.module); got != want {
				t.Errorf("module source %q, want %q", got, want)
			}
			// Every argument is a variable of the module and every required
			// variable is given ("terraform validate" would say so, but it
			// needs the provider).
			declared := map[string]bool{}
			for _, v := range mod.blocksOf("variable") {
				_, hasDefault := v.Body.Attributes["default"]
				declared[v.Labels[0]] = true
				if _, given := call.Body.Attributes[v.Labels[0]]; !hasDefault && !given {
					t.Errorf("required variable %s of %s not given", v.Labels[0], tc.module)
				}
			}
			for name := range call.Body.Attributes {
				if name != "source" && !declared[name] {
					t.Errorf("argument %s is not a variable of %s", name, tc.module)
				}
			}
			outputs := map[string]bool{}
			for _, o := range mod.blocksOf("output") {
				outputs[o.Labels[0]] = true
			}
			for _, o := range ex.blocksOf("output") {
				for _, tr := range o.Body.Attributes["value"].Expr.Variables() {
					if tr.RootName() != "module" || len(tr) < 3 {
						continue
					}
					if a, ok := tr[2].(hcl.TraverseAttr); ok && !outputs[a.Name] {
						t.Errorf("output %s uses module output %s, which %s does not have", o.Labels[0], a.Name, tc.module)
					}
				}
			}
			// The example says which mode the origin's client uses, and
			// passes the module's timing checks.
			if got := ex.str(t, ex.attr(t, call.Body, "client_mode")); got != tc.mode {
				t.Errorf("example client_mode = %q, want %q", got, tc.mode)
			}
			if a, ok := call.Body.Attributes["origin_read_timeout"]; ok {
				checkReadTimeout(t, "example origin_read_timeout", time.Duration(ex.int(t, ex.eval(t, a.Expr)))*time.Second)
			}
			if _, err := os.Stat(filepath.Join(tc.dir, "terraform.tfvars.example")); err != nil {
				t.Errorf("no terraform.tfvars.example: %v", err)
			}
		})
	}
	if _, err := os.Stat("../../terraform/examples/README.md"); err != nil {
		t.Errorf("examples have no README: %v", err)
	}
}
