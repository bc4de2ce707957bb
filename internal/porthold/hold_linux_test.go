package porthold

import (
	"errors"
	"net"
	"strconv"
	"syscall"
	"testing"
)

// bindPlain binds a socket to port the way an outgoing connection's
// automatic port is bound: without SO_REUSEADDR.
func bindPlain(t *testing.T, port int) error {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	return syscall.Bind(fd, &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}})
}

// TestHold: a held port refuses connections and cannot be bound by
// another socket, yet a Go listener (the server coming back) can listen
// on it; released, it is free.
func TestHold(t *testing.T) {
	h, port, err := Port(0)
	if err != nil || port == 0 {
		t.Fatalf("Port(0) = %d, %v", port, err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("a held port accepts connections")
	}
	if err := bindPlain(t, port); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("plain bind to a held port: %v, want EADDRINUSE", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on a held port: %v", err)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial the listener: %v", err)
	}
	c.Close()
	ln.Close()
	h.Release()
	h.Release() // idempotent
	if err := bindPlain(t, port); err != nil {
		t.Fatalf("plain bind after release: %v", err)
	}
	h2, got, err := Port(port) // the same port again, by number
	if err != nil || got != port {
		t.Fatalf("Port(%d) = %d, %v", port, got, err)
	}
	h2.Release()
}
