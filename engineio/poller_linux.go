//go:build linux

package engineio

import (
	"errors"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// poller reads websockets without a goroutine per connection: every websocket's descriptor is in
// an epoll set of ours (edge-triggered), and a few loop goroutines read the ones that are ready.
// The epoll descriptor itself sits in Go's netpoller, so an idle loop is a parked goroutine, not
// a thread blocked in epoll_wait. An idle connection thus costs its descriptor and a slot here;
// its bytes are read into the loop's scratch buffer, and memory of its own appears only while a
// frame is incomplete.
type poller struct {
	loops []*pollLoop
	next  atomic.Uint32
}

// pollLoop is one epoll set and the goroutine that serves it.
type pollLoop struct {
	epfd int
	file *os.File // epfd, so that Go's netpoller tells us when it is readable
	raw  syscall.RawConn

	mu    sync.Mutex
	slots []pollSlot
	free  []int32

	stop atomic.Bool
	done chan struct{}
}

// pollSlot maps an epoll event back to its websocket. gen changes every time the slot is reused,
// so that an event reported for a connection that closed meanwhile is not given to its successor.
type pollSlot struct {
	w   *wsTransport
	gen uint32
}

// maxReadBudget is how many bytes one connection may be read in a row before the loop serves the
// others; the rest is read on the loop's next round.
const maxReadBudget = 64 << 10

func newPoller() (*poller, error) {
	n := min(max(runtime.GOMAXPROCS(0), 1), 8)
	p := &poller{}
	for range n {
		l, err := newPollLoop()
		if err != nil {
			p.close()
			return nil, err
		}
		p.loops = append(p.loops, l)
		go l.run()
	}
	return p, nil
}

func newPollLoop() (*pollLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	f := os.NewFile(uintptr(epfd), "epoll")
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &pollLoop{epfd: epfd, file: f, raw: raw, done: make(chan struct{})}, nil
}

// add starts reading w.
func (p *poller) add(w *wsTransport) error {
	l := p.loops[int(p.next.Add(1))%len(p.loops)]
	return l.add(w)
}

// remove stops reading w; the caller closes the descriptor afterwards.
func (p *poller) remove(w *wsTransport) {
	if w.loop != nil {
		w.loop.remove(w)
	}
}

func (p *poller) close() {
	for _, l := range p.loops {
		l.stop.Store(true)
		l.file.Close() // wakes the loop: its raw.Read fails
		<-l.done
	}
}

func (l *pollLoop) add(w *wsTransport) error {
	l.mu.Lock()
	var idx int32
	if n := len(l.free); n > 0 {
		idx = l.free[n-1]
		l.free = l.free[:n-1]
	} else {
		idx = int32(len(l.slots))
		l.slots = append(l.slots, pollSlot{})
	}
	s := &l.slots[idx]
	s.w = w
	s.gen++
	gen := s.gen
	w.loop, w.slot = l, idx
	l.mu.Unlock()

	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET, Fd: idx, Pad: int32(gen)}
	var err error
	cerr := w.raw.Control(func(fd uintptr) { err = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev) })
	if cerr == nil {
		cerr = err
	}
	if cerr != nil {
		l.release(idx)
		w.loop = nil
		return os.NewSyscallError("epoll_ctl", cerr)
	}
	// Bytes that were already waiting are reported too: epoll_ctl ADD checks readiness.
	return nil
}

func (l *pollLoop) remove(w *wsTransport) {
	_ = w.raw.Control(func(fd uintptr) { _ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, int(fd), nil) })
	l.release(w.slot)
}

func (l *pollLoop) release(idx int32) {
	l.mu.Lock()
	l.slots[idx].w = nil
	l.free = append(l.free, idx)
	l.mu.Unlock()
}

func (l *pollLoop) run() {
	defer close(l.done)
	events := make([]unix.EpollEvent, 256)
	scratch := make([]byte, 16<<10)
	// again holds connections that had more to read than their budget; with edge-triggered
	// epoll nothing would report them again, so they get one more round each, after the ones
	// the kernel reports.
	var again, next []*wsTransport
	for !l.stop.Load() {
		var n int
		var werr error
		wait := len(again) == 0
		err := l.raw.Read(func(uintptr) bool {
			n, werr = epollPoll(l.epfd, events)
			if errors.Is(werr, unix.EINTR) {
				n, werr = 0, nil
			}
			return n > 0 || werr != nil || !wait
		})
		if err != nil || werr != nil {
			return // the poller was closed
		}
		for i := range n {
			if w := l.lookup(events[i].Fd, uint32(events[i].Pad)); w != nil && w.readable(scratch) {
				next = append(next, w)
			}
		}
		for i, w := range again {
			again[i] = nil
			if w.readable(scratch) {
				next = append(next, w)
			}
		}
		again, next = next, again[:0]
	}
}

func (l *pollLoop) lookup(idx int32, gen uint32) *wsTransport {
	l.mu.Lock()
	defer l.mu.Unlock()
	if idx < 0 || int(idx) >= len(l.slots) || l.slots[idx].gen != gen {
		return nil
	}
	return l.slots[idx].w
}
