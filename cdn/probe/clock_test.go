package probe

import (
	"testing"
	"time"
)

func TestCalibrateOffset(t *testing.T) {
	ms := time.Now().UnixMilli()
	now := time.UnixMilli(ms)
	obs := []Observation{{
		Snapshot: now.Add(-300 * time.Millisecond), SnapshotTime: ms - 1000, // arrived 700ms after: offset >= -700ms
		Updates: []TimedEvent{{Time: ms, Arrived: now.Add(-50 * time.Millisecond)}}, // offset >= +50ms
	}}
	if got, want := calibrateOffset(-time.Second, obs), 50*time.Millisecond; got != want {
		t.Errorf("offset = %v, want %v", got, want)
	}
}
