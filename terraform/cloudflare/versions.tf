terraform {
  # 1.5: the oldest Terraform CI formats and lints these files with.
  required_version = ">= 1.5.0"

  required_providers {
    cloudflare = {
      source = "cloudflare/cloudflare"
      # Written against the v5 schemas of cloudflare_ruleset (rules as a list
      # of objects, cache_key.custom_key.query_string.exclude.all) and
      # cloudflare_dns_record; v4 used blocks and cloudflare_record and does
      # not accept this file (see docs/terraform.md).
      version = "~> 5.8"
    }
  }
}
