//go:build !linux

package porthold

import (
	"net"
	"strconv"
)

// Hold: elsewhere a port is only reserved by listening on it and closing
// the listener, which leaves a window in which another socket may take it
// (see hold_linux.go).
type Hold struct{}

// Port returns port (0: a free one), free a moment ago.
func Port(port int) (*Hold, int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, 0, err
	}
	defer ln.Close()
	return &Hold{}, ln.Addr().(*net.TCPAddr).Port, nil
}

// Release does nothing here.
func (h *Hold) Release() {}
