package probe

import (
	"net/http"
	"time"

	"marquee/wire"
)

// TimedEvent is an event the origin stamped with the time it happened.
type TimedEvent struct {
	Seq     uint64
	Time    int64     // unix ms, origin (NATS) clock
	Arrived time.Time // local clock
}

// calibrateOffset tightens the clock offset estimate: for every event the
// origin stamped (snapshot at the segment start, updates at publication),
// origin time <= arrival on the origin clock, so offset >= stamp - arrival.
func calibrateOffset(offset time.Duration, obs []Observation) time.Duration {
	for _, o := range obs {
		if o.SnapshotTime > 0 && !o.Snapshot.IsZero() {
			offset = max(offset, time.UnixMilli(o.SnapshotTime).Sub(o.Snapshot))
		}
		for _, u := range o.Updates {
			offset = max(offset, time.UnixMilli(u.Time).Sub(u.Arrived))
		}
	}
	return offset
}

// calibratePartsOffset tightens the clock offset estimate as calibrateOffset
// does, with one more lower bound: the origin finishes part k of segment n
// no earlier than the part's end, so no byte of it arrives before then.
func calibratePartsOffset(offset time.Duration, d wire.Descriptor, vs []PartsViewer) time.Duration {
	D, P := d.SegmentDuration().Milliseconds(), d.PartDuration().Milliseconds()
	for _, v := range vs {
		for _, o := range v.Fetches {
			if o.Status != http.StatusOK || o.FirstByte.IsZero() {
				continue
			}
			end := time.UnixMilli(o.Segment*D + int64(o.Part+1)*P)
			offset = max(offset, end.Sub(o.FirstByte))
			if o.Snapshot {
				offset = max(offset, time.UnixMilli(o.SnapshotTime).Sub(o.Done))
			}
			for _, u := range o.Updates {
				offset = max(offset, time.UnixMilli(u.Time).Sub(u.Arrived))
			}
		}
	}
	return offset
}
