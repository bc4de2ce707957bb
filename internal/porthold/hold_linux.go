package porthold

import "syscall"

// Hold keeps a loopback TCP port from being taken while its server is
// down (or not started yet), so that the server gets it back: a socket
// bound to it with SO_REUSEADDR that never listens. Connecting to it is
// refused, as to a dead port; other sockets that bind it without
// SO_REUSEADDR (every outgoing connection's automatic port) or pick a
// free port skip it; the server's own listener (Go listeners set
// SO_REUSEADDR) can bind it while it is held. Without it, a port let go
// when a server stopped could become some other connection's local port
// before the restart, and the server never came up again (seen under
// load: natstest's "node 1 not ready for connections").
type Hold struct{ fd int }

// Port holds port on 127.0.0.1 (0: a free one) and returns the hold and
// the port.
func Port(port int) (*Hold, int, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, 0, err
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		syscall.Close(fd)
		return nil, 0, err
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		return nil, 0, err
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		return nil, 0, err
	}
	return &Hold{fd: fd}, sa.(*syscall.SockaddrInet4).Port, nil
}

// Release lets the port go (nil-safe, idempotent).
func (h *Hold) Release() {
	if h != nil && h.fd >= 0 {
		syscall.Close(h.fd)
		h.fd = -1
	}
}
