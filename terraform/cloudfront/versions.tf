terraform {
  # 1.5: the oldest Terraform CI formats and lints these files with.
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # Written against the v6 schemas of aws_cloudfront_distribution,
      # aws_cloudfront_cache_policy, aws_cloudfront_origin_request_policy,
      # aws_cloudfront_response_headers_policy and aws_cloudfront_function
      # (see docs/terraform.md). Nothing here changed between 5.x and 6.x.
      version = "~> 6.0"
    }
  }
}
