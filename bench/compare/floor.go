//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
)

// The floor: the least any SSE server can do per delivery on this
// machine. A process (this program, re-run with -floor-server) answers
// every GET with a bare event-stream header, keeps the socket, and for
// each message read from its control connection writes one SSE frame to
// every socket with one write(2) each, from one goroutine: no HTTP
// framing, no per-viewer state, no peer watch, nothing to recover from.
// Its CPU per delivery is the kernel's cost of a small TCP send on
// loopback (plus a loop); no design can go below it with one send per
// delivery, so it bounds what "n× Nchan" can mean here.

const floorHeader = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n\r\n: hi\n\n"

// runFloor serves on addr, taking messages (one per line) from the first
// connection to control.
func runFloor(addr, control string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	cl, err := net.Listen("tcp", control)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var fds []int
	var keep []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				os.Exit(0)
			}
			go func() {
				br := bufio.NewReaderSize(c, 1024)
				for {
					line, err := br.ReadSlice('\n')
					if err != nil {
						c.Close()
						return
					}
					if len(line) <= 2 { // end of the request header
						break
					}
				}
				if _, err := c.Write([]byte(floorHeader)); err != nil {
					c.Close()
					return
				}
				rc, err := c.(*net.TCPConn).SyscallConn()
				if err != nil {
					c.Close()
					return
				}
				rc.Control(func(fd uintptr) {
					mu.Lock()
					fds = append(fds, int(fd))
					keep = append(keep, c)
					mu.Unlock()
				})
			}()
		}
	}()
	ctl, err := cl.Accept()
	if err != nil {
		return err
	}
	br := bufio.NewReader(ctl)
	for {
		msg, err := br.ReadBytes('\n')
		if err != nil {
			return nil
		}
		frame := append(append([]byte("data: "), msg[:len(msg)-1]...), '\n', '\n')
		mu.Lock()
		live := fds[:0]
		for i, fd := range fds {
			if _, err := syscall.Write(fd, frame); err != nil && err != syscall.EAGAIN {
				keep[i].Close()
				continue
			}
			keep[len(live)] = keep[i]
			live = append(live, fd)
		}
		fds, keep = live, keep[:len(live)]
		mu.Unlock()
	}
}

func (e *env) startFloor(t *target, port int) error {
	cport, err := freePort()
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, "-floor-server", "127.0.0.1:"+strconv.Itoa(port), "-floor-control", "127.0.0.1:"+strconv.Itoa(cport))
	if t.p, err = startProc(cmd, port); err != nil {
		return err
	}
	t.subPath = func(context.Context) (string, error) { return "/", nil }
	if err := waitHTTP(t, "/", 200); err != nil {
		return err
	}
	ctl, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(cport))
	if err != nil {
		t.p.stop()
		return fmt.Errorf("floor control: %w", err)
	}
	t.publish = func(_ context.Context, body []byte) error {
		_, err := ctl.Write(append(body, '\n'))
		return err
	}
	t.closers = append(t.closers, func() { ctl.Close() })
	return nil
}
