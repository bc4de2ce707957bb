variable "zone_id" {
  description = "ID of the Cloudflare zone that holds hostname. This module owns the zone's entry-point rulesets of the phases it configures (cache, compression, configuration and, when enabled, custom firewall and origin rules): rules already in those phases must be merged into it first."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{32}$", var.zone_id))
    error_message = "The zone_id must be a 32-character hexadecimal Cloudflare zone ID."
  }
}

variable "hostname" {
  description = "Hostname viewers use (for example live.example.com), inside the zone. Every rule applies to this hostname only."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9.-]+$", var.hostname))
    error_message = "The hostname must be a lower-case DNS name without scheme, port or path."
  }
}

variable "origin_hostname" {
  description = "DNS name of marquee's public listener (MARQUEE_ADDR), or of a load balancer in front of several origins; the proxied CNAME hostname points at it. Never the admin listener."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9.-]+$", var.origin_hostname))
    error_message = "The origin_hostname must be a bare DNS name: no scheme, port or path."
  }
}

variable "manage_dns_record" {
  description = "Create the proxied CNAME hostname -> origin_hostname. Set false if the record exists already (it must be proxied)."
  type        = bool
  default     = true
}

variable "origin_port" {
  description = "Port Cloudflare connects to on the origin, through an origin rule; null keeps Cloudflare's default (the port the viewer used: 443, or 80 with the Flexible SSL mode)."
  type        = number
  default     = null

  validation {
    condition     = var.origin_port == null || (coalesce(var.origin_port, 1) >= 1 && coalesce(var.origin_port, 1) <= 65535)
    error_message = "The origin_port must be null or between 1 and 65535."
  }
}

variable "client_mode" {
  description = "Delivery mode marquee's browser client should use behind this zone, to set as MARQUEE_CLIENT_MODE on the origin (output origin_environment). Cloudflare buffers a cacheable response until the origin has finished it, so a stream-mode segment would reach viewers only when it ends: parts mode (complete one-second responses) is the default. Choose stream only for a zone where cdnprobe has shown that segments stream."
  type        = string
  default     = "parts"

  validation {
    condition     = contains(["parts", "stream"], var.client_mode)
    error_message = "The client_mode must be parts or stream."
  }
}

variable "ignore_query_string" {
  description = "Leave the query string out of the cache key of marquee's cacheable routes (cache rule setting \"Ignore query string\", offered on every plan). If your zone refuses it, set false: every distinct query string then costs one more origin fetch (the origin ignores query strings, so nothing wrong is served)."
  type        = bool
  default     = true
}

variable "deny_admin" {
  description = "Block /metrics at the edge with a custom firewall rule, in case the hostname is ever pointed at marquee's admin listener. The cache rules bypass it either way. (The custom firewall ruleset exists either way: it also blocks non-canonical paths.)"
  type        = bool
  default     = true
}

variable "proxy_read_timeout" {
  description = "Seconds Cloudflare waits between two reads from the origin (cache rule setting, Enterprise plans only); null keeps Cloudflare's 100s, which is above what marquee needs (a keepalive every MARQUEE_KEEPALIVE, 15s; held requests up to MARQUEE_EARLY_HOLD, 10s)."
  type        = number
  default     = null

  validation {
    condition     = var.proxy_read_timeout == null || coalesce(var.proxy_read_timeout, 30) >= 30
    error_message = "The proxy_read_timeout must be null or at least 30 seconds (twice MARQUEE_KEEPALIVE)."
  }
}

variable "token_keys" {
  description = "The origin's MARQUEE_TOKEN_KEYS as a list of {id, secret}, to check the tokens of protected feeds at the edge (a custom firewall rule with is_timed_hmac_valid_v0: Pro plan and above). Empty (the default): no check at the edge, the origin checks every token. The secrets end up in the rule expressions and the Terraform state; treat both as secret. Secret: at least 16 printable ASCII characters, no space, '\"' or '\\\\'."
  type = list(object({
    id     = string
    secret = string
  }))
  default   = []
  sensitive = true

  validation {
    condition     = length([for k in var.token_keys : k if !can(regex("^[A-Za-z0-9]{1,16}$", k.id)) || !can(regex("^[!#-\\[\\]-~]{16,}$", k.secret))]) == 0
    error_message = "Each token key needs an id of 1 to 16 letters or digits and a secret of at least 16 printable ASCII characters without space, '\"' or '\\\\'."
  }
}

variable "protected_feeds" {
  description = "The origin's MARQUEE_PROTECTED_FEEDS as a list: feed names, or [\"*\"] for every feed. With token_keys, their un-tokened routes are blocked at the edge. Default none."
  type        = list(string)
  default     = []

  validation {
    condition     = length([for f in var.protected_feeds : f if !can(regex("^[A-Za-z0-9_-]{1,64}$", f))]) == 0 || (length(var.protected_feeds) == 1 && contains(var.protected_feeds, "*"))
    error_message = "The protected_feeds must be feed names ([A-Za-z0-9_-], 1 to 64) or just [\"*\"]."
  }
}

variable "segment_length" {
  description = "The origin's MARQUEE_SEGMENT_LENGTH in seconds (default 60), for the token lifetime."
  type        = number
  default     = 60

  validation {
    condition     = var.segment_length >= 1 && var.segment_length <= 300 && floor(var.segment_length) == var.segment_length
    error_message = "The segment_length must be a whole number of seconds between 1 and 300."
  }
}

variable "token_window" {
  description = "The origin's MARQUEE_TOKEN_WINDOW: a token's window in segments (default 10)."
  type        = number
  default     = 10

  validation {
    condition     = var.token_window >= 1 && floor(var.token_window) == var.token_window
    error_message = "The token_window must be a whole number of segments, at least 1."
  }
}

variable "token_overlap" {
  description = "The origin's MARQUEE_TOKEN_OVERLAP in seconds: how long a token stays valid after its window ends; null (the default) or 0 is one segment, as on the origin. Must be below the window length."
  type        = number
  default     = null

  validation {
    condition     = var.token_overlap == null || (coalesce(var.token_overlap, 0) >= 0 && floor(coalesce(var.token_overlap, 0)) == coalesce(var.token_overlap, 0))
    error_message = "The token_overlap must be null or a whole number of seconds, at least 0."
  }
}
