package probe

import (
	"context"
	"testing"
)

// TestConfigErrors: both probes refuse a bad configuration before making
// any request.
func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{Base: "ftp://x"},
		{Base: "http://"},
		{Base: "http://127.0.0.1:1", Viewers: -1},
		{Base: "http://127.0.0.1:1", Viewers: maxViewers + 1},
		{Base: "http://127.0.0.1:1", Follow: -1},
	} {
		if _, err := Stream(context.Background(), cfg); err == nil {
			t.Errorf("Stream(%+v) did not fail", cfg)
		}
		if _, err := Parts(context.Background(), cfg); err == nil {
			t.Errorf("Parts(%+v) did not fail", cfg)
		}
	}
}
