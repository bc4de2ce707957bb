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
