package probe

import (
	"fmt"
	"slices"
	"time"
)

// Durations is a sample of durations.
type Durations []time.Duration

// Quantile returns the q-quantile (0..1) by nearest rank, 0 when empty.
func (d Durations) Quantile(q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(q*float64(len(s)-1) + 0.5)
	return s[min(max(i, 0), len(s)-1)]
}

// Max returns the largest duration, 0 when empty.
func (d Durations) Max() time.Duration {
	if len(d) == 0 {
		return 0
	}
	return slices.Max(d)
}

// String formats the sample as "p50 x, p99 y, max z (n)".
func (d Durations) String() string {
	if len(d) == 0 {
		return "none"
	}
	return fmt.Sprintf("p50 %s, p99 %s, max %s (n=%d)", round(d.Quantile(0.5)), round(d.Quantile(0.99)), round(d.Max()), len(d))
}

// round rounds d to a precision that suits its size.
func round(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(time.Millisecond)
	default:
		return d.Round(10 * time.Microsecond)
	}
}

// seconds formats d as "0.52 s", or "7 ms" below a tenth of a second.
func seconds(d time.Duration) string {
	if d < 100*time.Millisecond {
		return fmt.Sprintf("%d ms", d.Round(time.Millisecond).Milliseconds())
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}
