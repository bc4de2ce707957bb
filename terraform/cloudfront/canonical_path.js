// CloudFront Function (cloudfront-js-2.0), viewer request, attached to every
// behaviour of marquee but the admin one (one function per event and
// behaviour, so both checks live here).
//
// One spelling per URL: a path with percent-encoding or a byte a path may
// not carry unencoded, an empty segment (a double slash, a trailing slash
// after anything but the root) or a "." or ".." segment is answered 400 at
// the edge, never cached, before the cache is looked up, so that no
// spelling of a marquee URL gets a cache entry or an origin fetch of its
// own. The origin refuses the same paths (origin.CanonicalPath).
//
// Tokens of protected feeds: with keys in TOKENS (set by main.tf from
// token_keys; without keys the origin alone checks tokens), a tokened path
// /v1/feeds/{feed}/t/{kid}.{ts}-{mac}/... is answered 403 unless kid is a
// key's id, mac = base64url(HMAC-SHA256(secret, "{feed}/{kid}{ts}")), ts
// lies on the window grid and ts - skew <= now < ts + ttl (window length
// + overlap), as package token validates; and the un-tokened routes of
// the protected feeds are answered 403. The 403 is no-store and made
// before the cache: an invalid token never reaches the cache or the
// origin. cdn/tfcheck runs this function against origin.CanonicalPath and
// against tokens minted by package token.
var crypto = require('crypto');

var pathBytes = /^\/[A-Za-z0-9._~!$&'()*+,;=:@\/-]*$/;
var badSegment = /\/\/|\/\.\.?(\/|$)|.\/$/;
var feedPath = /^\/v1\/feeds\/([A-Za-z0-9_-]{1,64})(\/t\/([^\/]*))?(\/.*)?$/;
var tokenShape = /^([A-Za-z0-9]{1,16})\.([0-9]{1,12})-([A-Za-z0-9_-]{43})$/;

function refuse(status, text) {
  return {
    statusCode: status,
    statusDescription: text,
    headers: {
      'cache-control': { value: 'no-store' },
      'access-control-allow-origin': { value: '*' },
    },
  };
}

// sameMAC compares in time independent of where the strings differ.
function sameMAC(a, b) {
  if (a.length !== b.length) {
    return false;
  }
  var d = 0;
  for (var i = 0; i < a.length; i++) {
    d |= a.charCodeAt(i) ^ b.charCodeAt(i);
  }
  return d === 0;
}

function validToken(feed, value, now) {
  var m = tokenShape.exec(value);
  if (!m || (m[2].length > 1 && m[2][0] === '0')) {
    return false;
  }
  var secret = TOKENS.keys[m[1]];
  if (typeof secret !== 'string') {
    return false;
  }
  var mac = crypto.createHmac('sha256', secret).update(feed + '/' + m[1] + m[2]).digest('base64url');
  if (!sameMAC(mac, m[3])) {
    return false;
  }
  var ts = parseInt(m[2], 10);
  return ts % TOKENS.window === 0 && ts - TOKENS.skew <= now && now < ts + TOKENS.ttl;
}

function protectedFeed(feed) {
  return TOKENS.protected.indexOf('*') >= 0 || TOKENS.protected.indexOf(feed) >= 0;
}

function handler(event) {
  var uri = event.request.uri;
  if (!pathBytes.test(uri) || badSegment.test(uri)) {
    return refuse(400, 'Bad Request');
  }
  if (TOKENS.on) {
    var m = feedPath.exec(uri);
    if (m && m[2] !== undefined) {
      if (!validToken(m[1], m[3], Date.now() / 1000)) {
        return refuse(403, 'Forbidden');
      }
    } else if (m && protectedFeed(m[1])) {
      return refuse(403, 'Forbidden');
    }
  }
  return event.request;
}
