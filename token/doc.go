// Package token is marquee's cookie-less public tokens: a string, bound to
// a feed and a time window, that every viewer of the feed in that window
// puts in the same place of the same URLs, so that access control costs
// the edge none of its collapsing (all viewers still request one URL per
// segment).
//
// A window is a whole number of segments on the segmenter's grid: window w
// covers segments [w·W, (w+1)·W) and starts at ts = the start of segment
// w·W, in whole Unix seconds. Its token is
//
//	{kid}.{ts}-{mac}   mac = base64url(HMAC-SHA256(secret, feed + "/" + kid + ts)), no padding
//
// and is valid from ts − Skew until ts + window length + overlap, so a
// viewer that renews late keeps working across the boundary. The message
// is the one Cloudflare's is_timed_hmac_valid_v0 computes for the input
// "{feed}/{kid}/{ts}-{mac}" (separator length 1, flag s), so an edge can
// check tokens before its cache.
//
// Keys have an id: several keys validate at once (rotation), the first one
// mints. Secrets are never logged nor shown by String, GoString or slog.
//
// A Keyring is immutable after New and safe for concurrent use. The
// package uses the standard library only.
package token
