# Protected feeds (MARQUEE_PROTECTED_FEEDS, MARQUEE_TOKEN_KEYS on the
# origin): the token is a path segment, /v1/feeds/{feed}/t/{token}/...,
# with token = {kid}.{ts}-{mac} and mac = base64url(HMAC-SHA256(secret,
# "{feed}/{kid}{ts}")). With token_keys set, the zone checks tokens before
# the cache with the Rules language's is_timed_hmac_valid_v0 (Pro plan and
# above), so a request with an invalid or expired token never reaches the
# cache or the origin:
#
#   1. URL rewrite rules (phase http_request_transform, which runs before
#      the custom firewall rules) set the query string of every tokened
#      request to "{feed}/{kid}/{ts}-{mac}", cut out of the path with
#      wildcard_replace (offered on every plan). The function wants its
#      input to END with "{ts}-{mac}", and the token sits in the middle of
#      the path. The origin ignores query strings and the cache rules leave
#      them out of the cache key (ignore_query_string), and the query is a
#      function of the path anyway, so one path is still one cache object.
#   2. A custom firewall rule blocks a tokened request unless, for one of
#      the keys, the query names that key id and
#      is_timed_hmac_valid_v0(secret, query, ttl, now, 1, "s") holds: the
#      message is "{feed}/{kid}", the separator "/" (length 1), then the
#      10-digit ts, "-", and the 43-character unpadded base64url mac (flag
#      "s"), so the MAC covers "{feed}/{kid}{ts}" as the origin's does.
#      ttl = window length + overlap: valid while now < ts + ttl.
#   3. A custom firewall rule blocks the un-tokened routes of the protected
#      feeds (protected_feeds, or "*" for every feed).
#
# What the edge does not check, the origin does (it validates every
# request): that ts lies on the window grid and is not in the future (the
# function only bounds the token's age). Such a token is a forgery only
# someone holding a key can make; the origin answers it 403, no-store.
#
# cdn/tfcheck evaluates these rules against tokens minted by package token.

locals {
  # Whether there are keys is no secret, and count may not depend on a
  # sensitive value.
  token_on = nonsensitive(length(var.token_keys) > 0)

  # Window length + overlap, in seconds (MARQUEE_TOKEN_WINDOW segments of
  # MARQUEE_SEGMENT_LENGTH, plus MARQUEE_TOKEN_OVERLAP; null or 0: one segment).
  token_overlap = var.token_overlap == null || var.token_overlap == 0 ? var.segment_length : var.token_overlap
  token_ttl     = var.token_window * var.segment_length + local.token_overlap

  # Every tokened route, and nothing else of marquee's.
  tokened_path = "${local.path} strict wildcard \"/v1/feeds/*/t/*\""

  # The tokened route shapes and the wildcard pattern that cuts feed, key
  # id and "{ts}-{mac}" out of each. Feed names, key ids and macs hold no
  # "." or "/", and the token no "/segments/", so every capture is the
  # same whether a wildcard matches lazily or greedily. The expression of
  # each shape excludes the shapes before it: one rewrite per request.
  token_shapes = [
    {
      name    = "descriptor"
      match   = "${local.path} strict wildcard \"/v1/feeds/*/t/*\" and not ${local.path} strict wildcard \"/v1/feeds/*/t/*/*\""
      pattern = "/v1/feeds/*/t/*.*"
    },
    {
      name    = "snapshot"
      match   = "${local.path} strict wildcard \"/v1/feeds/*/t/*/snapshot\""
      pattern = "/v1/feeds/*/t/*.*/snapshot"
    },
    {
      name    = "events"
      match   = "${local.path} strict wildcard \"/v1/feeds/*/t/*/events\""
      pattern = "/v1/feeds/*/t/*.*/events"
    },
    {
      name    = "segment"
      match   = "${local.path} strict wildcard \"/v1/feeds/*/t/*/segments/*\""
      pattern = "/v1/feeds/*/t/*.*/segments/*"
    },
  ]
  token_shape_expression = [
    for i, s in local.token_shapes : join(" and ", concat(
      ["(${local.on_host})", "(${s.match})"],
      [for earlier in slice(local.token_shapes, 0, i) : "not (${earlier.match})"],
    ))
  ]

  # The MessageMAC of is_timed_hmac_valid_v0, as rewritten above.
  token_message = "http.request.uri.query"

  # One clause per key; the key id in the message must be the key's.
  token_valid = join(" or ", [
    for k in var.token_keys :
    "(${local.token_message} strict wildcard \"*/${k.id}/*\" and is_timed_hmac_valid_v0(\"${k.secret}\", ${local.token_message}, ${local.token_ttl}, http.request.timestamp.sec, 1, \"s\"))"
  ])

  # The un-tokened routes of the protected feeds.
  protected_all = contains(var.protected_feeds, "*")
  untokened_protected = local.protected_all ? "${local.path} strict wildcard \"/v1/feeds/*\" and not (${local.tokened_path})" : join(" or ", [
    for f in var.protected_feeds :
    "${local.path} eq \"/v1/feeds/${f}\" or (${local.path} strict wildcard \"/v1/feeds/${f}/*\" and not (${local.tokened_path}))"
  ])

  token_firewall_rules = local.token_on ? concat(
    [
      {
        ref         = "marquee_token_invalid"
        description = "marquee: block tokened routes without a valid, unexpired token (is_timed_hmac_valid_v0)"
        expression  = "(${local.on_host}) and (${local.tokened_path}) and not (${local.token_valid})"
        action      = "block"
      },
    ],
    length(var.protected_feeds) > 0 ? [
      {
        ref         = "marquee_token_missing"
        description = "marquee: block the un-tokened routes of protected feeds"
        expression  = "(${local.on_host}) and (${local.untokened_protected})"
        action      = "block"
      },
    ] : [],
  ) : []
}

# URL rewrite rules (phase http_request_transform): the token's parts into
# the query string, for the firewall rule above. Only with token_keys.
resource "cloudflare_ruleset" "token_rewrite" {
  count = local.token_on ? 1 : 0

  zone_id     = var.zone_id
  name        = "marquee token rewrite rules"
  description = "marquee ${var.hostname}: the token of a tokened path into the query string, for its HMAC check"
  kind        = "zone"
  phase       = "http_request_transform"

  rules = concat([
    for i, s in local.token_shapes : {
      ref         = "marquee_token_${s.name}"
      description = "marquee: token of a ${s.name} path into the query, {feed}/{kid}/{ts}-{mac}"
      expression  = local.token_shape_expression[i]
      action      = "rewrite"
      action_parameters = {
        uri = {
          query = {
            expression = "wildcard_replace(${local.path}, \"${s.pattern}\", \"$${1}/$${2}/$${3}\", \"s\")"
          }
        }
      }
    }
    ], [
    # A tokened path of no route's shape: a query no token validates, so
    # that the firewall blocks it rather than judge a query the viewer sent.
    {
      ref         = "marquee_token_other"
      description = "marquee: a tokened path of no route's shape gets a query that fails the token check"
      expression = join(" and ", concat(
        ["(${local.on_host})", "(${local.tokened_path})"],
        [for s in local.token_shapes : "not (${s.match})"],
      ))
      action = "rewrite"
      action_parameters = {
        uri = {
          query = {
            value = "no-token"
          }
        }
      }
    },
  ])
}
