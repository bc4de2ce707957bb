// CloudFront Function (cloudfront-js-2.0), viewer request, attached to the
// admin paths of marquee (/metrics*). It answers 404 at the edge, never
// cached, so the admin listener's metrics cannot be read through the CDN
// even if the distribution is pointed at the wrong listener.
function handler(event) {
  return {
    statusCode: 404,
    statusDescription: 'Not Found',
    headers: {
      'cache-control': { value: 'no-store' },
      'access-control-allow-origin': { value: '*' },
    },
  };
}
