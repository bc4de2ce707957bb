package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"marquee/feed"
	"marquee/origin"
	"marquee/segmenter"
)

// config is every setting of the binary, composed of the packages' own
// config structs. All variables carry the MARQUEE_ prefix.
type config struct {
	// Addr is the public listener (viewers, CDN). Default ":8080".
	Addr string `env:"ADDR" envDefault:":8080"`
	// AdminAddr is the admin listener (/metrics, /healthz, /readyz). Default
	// "127.0.0.1:9090"; empty disables it.
	AdminAddr string `env:"ADMIN_ADDR" envDefault:"127.0.0.1:9090"`
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `env:"LOG_LEVEL" envDefault:"info"`
	// LogFormat is text or json. Default text.
	LogFormat string `env:"LOG_FORMAT" envDefault:"text"`
	// ShutdownTimeout bounds the whole drain at SIGINT/SIGTERM. Default 30s.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"30s"`

	Segmenter segmenter.Config
	Origin    origin.Config
	NATS      feed.Config // includes the embedded server and the demo

	// allowShortSegments lets tests of run use segments under 10 s.
	allowShortSegments bool
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
	return cfg, nil
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

func (c config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("MARQUEE_ADDR must be host:port, got %q", c.Addr)
	}
	if c.AdminAddr != "" {
		if _, _, err := net.SplitHostPort(c.AdminAddr); err != nil {
			return fmt.Errorf("MARQUEE_ADMIN_ADDR must be host:port or empty, got %q", c.AdminAddr)
		}
	}
	if _, err := c.level(); err != nil {
		return err
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("MARQUEE_LOG_FORMAT must be text or json, got %q", c.LogFormat)
	}
	if c.ShutdownTimeout < time.Second {
		return fmt.Errorf("MARQUEE_SHUTDOWN_TIMEOUT must be at least 1s, got %s", c.ShutdownTimeout)
	}
	if !c.allowShortSegments {
		if err := c.Segmenter.Validate(); err != nil {
			return err
		}
	}
	for _, v := range []interface{ Validate() error }{c.Origin, c.NATS} {
		if err := v.Validate(); err != nil {
			return err
		}
	}
	return nil
}

func (c config) level() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return l, fmt.Errorf("MARQUEE_LOG_LEVEL must be debug, info, warn or error, got %q", c.LogLevel)
	}
	return l, nil
}
