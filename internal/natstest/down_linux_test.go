package natstest

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestPortsHeldWhileDown: while a node is down its client port refuses
// connections, as a dead port does, yet no other socket can take it (an
// outgoing connection's automatic port binds without SO_REUSEADDR, as
// here), and Restart gets it back.
func TestPortsHeldWhileDown(t *testing.T) {
	c := StartServer(t)
	url := c.ClientURL(0)
	addr := strings.TrimPrefix(url, "nats://")
	c.Kill(0)
	if conn, err := net.Dial("tcp", addr); err == nil {
		conn.Close()
		t.Fatalf("%s accepts connections while its node is down", addr)
	}
	_, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("bind to the down node's port: %v, want EADDRINUSE (held)", err)
	}
	c.Restart(0)
	if got := c.ClientURL(0); got != url {
		t.Fatalf("client URL %s after restart, want %s", got, url)
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("restarted node: %v", err)
	}
	conn.Close()
}
