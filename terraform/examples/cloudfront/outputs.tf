output "base_url" {
  description = "Base URL viewers (and cdnprobe) use, until the aliases' DNS records point at domain_name."
  value       = "https://${module.marquee_edge.domain_name}"
}

output "domain_name" {
  description = "Point a CNAME (or a Route 53 alias with hosted_zone_id) for each alias at this name."
  value       = module.marquee_edge.domain_name
}

output "hosted_zone_id" {
  description = "Route 53 zone ID for alias records."
  value       = module.marquee_edge.hosted_zone_id
}

output "distribution_id" {
  description = "ID of the distribution."
  value       = module.marquee_edge.distribution_id
}

output "origin_environment" {
  description = "Set these on every marquee origin behind this distribution, then restart it."
  value       = module.marquee_edge.origin_environment
}
