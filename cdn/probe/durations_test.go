package probe

import (
	"testing"
	"time"
)

func TestDurationsQuantile(t *testing.T) {
	d := Durations{5, 1, 4, 2, 3}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0, 1}, {0.5, 3}, {0.99, 5}, {1, 5}} {
		if got := d.Quantile(tc.q); got != tc.want {
			t.Errorf("Quantile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := (Durations{}).Quantile(0.5); got != 0 {
		t.Errorf("empty quantile = %v", got)
	}
	if d[0] != 5 {
		t.Errorf("Quantile sorted its receiver")
	}
}
