# Protected feeds (MARQUEE_PROTECTED_FEEDS, MARQUEE_TOKEN_KEYS on the
# origin): with token_keys set, the viewer-request function of every
# behaviour but the admin one (canonical_path.js) also checks tokens before
# the cache, as package token does, and answers 403 (no-store) for a
# tokened path without a valid token and for the un-tokened routes of the
# protected feeds. The keys are compiled into the function's code, which
# the console and the API show to anyone allowed to describe the function
# and which the Terraform state holds: treat both as secret. (A CloudFront
# KeyValueStore would keep the keys out of the code, but it is as readable
# to the same people, and its reads are asynchronous lookups per request;
# keys change only with a rotation, which is a terraform apply either way.)
# Rotating a key publishes the function again: list the new key first on
# the origin and here, apply, and drop the old key once its last window has
# expired.

locals {
  # MARQUEE_TOKEN_OVERLAP: null or 0 is one segment, as on the origin.
  token_overlap = var.token_overlap == null || var.token_overlap == 0 ? var.segment_length : var.token_overlap

  token_config = {
    on        = length(var.token_keys) > 0
    keys      = { for k in var.token_keys : k.id => k.secret }
    protected = var.protected_feeds
    # The window length in seconds: window starts are its multiples.
    window = var.token_window * var.segment_length
    # Window length + overlap: valid while now < ts + ttl.
    ttl = var.token_window * var.segment_length + local.token_overlap
    # token.Skew: accepted this long before the window starts.
    skew = 5
  }
}
