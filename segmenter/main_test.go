package segmenter

import (
	"testing"

	"marquee/internal/leakcheck"
)

// TestMain fails the run when a goroutine outlives the package's tests.
func TestMain(m *testing.M) {
	leakcheck.Main(m)
}
