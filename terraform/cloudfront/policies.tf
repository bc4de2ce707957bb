# The cache policy of package cdn, in CloudFront's terms. marquee's origin
# decides every TTL with Cache-Control (s-maxage for open segments, max-age
# for the rest, no-store for direct mode, health and errors), so the policies
# here put nothing per viewer into the cache key and let the origin rule:
# min_ttl 0 (the origin may say "do not cache"), default_ttl 0 (a response
# without Cache-Control is not cached), max_ttl one day (the longest TTL the
# origin sends: finished parts, immutable).
#
# cdn/tfcheck checks these values against package cdn.

locals {
  # The longest TTL the origin sends (cdn.DefaultPolicy().ImmutableMaxAge).
  max_ttl = 86400
}

# Segments, parts and upto ranges (cdn.EdgeSegment): the cache key is the
# path alone. Accept-Encoding stays out of the key and away from the origin,
# so CloudFront never asks for or makes a compressed copy of a stream.
resource "aws_cloudfront_cache_policy" "segments" {
  name        = "${var.name}-segments"
  comment     = "marquee segments and parts: path-only key, TTL from the origin, never compressed"
  min_ttl     = 0
  default_ttl = 0
  max_ttl     = local.max_ttl

  parameters_in_cache_key_and_forwarded_to_origin {
    enable_accept_encoding_gzip   = false
    enable_accept_encoding_brotli = false

    cookies_config {
      cookie_behavior = "none"
    }
    headers_config {
      header_behavior = "none"
    }
    query_strings_config {
      query_string_behavior = "none"
    }
  }
}

# Feed list, descriptors, snapshots, dashboard, client and assets
# (cdn.EdgeShort, cdn.EdgeStatic): path-only key, TTL from the origin. These
# are JSON, HTML, JavaScript and CSS, which CloudFront may compress; the
# normalised Accept-Encoding is the only thing besides the path in the key.
resource "aws_cloudfront_cache_policy" "public" {
  name        = "${var.name}-public"
  comment     = "marquee JSON and static files: path-only key, TTL from the origin"
  min_ttl     = 0
  default_ttl = 0
  max_ttl     = local.max_ttl

  parameters_in_cache_key_and_forwarded_to_origin {
    enable_accept_encoding_gzip   = true
    enable_accept_encoding_brotli = true

    cookies_config {
      cookie_behavior = "none"
    }
    headers_config {
      header_behavior = "none"
    }
    query_strings_config {
      query_string_behavior = "none"
    }
  }
}

# Direct mode, health and admin (cdn.EdgePass, cdn.EdgeDeny): AWS's managed
# policy that disables caching.
data "aws_cloudfront_cache_policy" "caching_disabled" {
  name = "Managed-CachingDisabled"
}

# What cacheable behaviours forward to the origin beyond the cache key:
# nothing. No cookie, no header (Last-Event-ID, Cache-Control: no-cache,
# Authorization ...), no query string reaches the one origin fetch that all
# viewers of a segment share.
resource "aws_cloudfront_origin_request_policy" "nothing_per_viewer" {
  name    = "${var.name}-nothing-per-viewer"
  comment = "marquee cacheable routes: forward nothing per viewer"

  cookies_config {
    cookie_behavior = "none"
  }
  headers_config {
    header_behavior = "none"
  }
  query_strings_config {
    query_string_behavior = "none"
  }
}

# Direct mode is per viewer and never cached: it needs the viewer's
# Last-Event-ID to resume from the origin's history, and nothing else.
resource "aws_cloudfront_origin_request_policy" "direct" {
  name    = "${var.name}-direct"
  comment = "marquee direct mode: forward Last-Event-ID only"

  cookies_config {
    cookie_behavior = "none"
  }
  headers_config {
    header_behavior = "whitelist"
    headers {
      items = ["Last-Event-ID"]
    }
  }
  query_strings_config {
    query_string_behavior = "none"
  }
}

# CORS as the origin does it (package cdn, Common): any origin, no
# credentials, the response-id and segment headers exposed to scripts, the
# preflight of origin.Server. The origin's own headers win where present
# (origin_override = false); this fills them in on responses CloudFront
# makes itself.
resource "aws_cloudfront_response_headers_policy" "cors" {
  name    = "${var.name}-cors"
  comment = "marquee CORS: any origin, no credentials"

  cors_config {
    access_control_allow_credentials = false
    access_control_max_age_sec       = 86400
    origin_override                  = false

    access_control_allow_origins {
      items = ["*"]
    }
    access_control_allow_methods {
      items = ["GET", "HEAD", "OPTIONS"]
    }
    access_control_allow_headers {
      items = ["Last-Event-ID", "Cache-Control"]
    }
    access_control_expose_headers {
      items = ["Marquee-Response-Id", "Marquee-Segment"]
    }
  }
}

# Answers the admin paths at the edge (404, no-store) before any origin is
# asked, so that metrics never leave through the CDN even if someone points
# the distribution at the admin listener.
resource "aws_cloudfront_function" "deny_admin" {
  name    = "${var.name}-deny-admin"
  runtime = "cloudfront-js-2.0"
  comment = "marquee: admin paths are never served through the CDN"
  publish = true
  code    = file("${path.module}/deny_admin.js")
}

# Answers a path not spelt as marquee spells it (percent-encoding, empty,
# "." or ".." segments) at the edge (400, no-store), on every behaviour but
# the admin one, so that no spelling gets a cache entry or an origin fetch of
# its own. The origin refuses the same paths. With token_keys it also
# refuses requests without a valid token (403, no-store; tokens.tf).
resource "aws_cloudfront_function" "canonical_path" {
  name    = "${var.name}-canonical-path"
  runtime = "cloudfront-js-2.0"
  comment = "marquee: one spelling per URL; tokens of protected feeds"
  publish = true
  code    = "var TOKENS = ${jsonencode(local.token_config)};\n${file("${path.module}/canonical_path.js")}"

  lifecycle {
    precondition {
      condition     = local.token_overlap < var.token_window * var.segment_length
      error_message = "The token_overlap must be below the window length (token_window × segment_length), as the origin requires of MARQUEE_TOKEN_OVERLAP."
    }
  }
}
