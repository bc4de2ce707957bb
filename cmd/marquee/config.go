package main

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
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
	return cfg, nil
}

// emptyTurnsOff returns the settings with a default that an empty value
// turns off, by variable.
func emptyTurnsOff(c *config) map[string]*string {
	return map[string]*string{"MARQUEE_ADMIN_ADDR": &c.AdminAddr}
}

// nameVariables rewrites the env library's parse errors, which name the Go
// field, into errors that name the environment variable.
func nameVariables(err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
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
