package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Skew is how long before its window starts a token is accepted, for
// clocks that disagree a little.
const Skew = 5 * time.Second

// macLen is the length of the base64url (unpadded) HMAC-SHA256.
const macLen = 43

// maxTSDigits bounds the window start's digits (seconds until year 33658).
const maxTSDigits = 12

// Token is a minted token and what it is good for. As JSON (what an
// operator's endpoint hands to the browser client, and what `marquee
// token` prints): {"token","feed","key_id","window_start","expires"}, the
// times in RFC 3339, UTC.
type Token struct {
	// Value is the token, one URL path segment: {kid}.{ts}-{mac}.
	Value string `json:"token"`
	// Feed is the feed it is bound to.
	Feed string `json:"feed"`
	// KeyID is the id of the key that signed it.
	KeyID string `json:"key_id"`
	// Start is the start of its window (UTC).
	Start time.Time `json:"window_start"`
	// Expires is when it stops being valid: the window's end plus the
	// overlap (UTC).
	Expires time.Time `json:"expires"`
}

// Keyring mints and validates tokens: the keys, the window on the segment
// grid, and which feeds are protected.
type Keyring struct {
	keys      []key // keys[0] mints
	window    time.Duration
	overlap   time.Duration
	all       bool            // every feed is protected
	protected map[string]bool // else these
}

// New checks cfg against the segment length of the segmenter's grid and
// returns its Keyring. Its errors name the variable at fault.
func New(cfg Config, segment time.Duration) (*Keyring, error) {
	keys, err := parseKeys(cfg.Keys)
	if err != nil {
		return nil, err
	}
	window, err := cfg.windowLength(segment, len(keys) > 0)
	if err != nil {
		return nil, err
	}
	overlap := cfg.Overlap
	if overlap == 0 {
		overlap = segment
	}
	if overlap < 0 || overlap >= window {
		return nil, fmt.Errorf("MARQUEE_TOKEN_OVERLAP must be at least 0s and below the window length (MARQUEE_TOKEN_WINDOW × MARQUEE_SEGMENT_LENGTH = %s), got %s", window, cfg.Overlap)
	}
	k := &Keyring{keys: keys, window: window, overlap: overlap, protected: map[string]bool{}}
	for _, f := range cfg.ProtectedFeeds {
		f = strings.TrimSpace(f)
		switch {
		case f == "*":
			k.all = true
		case ValidFeed(f):
			k.protected[f] = true
		default:
			return nil, fmt.Errorf("MARQUEE_PROTECTED_FEEDS must list feed names ([A-Za-z0-9_-]{1,64}) or *, got %q", f)
		}
	}
	if k.all && len(k.protected) > 0 {
		return nil, fmt.Errorf("MARQUEE_PROTECTED_FEEDS: * already protects every feed; list no names with it")
	}
	if (k.all || len(k.protected) > 0) && len(keys) == 0 {
		return nil, fmt.Errorf("MARQUEE_PROTECTED_FEEDS is set but MARQUEE_TOKEN_KEYS is empty: protected feeds need at least one key")
	}
	return k, nil
}

// Protected reports whether feed needs a token.
func (k *Keyring) Protected(feed string) bool { return k.all || k.protected[feed] }

// Any reports whether any feed is protected.
func (k *Keyring) Any() bool { return k.all || len(k.protected) > 0 }

// HasKeys reports whether any key is configured (minting needs one).
func (k *Keyring) HasKeys() bool { return len(k.keys) > 0 }

// KeyIDs returns the ids of the keys, the minting one first (ids are not
// secret).
func (k *Keyring) KeyIDs() []string {
	ids := make([]string, len(k.keys))
	for i, ky := range k.keys {
		ids[i] = ky.id
	}
	return ids
}

// Window returns the window length.
func (k *Keyring) Window() time.Duration { return k.window }

// Overlap returns how long a token stays valid after its window's end.
func (k *Keyring) Overlap() time.Duration { return k.overlap }

// WindowStart returns the start of the window that holds t.
func (k *Keyring) WindowStart(t time.Time) time.Time {
	w := max(int64(k.window/time.Second), 1)
	s := t.Unix()
	ts := s / w * w
	if s < 0 && s%w != 0 {
		ts -= w
	}
	return time.Unix(ts, 0).UTC()
}

// Mint returns the token of feed for the window that holds now, signed
// with the first key.
func (k *Keyring) Mint(feed string, now time.Time) (Token, error) {
	if len(k.keys) == 0 {
		return Token{}, ErrNoKeys
	}
	return k.mint(k.keys[0], feed, now)
}

// MintWithKey is Mint with the key of id kid (any listed key).
func (k *Keyring) MintWithKey(feed, kid string, now time.Time) (Token, error) {
	if len(k.keys) == 0 {
		return Token{}, ErrNoKeys
	}
	for _, ky := range k.keys {
		if ky.id == kid {
			return k.mint(ky, feed, now)
		}
	}
	return Token{}, fmt.Errorf("token: key id %q is not in MARQUEE_TOKEN_KEYS", kid)
}

func (k *Keyring) mint(ky key, feed string, now time.Time) (Token, error) {
	if !ValidFeed(feed) {
		return Token{}, fmt.Errorf("token: invalid feed name %q", feed)
	}
	start := k.WindowStart(now)
	ts := strconv.FormatInt(start.Unix(), 10)
	v := make([]byte, 0, len(ky.id)+1+len(ts)+1+macLen)
	v = append(v, ky.id...)
	v = append(v, '.')
	v = append(v, ts...)
	v = append(v, '-')
	v = appendMAC(v, ky.secret, feed, ky.id, ts)
	return Token{Value: string(v), Feed: feed, KeyID: ky.id, Start: start, Expires: start.Add(k.window + k.overlap)}, nil
}

// appendMAC appends base64url(HMAC-SHA256(secret, feed/kid ts)).
func appendMAC(dst, secret []byte, feed, kid, ts string) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(feed))
	h.Write([]byte{'/'})
	h.Write([]byte(kid))
	h.Write([]byte(ts))
	var sum [sha256.Size]byte
	return base64.RawURLEncoding.AppendEncode(dst, h.Sum(sum[:0]))
}

// parse splits a token into its key id, window start (decimal, canonical)
// and mac, or reports it malformed.
func parse(v string) (kid, ts, mac string, ok bool) {
	dot := strings.IndexByte(v, '.')
	if dot < 0 {
		return "", "", "", false
	}
	kid, rest := v[:dot], v[dot+1:]
	dash := strings.IndexByte(rest, '-')
	if dash < 0 {
		return "", "", "", false
	}
	ts, mac = rest[:dash], rest[dash+1:]
	if !validKeyID(kid) || len(ts) == 0 || len(ts) > maxTSDigits || (len(ts) > 1 && ts[0] == '0') || len(mac) != macLen {
		return "", "", "", false
	}
	for i := 0; i < len(ts); i++ {
		if ts[i] < '0' || ts[i] > '9' {
			return "", "", "", false
		}
	}
	return kid, ts, mac, true
}

// Validate checks value, a token for feed, at now: nil, or one of the
// Err* refusals (ErrMissing, ErrMalformed, ErrUnknownKey, ErrBadMAC,
// ErrExpired, ErrNotYetValid). The signature is checked before the time,
// so expired and not_yet_valid are only ever said of genuine tokens.
func (k *Keyring) Validate(feed, value string, now time.Time) error {
	_, err := k.Check(feed, value, now)
	return err
}

// Check is Validate returning the token when it is valid.
func (k *Keyring) Check(feed, value string, now time.Time) (Token, error) {
	if value == "" {
		return Token{}, ErrMissing
	}
	kid, ts, mac, ok := parse(value)
	if !ok {
		return Token{}, ErrMalformed
	}
	var ky *key
	for i := range k.keys {
		if k.keys[i].id == kid {
			ky = &k.keys[i]
			break
		}
	}
	if ky == nil {
		return Token{}, ErrUnknownKey
	}
	var buf [macLen]byte
	if !hmac.Equal(appendMAC(buf[:0], ky.secret, feed, kid, ts), []byte(mac)) {
		return Token{}, ErrBadMAC
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || secs%int64(k.window/time.Second) != 0 {
		// Signed, but for a window this grid does not have (the window
		// length changed since).
		return Token{}, ErrMalformed
	}
	start := time.Unix(secs, 0).UTC()
	expires := start.Add(k.window + k.overlap)
	switch {
	case now.Before(start.Add(-Skew)):
		return Token{}, ErrNotYetValid
	case !now.Before(expires):
		return Token{}, ErrExpired
	}
	return Token{Value: value, Feed: feed, KeyID: kid, Start: start, Expires: expires}, nil
}
