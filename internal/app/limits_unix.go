//go:build unix

package app

import "syscall"

// openFileLimit returns the process's soft limit on open files (Go raises
// it to the hard limit at start-up on Linux).
func openFileLimit() (int, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	if rl.Cur > 1<<30 {
		return 1 << 30, nil
	}
	return int(rl.Cur), nil
}
