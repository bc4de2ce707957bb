package cdn

import (
	"net/http"
	"testing"
	"time"
)

func TestPolicy(t *testing.T) {
	p := DefaultPolicy()
	now := time.Unix(1000, 0)
	tests := []struct {
		name     string
		class    Class
		end      time.Time
		cc, cdnc string
	}{
		{"open segment", OpenSegment, now.Add(45 * time.Second), "public, max-age=0, s-maxage=55, no-transform", "public, max-age=55"},
		{"open segment, partial second rounds up", OpenSegment, now.Add(1500 * time.Millisecond), "public, max-age=0, s-maxage=12, no-transform", "public, max-age=12"},
		{"finished", Finished, now, "public, max-age=86400, immutable, no-transform", "public, max-age=86400"},
		{"descriptor", Descriptor, now.Add(30 * time.Second), "public, max-age=1", "public, max-age=1"},
		{"descriptor at boundary", Descriptor, now.Add(400 * time.Millisecond), "public, max-age=0", "public, max-age=0"},
		{"no-store", NoStore, now, "no-store", "no-store"},
		{"static", Static, now, "public, max-age=60", "public, max-age=60"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			p.Set(h, tt.class, now, tt.end)
			if got, want := h.Get("Cache-Control"), tt.cc; got != want {
				t.Errorf("Cache-Control = %q, want %q", got, want)
			}
			if got, want := h.Get("CDN-Cache-Control"), tt.cdnc; got != want {
				t.Errorf("CDN-Cache-Control = %q, want %q", got, want)
			}
			if got := h.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Access-Control-Allow-Origin = %q", got)
			}
			for _, k := range []string{"Vary", "Set-Cookie"} {
				if _, ok := h[k]; ok {
					t.Errorf("%s set", k)
				}
			}
		})
	}
}
