package feed

import "errors"

var (
	// ErrInvalidConfig is wrapped by every error that Config.Validate returns.
	ErrInvalidConfig = errors.New("invalid config")
	// ErrAlreadyRunning is returned by a second call of Run on a Source or Demo.
	ErrAlreadyRunning = errors.New("already running")
	// ErrConnectionClosed is returned by Run when the NATS connection was
	// closed underneath it (it will never reconnect).
	ErrConnectionClosed = errors.New("nats connection closed")
	// ErrStreamMissing is wrapped by Status.Err (as text) and the errors of
	// the JetStream source while its stream does not exist and it may not
	// create it (Config.CreateStream false).
	ErrStreamMissing = errors.New("jetstream stream missing")
	// ErrNoURL is returned by Connect when Config.URL is empty.
	ErrNoURL = errors.New("no nats url")
	// ErrNotReady is returned by StartEmbedded when the server does not accept
	// connections in time.
	ErrNotReady = errors.New("embedded nats server not ready")
)

// ConfigError is one invalid configuration value. It names the environment
// variable (with EnvPrefix) so that an operator can fix it, and wraps
// ErrInvalidConfig.
type ConfigError struct {
	Var string // e.g. "MARQUEE_NATS_MAX_MESSAGE_BYTES"
	Msg string // e.g. "must be between 1 and 1048576, got 0"
}

func (e *ConfigError) Error() string { return e.Var + " " + e.Msg }

// Unwrap returns ErrInvalidConfig.
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }
