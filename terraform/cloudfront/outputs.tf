output "distribution_id" {
  description = "ID of the CloudFront distribution (for invalidations and monitoring)."
  value       = aws_cloudfront_distribution.this.id
}

output "distribution_arn" {
  description = "ARN of the CloudFront distribution."
  value       = aws_cloudfront_distribution.this.arn
}

output "domain_name" {
  description = "The distribution's *.cloudfront.net name: point the aliases' DNS records at it, or use it as the base URL (https://<domain_name>)."
  value       = aws_cloudfront_distribution.this.domain_name
}

output "hosted_zone_id" {
  description = "Route 53 zone ID for alias records that point at the distribution."
  value       = aws_cloudfront_distribution.this.hosted_zone_id
}

output "origin_environment" {
  description = "Environment the marquee origin behind this distribution should run with."
  value = {
    MARQUEE_CLIENT_MODE = var.client_mode
  }
}
