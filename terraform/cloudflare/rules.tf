# Cache rules (phase http_request_cache_settings): one rule per edge class,
# exclusive (see main.tf). Cloudflare caches only some file extensions by
# default; these rules make marquee's cacheable routes eligible and leave the
# TTL to the origin, and bypass the cache for the rest. Each rule's ref names
# its class (marquee_<cdn.EdgeClass>).
resource "cloudflare_ruleset" "cache" {
  zone_id     = var.zone_id
  name        = "marquee cache rules"
  description = "marquee ${var.hostname}: segments, parts, descriptors and static files cached under the path with the origin's TTL; direct mode, health and admin bypass the cache"
  kind        = "zone"
  phase       = "http_request_cache_settings"

  rules = [
    {
      ref               = "marquee_deny"
      description       = "marquee admin (/metrics): bypass the cache"
      expression        = local.class_expression["deny"]
      action            = "set_cache_settings"
      action_parameters = { cache = false }
    },
    {
      ref               = "marquee_pass"
      description       = "marquee direct mode and health: bypass the cache"
      expression        = local.class_expression["pass"]
      action            = "set_cache_settings"
      action_parameters = { cache = false }
    },
    {
      ref               = "marquee_segment"
      description       = "marquee segments, parts, upto: cache under the path, TTL from the origin"
      expression        = local.class_expression["segment"]
      action            = "set_cache_settings"
      action_parameters = local.cacheable
    },
    {
      ref               = "marquee_short"
      description       = "marquee feed list, descriptors, snapshots: cache under the path, TTL from the origin"
      expression        = local.class_expression["short"]
      action            = "set_cache_settings"
      action_parameters = local.cacheable
    },
    {
      ref               = "marquee_static"
      description       = "marquee dashboard, client, assets: cache under the path, TTL from the origin"
      expression        = local.class_expression["static"]
      action            = "set_cache_settings"
      action_parameters = local.cacheable
    },
  ]
}

# Compression rules (phase http_response_compression): never compress
# text/event-stream. A compressor buffers its output, which would hold back
# every event of a stream-mode segment and of direct mode, and would give
# viewers different bytes. The origin also sends Cache-Control: no-transform
# on streams; this makes it explicit for the zone.
resource "cloudflare_ruleset" "compression" {
  zone_id     = var.zone_id
  name        = "marquee compression rules"
  description = "marquee ${var.hostname}: no compression of text/event-stream"
  kind        = "zone"
  phase       = "http_response_compression"

  rules = [
    {
      ref         = "marquee_no_stream_compression"
      description = "marquee: never compress text/event-stream"
      expression  = "(${local.on_host}) and (http.response.content_type.media_type eq \"text/event-stream\")"
      action      = "compress_response"
      action_parameters = {
        algorithms = [{ name = "none" }]
      }
    },
  ]
}

# Configuration rules (phase http_config_settings): turn off the features
# that rewrite or inject into responses. They would change the bytes that
# every viewer of a segment must share, make Cloudflare buffer a body to
# rewrite it, or inject scripts that the dashboard's Content-Security-Policy
# refuses.
resource "cloudflare_ruleset" "config" {
  zone_id     = var.zone_id
  name        = "marquee configuration rules"
  description = "marquee ${var.hostname}: no response rewriting or script injection"
  kind        = "zone"
  phase       = "http_config_settings"

  rules = [
    {
      ref         = "marquee_no_rewrites"
      description = "marquee: responses pass unmodified"
      expression  = local.on_host
      action      = "set_config"
      action_parameters = {
        automatic_https_rewrites = false
        email_obfuscation        = false
        rocket_loader            = false
        disable_zaraz            = true
        disable_rum              = true
      }
    },
  ]
}

# Custom firewall rules (phase http_request_firewall_custom): refuse the
# admin paths at the edge, and every path not spelt as marquee spells it
# (one spelling per cacheable URL, so that no spelling gets a cache entry
# or an origin fetch of its own; the origin refuses the same paths); with
# token_keys, tokened routes without a valid token and the un-tokened
# routes of protected feeds (tokens.tf). A blocked request gets
# Cloudflare's 403, made before the cache and never cached.
resource "cloudflare_ruleset" "firewall" {
  zone_id     = var.zone_id
  name        = "marquee custom firewall rules"
  description = "marquee ${var.hostname}: admin paths, non-canonical paths and requests without a valid token are never served through the edge"
  kind        = "zone"
  phase       = "http_request_firewall_custom"

  rules = concat(
    var.deny_admin ? [
      {
        ref         = "marquee_deny_admin"
        description = "marquee: block /metrics"
        expression  = "(${local.on_host}) and (${local.class_paths["deny"]})"
        action      = "block"
      },
    ] : [],
    [
      {
        ref         = "marquee_canonical_path"
        description = "marquee: block paths with percent-encoding, empty, \".\" or \"..\" segments"
        expression  = "(${local.on_host}) and (${local.non_canonical_path})"
        action      = "block"
      },
    ],
    # Tokens of protected feeds, with token_keys (tokens.tf).
    local.token_firewall_rules,
  )

  lifecycle {
    precondition {
      condition     = local.token_overlap < var.token_window * var.segment_length
      error_message = "The token_overlap must be below the window length (token_window × segment_length), as the origin requires of MARQUEE_TOKEN_OVERLAP."
    }
  }
}

# The firewall ruleset used to be cloudflare_ruleset.deny_admin[0] (the
# admin rule only, and only with deny_admin): keep its state.
moved {
  from = cloudflare_ruleset.deny_admin[0]
  to   = cloudflare_ruleset.firewall
}

# Origin rules (phase http_request_origin): connect to the origin on another
# port, when asked to.
resource "cloudflare_ruleset" "origin" {
  count = var.origin_port == null ? 0 : 1

  zone_id     = var.zone_id
  name        = "marquee origin rules"
  description = "marquee ${var.hostname}: origin port"
  kind        = "zone"
  phase       = "http_request_origin"

  rules = [
    {
      ref         = "marquee_origin_port"
      description = "marquee: connect to the origin on port ${coalesce(var.origin_port, 0)}"
      expression  = local.on_host
      action      = "route"
      action_parameters = {
        origin = { port = var.origin_port }
      }
    },
  ]
}
