variable "name" {
  description = "Prefix of the names of the policies and the function this module creates; unique per AWS account."
  type        = string
  default     = "marquee"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,40}$", var.name))
    error_message = "The name must be 1 to 40 letters, digits, '-' or '_'."
  }
}

variable "origin_domain_name" {
  description = "DNS name of marquee's public listener (MARQUEE_ADDR), or of a load balancer in front of several origins. Never the admin listener."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9.-]+$", var.origin_domain_name))
    error_message = "The origin_domain_name must be a bare DNS name: no scheme, port or path."
  }
}

variable "origin_protocol" {
  description = "Protocol CloudFront uses to reach the origin: https (the origin or its load balancer terminates TLS) or http."
  type        = string
  default     = "https"

  validation {
    condition     = contains(["https", "http"], var.origin_protocol)
    error_message = "The origin_protocol must be https or http."
  }
}

variable "origin_port" {
  description = "Port of the origin for origin_protocol (443 for a TLS load balancer; 8080 for marquee's own listener over http)."
  type        = number
  default     = 443

  validation {
    condition     = var.origin_port >= 1 && var.origin_port <= 65535
    error_message = "The origin_port must be between 1 and 65535."
  }
}

variable "origin_read_timeout" {
  description = "CloudFront's origin response timeout in seconds: the longest wait for the first byte and between two reads. A stream-mode segment writes at least a keepalive every MARQUEE_KEEPALIVE (15s), and the origin holds early and unfinished requests (MARQUEE_EARLY_HOLD, 10s), so this must be at least twice MARQUEE_KEEPALIVE. Above 60 needs a CloudFront quota increase."
  type        = number
  default     = 60

  validation {
    condition     = var.origin_read_timeout >= 30 && var.origin_read_timeout <= 180
    error_message = "The origin_read_timeout must be between 30 (twice the default MARQUEE_KEEPALIVE of 15s) and 180 seconds."
  }
}

variable "origin_keepalive_timeout" {
  description = "How long CloudFront keeps an idle connection to the origin open, in seconds. Keep it below the origin's idle timeout (2 minutes) so that the origin never closes a connection CloudFront is about to reuse. Above 60 needs a CloudFront quota increase."
  type        = number
  default     = 60

  validation {
    condition     = var.origin_keepalive_timeout >= 1 && var.origin_keepalive_timeout < 120
    error_message = "The origin_keepalive_timeout must be at least 1 and below marquee's idle timeout of 120 seconds."
  }
}

variable "origin_shield_region" {
  description = "AWS region of CloudFront Origin Shield (for example us-east-1, near the origin), or null for none. Origin Shield collapses the requests of all edge locations into one origin fetch per segment; recommended beyond a handful of viewers' regions."
  type        = string
  default     = null
}

variable "aliases" {
  description = "Hostnames viewers use (CNAMEs of the distribution). Empty: only the distribution's own *.cloudfront.net name."
  type        = list(string)
  default     = []
}

variable "acm_certificate_arn" {
  description = "ARN of an ACM certificate in us-east-1 that covers the aliases. Required when aliases are set; null uses the *.cloudfront.net certificate."
  type        = string
  default     = null
}

variable "price_class" {
  description = "CloudFront price class: PriceClass_All, PriceClass_200 or PriceClass_100."
  type        = string
  default     = "PriceClass_All"

  validation {
    condition     = contains(["PriceClass_All", "PriceClass_200", "PriceClass_100"], var.price_class)
    error_message = "The price_class must be PriceClass_All, PriceClass_200 or PriceClass_100."
  }
}

variable "web_acl_id" {
  description = "ARN of an AWS WAF web ACL to attach, or null for none."
  type        = string
  default     = null
}

variable "client_mode" {
  description = "Delivery mode marquee's browser client should use behind this distribution, to set as MARQUEE_CLIENT_MODE on the origin (output origin_environment). CloudFront forwards bytes as they arrive and collapses simultaneous requests, so stream is the default; set parts if cdnprobe recommends it for your distribution."
  type        = string
  default     = "stream"

  validation {
    condition     = contains(["stream", "parts"], var.client_mode)
    error_message = "The client_mode must be stream or parts."
  }
}

variable "tags" {
  description = "Tags for the distribution."
  type        = map(string)
  default     = {}
}
variable "token_keys" {
  description = "The origin's MARQUEE_TOKEN_KEYS as a list of {id, secret}, to check the tokens of protected feeds at the edge (in the viewer-request CloudFront Function). Empty (the default): no check at the edge, the origin checks every token. The secrets end up in the function code and the Terraform state; treat both as secret. Secret: at least 16 printable ASCII characters, no space, '\"' or '\\\\'."
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
