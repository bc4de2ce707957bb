package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"marquee/cdn"
)

// TestREADMEListsEverySetting keeps the README's settings table honest:
// every environment variable the binary reads appears in it.
func TestREADMEListsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var walk func(rt reflect.Type)
	walk = func(rt reflect.Type) {
		for i := range rt.NumField() {
			f := rt.Field(i)
			if tag, ok := f.Tag.Lookup("env"); ok {
				name := "MARQUEE_" + strings.Split(tag, ",")[0]
				if !strings.Contains(string(readme), "`"+name+"`") {
					t.Errorf("README does not document %s", name)
				}
			} else if f.Type.Kind() == reflect.Struct && f.IsExported() {
				walk(f.Type)
			}
		}
	}
	walk(reflect.TypeFor[config]())
}

// TestREADMEListsEveryMetric: every marquee_ metric the code defines
// (prometheus Opts names and Descs, in every non-test Go file of the
// module) is named in the README, as `name` or `name{labels}`. The demo's
// exposition is checked against it too (TestRunDemo), but a vector without
// series does not show there.
func TestREADMEListsEveryMetric(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	def := regexp.MustCompile(`(?:Name:\s*|NewDesc\()"(marquee_[a-z0-9_]+)"`)
	found := 0
	err = filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "artifacts" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range def.FindAllSubmatch(src, -1) {
			found++
			name := string(m[1])
			if !strings.Contains(string(readme), "`"+name+"`") && !strings.Contains(string(readme), "`"+name+"{") {
				t.Errorf("README does not name the metric %s (%s)", name, path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found < 30 {
		t.Fatalf("found %d metric definitions: the pattern no longer matches the code", found)
	}
}

// TestREADMEListsEveryRoute: every route of the public and the admin
// listener is in the README's URL section: as `GET pattern`, or, for the
// tokened twins listed together, as `…/t/{token}rest` or `…rest`.
func TestREADMEListsEveryRoute(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	start := strings.Index(readme, "\n## URLs")
	end := strings.Index(readme, "\n### The wire format")
	if start < 0 || end < start {
		t.Fatal("README has no URLs section")
	}
	urls := readme[start:end]
	documented := func(p string) bool {
		p = strings.TrimSuffix(p, "{$}")
		if strings.Contains(urls, "`GET "+p+"`") || strings.Contains(urls, "`"+p+"`") {
			return true
		}
		if _, rest, ok := strings.Cut(p, "/t/{token}"); ok && rest != "" {
			return strings.Contains(urls, "`…/t/{token}"+rest+"`") || strings.Contains(urls, "`…"+rest+"`")
		}
		return false
	}
	for _, r := range append(slices.Clone(cdn.PublicRoutes), cdn.AdminRoutes...) {
		if !documented(r.Pattern) {
			t.Errorf("README's URLs section does not list %s", r.Pattern)
		}
	}
}
