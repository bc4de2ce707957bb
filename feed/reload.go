package feed

// ReloadReason is why the JetStream source replays the whole stored state
// again after its first load. Every reason is a label value of
// marquee_feed_reloads_total{reason}.
type ReloadReason uint8

// The reasons. ReloadNone means no reload is going on.
const (
	ReloadNone      ReloadReason = iota
	ReloadGap                    // resumed past messages the stream removed before this replica read them
	ReloadRecreated              // the stream was deleted and created again: sequences restarted
	numReloadReasons
)

var reloadNames = [numReloadReasons]string{
	ReloadNone:      "none",
	ReloadGap:       "gap",
	ReloadRecreated: "recreated",
}

// String returns the label value, e.g. "gap".
func (r ReloadReason) String() string {
	if r < numReloadReasons {
		return reloadNames[r]
	}
	return "unknown"
}

// ReloadReasons returns every reason except ReloadNone.
func ReloadReasons() []ReloadReason {
	rs := make([]ReloadReason, 0, numReloadReasons-1)
	for r := ReloadNone + 1; r < numReloadReasons; r++ {
		rs = append(rs, r)
	}
	return rs
}
