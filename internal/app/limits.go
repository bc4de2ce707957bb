package app

import "fmt"

// fdReserve is how many open files the connection cap leaves for
// everything that is not a viewer: NATS connections, the embedded server's
// JetStream store (several files per stream and consumer), the admin
// listener, logs. An attacker who fills the public listener must never take
// these away (a store that cannot open files stops ingesting).
func fdReserve(limit int) int { return max(256, limit/5) }

// connectionCap returns the cap on concurrent public connections:
// configured (> 0) or automatic (0: the open-file limit minus the reserve).
// A configured cap that leaves less than the reserve is an error.
func connectionCap(configured int) (int, error) {
	limit, err := openFileLimit()
	if err != nil {
		if configured > 0 {
			return configured, nil
		}
		return 0, fmt.Errorf("MARQUEE_MAX_CONNECTIONS: cannot read the open-file limit (%w); set it", err)
	}
	auto := limit - fdReserve(limit)
	if auto < 16 {
		return 0, fmt.Errorf("MARQUEE_MAX_CONNECTIONS: the open-file limit %d leaves no room for viewers after a reserve of %d; raise it (ulimit -n)", limit, fdReserve(limit))
	}
	if configured == 0 {
		return auto, nil
	}
	if configured > auto {
		return 0, fmt.Errorf("MARQUEE_MAX_CONNECTIONS must be at most %d (open-file limit %d minus a reserve of %d for NATS and the store), got %d", auto, limit, fdReserve(limit), configured)
	}
	return configured, nil
}
