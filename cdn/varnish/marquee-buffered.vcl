vcl 4.1;
# marquee-buffered.vcl: marquee.vcl with streaming of cacheable responses
# turned off, to emulate an edge that buffers a cacheable response until the
# origin has finished it before sending any of it to anyone (Cloudflare
# documents this behaviour). Tests use it to check that cdnprobe detects
# buffering and that parts mode works behind such an edge. Do not use it in
# production in front of stream mode: viewers would receive each segment
# only when it ends.
#
# Everything else (routing, cache key, TTLs, errors) is marquee.vcl's, which
# must sit in the same directory.
include "./marquee.vcl";

# Varnish concatenates the definitions of a built-in subroutine in source
# order, so this runs after marquee.vcl's vcl_backend_response, which returns
# early for passed and uncacheable responses and falls through for cacheable
# ones. Passed responses (direct mode) stay streamed, as they are at
# Cloudflare.
sub vcl_backend_response {
    set beresp.do_stream = false;
}
