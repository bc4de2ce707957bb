variable "zone_id" {
  description = "ID of the Cloudflare zone (dashboard: the zone's Overview page, API section)."
  type        = string
}

variable "hostname" {
  description = "Hostname viewers will use, inside the zone, for example live.example.com."
  type        = string
}

variable "origin_hostname" {
  description = "DNS name of marquee's public listener or of the load balancer in front of the origins, for example origin.example.com."
  type        = string
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
