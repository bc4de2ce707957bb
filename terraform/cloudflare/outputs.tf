output "hostname" {
  description = "Hostname viewers use; the base URL is https://<hostname>."
  value       = var.hostname
}

output "cache_ruleset_id" {
  description = "ID of the zone's cache rules entry-point ruleset."
  value       = cloudflare_ruleset.cache.id
}

output "rule_expressions" {
  description = "The Rules language expression of each edge class (cdn.EdgeClass), for reading in the dashboard or testing with other tools."
  value       = local.class_expression
}

output "origin_environment" {
  description = "Environment the marquee origin behind this zone should run with: MARQUEE_CLIENT_MODE=parts unless cdnprobe showed that the zone streams segments."
  value = {
    MARQUEE_CLIENT_MODE = var.client_mode
  }
}
