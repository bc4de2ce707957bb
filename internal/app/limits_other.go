//go:build !unix

package app

// openFileLimit: without a per-process limit on open files (Windows: up
// to about 16 million handles), a nominal one, so that the automatic
// connection cap still leaves the usual reserve.
func openFileLimit() (int, error) { return 1 << 20, nil }
