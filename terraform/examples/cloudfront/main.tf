# marquee behind CloudFront: a distribution in front of the origin with cache
# policies and behaviours that encode marquee's cache policy. Fill in
# terraform.tfvars (see terraform.tfvars.example) and AWS credentials; see
# README.md.

provider "aws" {
  # CloudFront is global; its API, and ACM certificates for it, live in
  # us-east-1.
  region = "us-east-1"
}

module "marquee_edge" {
  source = "../../cloudfront"

  name               = var.name
  origin_domain_name = var.origin_domain_name
  origin_protocol    = var.origin_protocol
  origin_port        = var.origin_port

  # Twice MARQUEE_KEEPALIVE at least; 60 is the most CloudFront allows
  # without a quota increase and leaves room for a slow origin.
  origin_read_timeout = 60

  # One origin fetch per segment for the whole world instead of one per
  # edge location. Pick the region nearest the origin.
  origin_shield_region = var.origin_shield_region

  aliases             = var.aliases
  acm_certificate_arn = var.acm_certificate_arn

  # CloudFront forwards bytes as they arrive and collapses simultaneous
  # requests, so stream mode should collapse with the lowest latency.
  # cdnprobe verifies it; set "parts" if it recommends parts.
  client_mode = "stream"

  # Protected feeds: the edge checks tokens before the cache (see the
  # module's tokens.tf). Keep segment_length, token_window and
  # token_overlap equal to the origin's if they are not the defaults.
  token_keys      = var.token_keys
  protected_feeds = var.protected_feeds
}
