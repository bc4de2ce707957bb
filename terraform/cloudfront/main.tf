# A CloudFront distribution in front of marquee's public listener that
# encodes the cache policy of package cdn (see cdn/routes.go for the route
# table and docs/terraform.md for the reasoning):
#
#   path pattern             edge class   cache policy      compress
#   /metrics*                deny         disabled + 404    no
#   /v1/feeds/*/events       pass         disabled          no (stream)
#   /healthz, /readyz        pass         disabled          no
#   /v1/feeds/*/segments/*   segment      segments          no (stream)
#   default (*)              short/static public            yes
#
# CloudFront uses the first behaviour whose pattern matches ("*" matches any
# characters, "/" included), so the uncached behaviours come first: a path
# that two patterns match is never cached by mistake. For marquee's routes
# the patterns do not overlap; cdn/tfcheck checks both. Every behaviour but
# the admin one runs the canonical_path function at viewer request: a path
# not spelt as marquee spells it is answered 400, never cached.

locals {
  origin_id       = "marquee"
  all_methods     = ["GET", "HEAD", "OPTIONS"]
  cached_methods  = ["GET", "HEAD"]
  viewer_protocol = "redirect-to-https"
}

resource "aws_cloudfront_distribution" "this" {
  enabled         = true
  is_ipv6_enabled = true
  http_version    = "http2and3"
  comment         = "marquee broadcast origin ${var.origin_domain_name}"
  aliases         = var.aliases
  price_class     = var.price_class
  web_acl_id      = var.web_acl_id
  tags            = var.tags

  origin {
    origin_id           = local.origin_id
    domain_name         = var.origin_domain_name
    connection_attempts = 3
    connection_timeout  = 10

    custom_origin_config {
      http_port              = var.origin_port
      https_port             = var.origin_port
      origin_protocol_policy = "${var.origin_protocol}-only"
      origin_ssl_protocols   = ["TLSv1.2"]
      # Per read, not per response: a segment lasts up to 300s but writes at
      # least every MARQUEE_KEEPALIVE. Also the wait for the first byte of a
      # segment or part the origin holds until it starts or is finished.
      origin_read_timeout      = var.origin_read_timeout
      origin_keepalive_timeout = var.origin_keepalive_timeout
    }

    dynamic "origin_shield" {
      for_each = var.origin_shield_region == null ? [] : [var.origin_shield_region]
      content {
        enabled              = true
        origin_shield_region = origin_shield.value
      }
    }
  }

  # Admin (cdn.EdgeDeny): answered 404 by the function, never cached.
  ordered_cache_behavior {
    path_pattern               = "/metrics*"
    target_origin_id           = local.origin_id
    allowed_methods            = local.all_methods
    cached_methods             = local.cached_methods
    viewer_protocol_policy     = local.viewer_protocol
    compress                   = false
    cache_policy_id            = data.aws_cloudfront_cache_policy.caching_disabled.id
    origin_request_policy_id   = aws_cloudfront_origin_request_policy.nothing_per_viewer.id
    response_headers_policy_id = aws_cloudfront_response_headers_policy.cors.id

    function_association {
      event_type   = "viewer-request"
      function_arn = aws_cloudfront_function.deny_admin.arn
    }
  }

  # Direct mode (cdn.EdgePass): per viewer, no-store, streamed; resumes with
  # the viewer's Last-Event-ID.
  ordered_cache_behavior {
    path_pattern               = "/v1/feeds/*/events"
    target_origin_id           = local.origin_id
    allowed_methods            = local.all_methods
    cached_methods             = local.cached_methods
    viewer_protocol_policy     = local.viewer_protocol
    compress                   = false
    cache_policy_id            = data.aws_cloudfront_cache_policy.caching_disabled.id
    origin_request_policy_id   = aws_cloudfront_origin_request_policy.direct.id
    response_headers_policy_id = aws_cloudfront_response_headers_policy.cors.id

    function_association {
      event_type   = "viewer-request"
      function_arn = aws_cloudfront_function.canonical_path.arn
    }
  }

  # Health (cdn.EdgePass): always the origin's answer of now.
  ordered_cache_behavior {
    path_pattern               = "/healthz"
    target_origin_id           = local.origin_id
    allowed_methods            = local.all_methods
    cached_methods             = local.cached_methods
    viewer_protocol_policy     = local.viewer_protocol
    compress                   = false
    cache_policy_id            = data.aws_cloudfront_cache_policy.caching_disabled.id
    origin_request_policy_id   = aws_cloudfront_origin_request_policy.nothing_per_viewer.id
    response_headers_policy_id = aws_cloudfront_response_headers_policy.cors.id

    function_association {
      event_type   = "viewer-request"
      function_arn = aws_cloudfront_function.canonical_path.arn
    }
  }

  ordered_cache_behavior {
    path_pattern               = "/readyz"
    target_origin_id           = local.origin_id
    allowed_methods            = local.all_methods
    cached_methods             = local.cached_methods
    viewer_protocol_policy     = local.viewer_protocol
    compress                   = false
    cache_policy_id            = data.aws_cloudfront_cache_policy.caching_disabled.id
    origin_request_policy_id   = aws_cloudfront_origin_request_policy.nothing_per_viewer.id
    response_headers_policy_id = aws_cloudfront_response_headers_policy.cors.id

    function_association {
      event_type   = "viewer-request"
      function_arn = aws_cloudfront_function.canonical_path.arn
    }
  }

  # Segments, parts and upto ranges (cdn.EdgeSegment): one origin fetch per
  # URL, streamed to every viewer who asks while it is being fetched, cached
  # for the origin's s-maxage, never compressed.
  ordered_cache_behavior {
    path_pattern               = "/v1/feeds/*/segments/*"
    target_origin_id           = local.origin_id
    allowed_methods            = local.all_methods
    cached_methods             = local.cached_methods
    viewer_protocol_policy     = local.viewer_protocol
    compress                   = false
    cache_policy_id            = aws_cloudfront_cache_policy.segments.id
    origin_request_policy_id   = aws_cloudfront_origin_request_policy.nothing_per_viewer.id
    response_headers_policy_id = aws_cloudfront_response_headers_policy.cors.id

    function_association {
      event_type   = "viewer-request"
      function_arn = aws_cloudfront_function.canonical_path.arn
    }
  }

  # Everything else: feed list, descriptors, snapshots (cdn.EdgeShort) and
  # the dashboard, client and assets (cdn.EdgeStatic). Unknown paths get the
  # origin's 404, which is no-store.
  default_cache_behavior {
    target_origin_id           = local.origin_id
    allowed_methods            = local.all_methods
    cached_methods             = local.cached_methods
    viewer_protocol_policy     = local.viewer_protocol
    compress                   = true
    cache_policy_id            = aws_cloudfront_cache_policy.public.id
    origin_request_policy_id   = aws_cloudfront_origin_request_policy.nothing_per_viewer.id
    response_headers_policy_id = aws_cloudfront_response_headers_policy.cors.id

    function_association {
      event_type   = "viewer-request"
      function_arn = aws_cloudfront_function.canonical_path.arn
    }
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    cloudfront_default_certificate = var.acm_certificate_arn == null
    acm_certificate_arn            = var.acm_certificate_arn
    ssl_support_method             = var.acm_certificate_arn == null ? null : "sni-only"
    minimum_protocol_version       = var.acm_certificate_arn == null ? "TLSv1" : "TLSv1.2_2021"
  }

  lifecycle {
    precondition {
      condition     = length(var.aliases) == 0 || var.acm_certificate_arn != null
      error_message = "Aliases need acm_certificate_arn: a certificate in us-east-1 that covers them."
    }
  }
}
