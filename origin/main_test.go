package origin

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when any goroutine outlives them:
// every handler, hub and drain a test starts must have ended.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
