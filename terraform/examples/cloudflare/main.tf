# marquee behind Cloudflare: a proxied hostname in front of the origin, with
# cache, compression, configuration and firewall rules that encode marquee's
# cache policy. Fill in terraform.tfvars (see terraform.tfvars.example) and
# export CLOUDFLARE_API_TOKEN; see README.md.

provider "cloudflare" {
  # The API token comes from the environment (CLOUDFLARE_API_TOKEN). On the
  # zone it needs DNS, Cache Settings, Response Compression, Config Settings
  # and Zone WAF (and Origin, with origin_port; Transform Rules, with
  # token_keys), each at Edit.
}

module "marquee_edge" {
  source = "../../cloudflare"

  zone_id         = var.zone_id
  hostname        = var.hostname
  origin_hostname = var.origin_hostname

  # Cloudflare buffers a cacheable response until the origin has finished
  # it. A stream-mode segment lasts a whole minute, so viewers would get its
  # events only when it ends. Parts mode serves the same events as complete
  # one-second responses, which Cloudflare caches and collapses like any
  # file. Run cdnprobe against the zone before switching to stream.
  client_mode = "parts"

  # Protected feeds: the edge checks tokens before the cache (see the
  # module's tokens.tf). Keep segment_length, token_window and
  # token_overlap equal to the origin's if they are not the defaults.
  token_keys      = var.token_keys
  protected_feeds = var.protected_feeds
}
