// CloudFront Function (cloudfront-js-2.0), viewer request, attached to every
// behaviour of marquee but the admin one. One spelling per URL: a path with
// percent-encoding or a byte a path may not carry unencoded, an empty
// segment (a double slash, a trailing slash after anything but the root) or
// a "." or ".." segment is answered 400 at the edge, never cached, before
// the cache is looked up, so that no spelling of a marquee URL gets a cache
// entry or an origin fetch of its own. The origin refuses the same paths
// (origin.CanonicalPath); cdn/tfcheck runs this function against it.
var pathBytes = /^\/[A-Za-z0-9._~!$&'()*+,;=:@\/-]*$/;
var badSegment = /\/\/|\/\.\.?(\/|$)|.\/$/;

function handler(event) {
  var uri = event.request.uri;
  if (pathBytes.test(uri) && !badSegment.test(uri)) {
    return event.request;
  }
  return {
    statusCode: 400,
    statusDescription: 'Bad Request',
    headers: {
      'cache-control': { value: 'no-store' },
      'access-control-allow-origin': { value: '*' },
    },
  };
}
