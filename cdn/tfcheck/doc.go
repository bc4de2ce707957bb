// Package tfcheck holds only tests: they check the Terraform that marquee
// ships for Cloudflare and CloudFront (terraform/) against the cache policy
// of package cdn, so that the edge configuration cannot drift from what the
// origin sends. It keeps the HCL parser out of package cdn's test binary and
// out of every binary.
//
// The tests parse the .tf files with github.com/hashicorp/hcl/v2, evaluate
// what can be known before apply (variables' defaults, locals, attributes),
// and check them against the route table (cdn.PublicRoutes, cdn.AdminRoutes),
// the cache policy (cdn.DefaultPolicy, cdn.Common) and the timing defaults of
// segmenter and origin: no cookie, header or query string in the cache key of
// a cacheable route, no compression of streams, the origin's TTLs in charge,
// read timeouts at least twice the keepalive, every route covered by exactly
// one rule or behaviour of its class; and the edges' checks of protected
// feeds' tokens against tokens minted by package token (tokens_test.go).
// Cloudflare rule expressions are evaluated by a small interpreter of the
// subset of the Rules language the module uses (rulesexpr_test.go,
// rulesfunc_test.go); CloudFront path patterns by CloudFront's wildcard
// rules, CloudFront Functions with Node.js.
//
// Provider schemas are not available offline, so attribute names are only
// as right as docs/terraform.md says they were checked: "terraform validate"
// and "terraform plan" remain for operators.
package tfcheck
