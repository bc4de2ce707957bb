# Cloudflare in front of marquee's public listener, encoding the cache policy
# of package cdn (see cdn/routes.go for the route table and docs/terraform.md
# for the reasoning). Every rule is scoped to var.hostname.
#
# The requests of the hostname fall into the edge classes of cdn/routes.go,
# written below as conditions on the path in Cloudflare's Rules language.
# Only operators that every plan offers are used (eq, in, strict wildcard;
# "matches" needs a Business plan). In a wildcard "*" matches any characters,
# "/" included, so two conditions may both match a path that is not a marquee
# route; each class's rule therefore excludes the classes before it in
# local.class_order, and a request matches at most one rule. Uncached classes
# come first, so such a path is never cached by mistake.
#
# cdn/tfcheck evaluates these expressions against every route of
# the origin.

locals {
  path    = "http.request.uri.path"
  on_host = "http.host eq \"${var.hostname}\""

  class_paths = {
    # Admin (cdn.EdgeDeny): never through the edge.
    deny = "${local.path} eq \"/metrics\" or ${local.path} strict wildcard \"/metrics/*\""
    # Direct mode and health (cdn.EdgePass): never cached.
    pass = "${local.path} in {\"/healthz\" \"/readyz\"} or ${local.path} strict wildcard \"/v1/feeds/*/events\""
    # Segments, parts, upto ranges (cdn.EdgeSegment).
    segment = "${local.path} strict wildcard \"/v1/feeds/*/segments/*\""
    # Feed list, descriptors, snapshots (cdn.EdgeShort).
    short = "${local.path} eq \"/v1/feeds\" or ${local.path} strict wildcard \"/v1/feeds/*\""
    # Dashboard, client, OpenAPI description, assets (cdn.EdgeStatic).
    static = "${local.path} eq \"/\" or ${local.path} eq \"/v1/client.js\" or ${local.path} eq \"/v1/board.js\" or ${local.path} eq \"/v1/openapi.json\" or ${local.path} strict wildcard \"/assets/*\""
  }
  class_order = ["deny", "pass", "segment", "short", "static"]

  # One spelling per URL (origin.CanonicalPath): the path as the viewer
  # sent it (raw, before Cloudflare's URL normalization) with
  # percent-encoding or a backslash, an empty segment (a double slash, a
  # trailing slash after anything but the root) or a "." or ".." segment.
  # Without "matches" (regular expressions) the other bytes a path may not
  # carry unencoded cannot be listed; the origin refuses them (400,
  # no-store, never cached).
  raw_path = "raw.http.request.uri.path"
  non_canonical_path = join(" or ", [
    "${local.raw_path} contains \"%\"",
    "${local.raw_path} contains \"\\\\\"",
    "${local.raw_path} contains \"//\"",
    "${local.raw_path} contains \"/./\"",
    "${local.raw_path} contains \"/../\"",
    "${local.raw_path} strict wildcard \"*/.\"",
    "${local.raw_path} strict wildcard \"*/..\"",
    "(${local.raw_path} strict wildcard \"*/\" and ${local.raw_path} ne \"/\")",
  ])

  # One exclusive expression per class.
  class_expression = {
    for i, class in local.class_order : class => join(" and ", concat(
      ["(${local.on_host})", "(${local.class_paths[class]})"],
      [for earlier in slice(local.class_order, 0, i) : "not (${local.class_paths[earlier]})"],
    ))
  }

  # Cache settings of the cacheable classes: eligible for cache, edge and
  # browser TTL from the origin's headers (s-maxage / CDN-Cache-Control for
  # the edge, max-age for browsers), a cache key of the path alone, and no
  # stale copy while refreshing (a stale descriptor names a past segment).
  cacheable = {
    cache = true
    edge_ttl = {
      mode = "respect_origin"
    }
    browser_ttl = {
      mode = "respect_origin"
    }
    serve_stale = {
      disable_stale_while_updating = true
    }
    cache_key = {
      cache_by_device_type       = false
      cache_deception_armor      = false
      ignore_query_strings_order = false
      # Cookies and headers are not in Cloudflare's default cache key and
      # none is added here; the host is (the rules match one hostname).
      custom_key = {
        query_string = var.ignore_query_string ? { exclude = { all = true } } : null
      }
    }
    read_timeout = var.proxy_read_timeout
  }
}

resource "cloudflare_dns_record" "this" {
  count = var.manage_dns_record ? 1 : 0

  zone_id = var.zone_id
  name    = var.hostname
  type    = "CNAME"
  content = var.origin_hostname
  proxied = true
  ttl     = 1
  comment = "marquee: viewers reach the origin through Cloudflare (terraform/cloudflare)"
}
