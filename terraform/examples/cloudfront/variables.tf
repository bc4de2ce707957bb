variable "name" {
  description = "Prefix of the names of the CloudFront policies and function; unique per AWS account."
  type        = string
  default     = "marquee"
}

variable "origin_domain_name" {
  description = "DNS name of marquee's public listener or of the load balancer in front of the origins, for example origin.example.com."
  type        = string
}

variable "origin_protocol" {
  description = "https if the origin (or its load balancer) terminates TLS, http otherwise."
  type        = string
  default     = "https"
}

variable "origin_port" {
  description = "Port of the origin: 443 behind a TLS load balancer, 8080 for marquee's own listener over http."
  type        = number
  default     = 443
}

variable "origin_shield_region" {
  description = "AWS region of Origin Shield, near the origin (for example eu-central-1), or null for none."
  type        = string
  default     = null
}

variable "aliases" {
  description = "Hostnames viewers will use, for example [\"live.example.com\"]; empty for the *.cloudfront.net name only."
  type        = list(string)
  default     = []
}

variable "acm_certificate_arn" {
  description = "ARN of an ACM certificate in us-east-1 covering the aliases; null without aliases."
  type        = string
  default     = null
}

variable "token_keys" {
  description = "The origin's MARQUEE_TOKEN_KEYS as [{ id, secret }], to check the tokens of protected feeds at the edge; empty: the origin alone checks them. Secret: keep it out of version control (TF_VAR_token_keys)."
  type = list(object({
    id     = string
    secret = string
  }))
  default   = []
  sensitive = true
}

variable "protected_feeds" {
  description = "The origin's MARQUEE_PROTECTED_FEEDS as a list (feed names, or [\"*\"])."
  type        = list(string)
  default     = []
}
