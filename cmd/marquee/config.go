package main

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"

	"github.com/caarlos0/env/v11"

	"marquee/internal/app"
)

// config is every setting of the binary: logging, and the app's settings
// composed of the packages' own config structs. All variables carry the
// MARQUEE_ prefix.
type config struct {
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `env:"LOG_LEVEL" envDefault:"info"`
	// LogFormat is text or json. Default text.
	LogFormat string `env:"LOG_FORMAT" envDefault:"text"`

	app.Config

	// unknown are the MARQUEE_ variables that are no setting (warned
	// about at start).
	unknown []unknownSetting
}

func parseConfig(environ []string) (config, error) {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	cfg, err := env.ParseAsWithOptions[config](env.Options{Prefix: "MARQUEE_", Environment: m})
	if err != nil {
		return cfg, fmt.Errorf("config: %w", nameVariables(err))
	}
	// The env library gives a variable set to "" its default. For these
	// settings empty is a value of its own ("off"), as the README says.
	for name, field := range emptyTurnsOff(&cfg) {
		if v, ok := m[name]; ok && strings.TrimSpace(v) == "" {
			*field = ""
		}
	}
	cfg.unknown = unknownSettings(m)
	return cfg, nil
}

// emptyTurnsOff returns the settings with a default that an empty value
// turns off, by variable.
func emptyTurnsOff(c *config) map[string]*string {
	return map[string]*string{"MARQUEE_ADMIN_ADDR": &c.AdminAddr}
}

// settingVars returns the variable of every setting, by Go field name.
func settingVars() map[string]string {
	vars := map[string]string{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			if tag, ok := f.Tag.Lookup("env"); ok {
				vars[f.Name] = "MARQUEE_" + strings.Split(tag, ",")[0]
			} else if f.Type.Kind() == reflect.Struct && f.IsExported() {
				walk(f.Type)
			}
		}
	}
	walk(reflect.TypeFor[config]())
	return vars
}

// unknownSetting is a MARQUEE_ variable that is no setting: a typo, or a
// setting of another version. Like is the closest setting's name, or "".
type unknownSetting struct{ Name, Like string }

// unknownSettings returns the MARQUEE_ variables of env that marquee does
// not read, sorted, each with the setting it most likely meant (at most a
// third of the letters after the prefix edited). A typo in, say,
// MARQUEE_PROTECTED_FEEDS would otherwise leave a feed public in silence.
func unknownSettings(env map[string]string) []unknownSetting {
	known := map[string]bool{}
	for _, v := range settingVars() {
		known[v] = true
	}
	var out []unknownSetting
	for name := range env {
		if !strings.HasPrefix(name, "MARQUEE_") || known[name] {
			continue
		}
		u := unknownSetting{Name: name}
		rest := name[len("MARQUEE_"):]
		best := len(rest)/3 + 1
		for k := range known {
			if d := editDistance(rest, k[len("MARQUEE_"):]); d < best || (d == best && u.Like != "" && k < u.Like) {
				best, u.Like = d, k
			}
		}
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b unknownSetting) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// editDistance is the Levenshtein distance of a and b (bytes).
func editDistance(a, b string) int {
	prev, cur := make([]int, len(b)+1), make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// nameVariables rewrites the env library's parse errors, which name the Go
// field, into errors that name the environment variable.
func nameVariables(err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	vars := settingVars()
	var errs []error
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) && vars[pe.Name] != "" {
			errs = append(errs, fmt.Errorf("%s: invalid value: %w", vars[pe.Name], pe.Err))
			continue
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// Validate checks the logging settings and the app's, naming the variable
// at fault.
func (c config) Validate() error {
	if _, err := c.level(); err != nil {
		return err
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("MARQUEE_LOG_FORMAT must be text or json, got %q", c.LogFormat)
	}
	return c.Config.Validate()
}

func (c config) level() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return l, fmt.Errorf("MARQUEE_LOG_LEVEL must be debug, info, warn or error, got %q", c.LogLevel)
	}
	return l, nil
}
