output "base_url" {
  description = "Base URL viewers (and cdnprobe) use."
  value       = "https://${module.marquee_edge.hostname}"
}

output "origin_environment" {
  description = "Set these on every marquee origin behind this zone, then restart it."
  value       = module.marquee_edge.origin_environment
}

output "rule_expressions" {
  description = "The cache rule expression of each edge class."
  value       = module.marquee_edge.rule_expressions
}
