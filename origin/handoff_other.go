//go:build !linux

package origin

import (
	"errors"
	"syscall"
)

// handoffSupported: responses stay in their handlers on this platform.
const handoffSupported = false

type rawWriter struct{}

func newRawWriter() *rawWriter { return &rawWriter{} }

func (*rawWriter) write(syscall.RawConn, []byte, []byte, []byte) (int, error) {
	return 0, errors.ErrUnsupported
}

type watcher struct{}

func newWatcher(func(func())) *watcher { return &watcher{} }
func (*watcher) add(*sub) uint64       { return 0 }
func (*watcher) remove(*sub)           {}
