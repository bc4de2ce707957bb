//go:build linux

package origin

import (
	"sync"
	"syscall"
	"unsafe"
)

// handoffSupported: Linux has the non-blocking writer and the watcher.
const handoffSupported = true

// rawWriter writes the pieces of one chunk with one writev on a socket
// without ever blocking (the socket is in non-blocking mode, as every
// socket of the Go runtime is). It allocates nothing: one per writer
// goroutine, reused for every viewer.
type rawWriter struct {
	iov   [3]syscall.Iovec
	niov  int
	n     int
	errno syscall.Errno
	fn    func(uintptr) bool // w.writev, bound once
}

func newRawWriter() *rawWriter {
	w := &rawWriter{}
	w.fn = w.writev
	return w
}

func (w *rawWriter) writev(fd uintptr) bool {
	for {
		r, _, e := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&w.iov[0])), uintptr(w.niov))
		if e == syscall.EINTR {
			continue
		}
		w.n, w.errno = int(r), e
		if e != 0 {
			w.n = 0
		}
		return true // never wait for the socket: a full one is the slow path's
	}
}

// write writes a, b and c (any may be empty) in that order and returns how
// many bytes the socket took: all of them, fewer (its buffer filled:
// the caller sends the rest on the slow path), or 0 with errBlocked or the
// error of the write.
func (w *rawWriter) write(rc syscall.RawConn, a, b, c []byte) (int, error) {
	w.niov = 0
	for _, p := range [...][]byte{a, b, c} {
		if len(p) > 0 {
			w.iov[w.niov].Base = &p[0]
			w.iov[w.niov].SetLen(len(p))
			w.niov++
		}
	}
	if w.niov == 0 {
		return 0, nil
	}
	err := rc.Write(w.fn)
	n, errno := w.n, w.errno
	w.iov = [3]syscall.Iovec{} // keep nothing alive
	switch {
	case err != nil:
		return 0, err
	case errno == syscall.EAGAIN:
		return 0, errBlocked
	case errno != 0:
		return 0, errno
	}
	return n, nil
}

// watcher notices handed-off connections whose peer hung up, with no
// goroutine and no buffer per connection: one epoll instance (a second
// one besides the Go runtime's) watching every such socket,
// edge-triggered, for the peer's hang-up only (EPOLLRDHUP; errors and
// hang-ups are always reported), and one goroutine waiting on it while any
// socket is registered. Registrations carry a token, never reused, so an
// event that races with a removal (and a file descriptor number reused by
// the system) is ignored.
type watcher struct {
	spawn func(func()) // the hand-off's

	mu      sync.Mutex // guards the fields below
	running bool
	epfd    int
	pipe    [2]int // wakes the loop to let it exit once empty
	subs    map[uint64]*sub
	next    uint64
}

const (
	epollRDHUP = 0x2000  // EPOLLRDHUP
	epollET    = 1 << 31 // EPOLLET
	wakeToken  = 0
)

func newWatcher(spawn func(func())) *watcher {
	return &watcher{spawn: spawn, subs: make(map[uint64]*sub)}
}

// add registers sb's socket and returns its token (0: not watched, the
// next failed write notices the peer instead).
func (w *watcher) add(sb *sub) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.running && !w.startLocked() {
		return 0
	}
	w.next++
	tok := w.next
	ev := syscall.EpollEvent{Events: epollRDHUP | epollET, Fd: int32(uint32(tok)), Pad: int32(uint32(tok >> 32))}
	var err error
	if cerr := sb.rc.Control(func(fd uintptr) {
		err = syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	}); cerr != nil || err != nil {
		w.stopIfEmptyLocked()
		return 0
	}
	w.subs[tok] = sb
	return tok
}

// remove unregisters sb's socket (before it is closed).
func (w *watcher) remove(sb *sub) {
	if sb.token == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.subs[sb.token]; !ok {
		return
	}
	delete(w.subs, sb.token)
	sb.rc.Control(func(fd uintptr) {
		syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
	})
	w.stopIfEmptyLocked()
}

func (w *watcher) startLocked() bool {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return false
	}
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		syscall.Close(epfd)
		return false
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: wakeToken}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p[0], &ev); err != nil {
		syscall.Close(epfd)
		syscall.Close(p[0])
		syscall.Close(p[1])
		return false
	}
	w.epfd, w.pipe, w.running = epfd, p, true
	w.spawn(func() { w.loop(epfd, p[0]) })
	return true
}

// stopIfEmptyLocked asks the loop to exit when nothing is registered.
func (w *watcher) stopIfEmptyLocked() {
	if len(w.subs) == 0 && w.running {
		syscall.Write(w.pipe[1], []byte{0})
	}
}

func (w *watcher) loop(epfd, wake int) {
	events := make([]syscall.EpollEvent, 256)
	var hungUp []*sub
	var drain [64]byte
	for {
		n, err := syscall.EpollWait(epfd, events, -1)
		if err == syscall.EINTR {
			continue
		}
		w.mu.Lock()
		woken := err != nil // a failing epoll: stop watching (writes still notice)
		for _, ev := range events[:max(n, 0)] {
			tok := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if tok == wakeToken {
				for {
					if k, _ := syscall.Read(wake, drain[:]); k <= 0 {
						break
					}
				}
				woken = true
				continue
			}
			if sb := w.subs[tok]; sb != nil {
				hungUp = append(hungUp, sb)
			}
		}
		if woken && (len(w.subs) == 0 || err != nil) {
			clear(w.subs) // their remove finds nothing to do
			syscall.Close(epfd)
			syscall.Close(w.pipe[0])
			syscall.Close(w.pipe[1])
			w.running = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		for i, sb := range hungUp {
			sb.gone.Store(true)
			sb.stop()
			hungUp[i] = nil
		}
		hungUp = hungUp[:0]
	}
}
