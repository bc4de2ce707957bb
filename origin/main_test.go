package origin

import (
	"testing"

	"marquee/internal/leakcheck"
)

// TestMain fails the package's tests when any goroutine outlives them:
// every handler, hub and drain a test starts must have ended.
func TestMain(m *testing.M) { leakcheck.Main(m) }
