# tflint configuration for marquee's Terraform (used by .ci/terraform).
#
# Only the Terraform language ruleset runs: it is bundled with tflint, so no
# plugin is downloaded. The AWS ruleset (tflint-ruleset-aws) would have to be
# fetched from GitHub, which CI cannot reach; there is no Cloudflare ruleset.
config {
  # Follow the examples into the modules they call (local sources only).
  call_module_type = "local"
}

plugin "terraform" {
  enabled = true
  # Every rule of the ruleset: typed and documented variables and outputs,
  # pinned provider versions, standard module layout, naming, no unused
  # declarations, no deprecated syntax.
  preset = "all"
}
