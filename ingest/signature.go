package ingest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The Standard Webhooks headers.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// maxIDLen bounds webhook-id: it becomes a JetStream message id (with
// ":<index>" for a batch), kept in the stream's duplicate table.
const maxIDLen = 256

// verifier checks Standard Webhooks signatures against several keys at
// once. It is immutable and safe for concurrent use.
type verifier struct {
	keys      [][]byte
	tolerance time.Duration
}

func newVerifier(secrets []string, tolerance time.Duration) (*verifier, error) {
	v := &verifier{tolerance: tolerance}
	for _, s := range secrets {
		key, err := decodeSecret(s)
		if err != nil {
			return nil, err
		}
		v.keys = append(v.keys, key)
	}
	return v, nil
}

// verify checks h's webhook-id, webhook-timestamp (within the tolerance of
// now, both ways) and webhook-signature (a space-separated list of
// "v1,<base64>"; any one matching any key passes) over body, and returns
// the webhook-id. The error is one of errMissingHeaders, errBadHeaders,
// errStale and errBadSignature.
func (v *verifier) verify(h http.Header, body []byte, now time.Time) (string, error) {
	id, ts, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || ts == "" || sigs == "" {
		return "", errMissingHeaders
	}
	if len(id) > maxIDLen || !printableASCII(id) {
		return "", errBadHeaders
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec < 0 {
		return "", errBadHeaders
	}
	// Compare in seconds, the header's unit, without time arithmetic on an
	// attacker's number (it may be near the int64 limits).
	nowSec := now.Unix()
	tol := int64(v.tolerance / time.Second)
	if sec < nowSec-tol || sec > nowSec+tol {
		return "", errStale
	}
	want := make([][]byte, len(v.keys))
	for i, key := range v.keys {
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id))
		mac.Write([]byte{'.'})
		mac.Write([]byte(ts))
		mac.Write([]byte{'.'})
		mac.Write(body)
		want[i] = mac.Sum(nil)
	}
	for sig := range strings.FieldsSeq(sigs) {
		version, b64, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue // other schemes (v1a: asymmetric) are not ours
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(got) != sha256.Size {
			continue
		}
		for _, w := range want {
			if hmac.Equal(got, w) { // constant time
				return id, nil
			}
		}
	}
	return "", errBadSignature
}

// Sign returns the webhook-signature header value ("v1,<base64>") of body
// sent with id and the Unix timestamp ts, signed with secret ("whsec_…"):
// what a sender computes. It is exported for cmd/feedsim and tests.
func Sign(secret, id string, ts int64, body []byte) (string, error) {
	key, err := decodeSecret(secret)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + strconv.FormatInt(ts, 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
