package token

import "errors"

// Error is a refusal of a token. Reason is a short, fixed word, usable as a
// metric label value.
type Error struct {
	Reason string
	msg    string
}

func (e *Error) Error() string { return "token: " + e.msg }

// The refusals Validate returns (compare with ==, or errors.Is).
var (
	ErrMissing     = &Error{ReasonMissing, "missing"}
	ErrMalformed   = &Error{ReasonMalformed, "malformed: want {key id}.{window start}-{mac}"}
	ErrUnknownKey  = &Error{ReasonUnknownKey, "unknown key id"}
	ErrBadMAC      = &Error{ReasonBadMAC, "bad signature"}
	ErrExpired     = &Error{ReasonExpired, "expired"}
	ErrNotYetValid = &Error{ReasonNotYetValid, "not valid yet"}
)

// Reasons of the refusals (Error.Reason).
const (
	ReasonMissing     = "missing"
	ReasonMalformed   = "malformed"
	ReasonUnknownKey  = "unknown_key"
	ReasonBadMAC      = "bad_mac"
	ReasonExpired     = "expired"
	ReasonNotYetValid = "not_yet_valid"
)

// Reasons lists every Error.Reason, for pre-creating metric labels.
var Reasons = []string{ReasonMissing, ReasonMalformed, ReasonUnknownKey, ReasonBadMAC, ReasonExpired, ReasonNotYetValid}

// ReasonOf returns the reason of a refusal returned by Validate, or
// "malformed" for any other non-nil error.
func ReasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ReasonMalformed
}

// ErrNoKeys: minting needs MARQUEE_TOKEN_KEYS.
var ErrNoKeys = errors.New("token: no keys: set MARQUEE_TOKEN_KEYS")
