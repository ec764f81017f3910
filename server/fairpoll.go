package server

import (
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// fairPoller wakes websocket readers that wait for their clients in the order the clients' data
// arrived.
//
// Go's runtime does not: when it polls the network it readies the goroutines of a batch of ready
// connections in the reverse of the order the kernel reported them (runtime/netpoll_epoll.go
// pushes each onto a list that the scheduler pops from the front), so a busy server answers the
// client that sent last first and the one that sent first last. Under the echo benchmark's load
// (50 clients, a batch of ~25) a request waited from 0.4 to 3 ms where Node, which serves its
// event loop in arrival order, answers nearly all of them in one round (bench/OPTIMISATION.md,
// "Fifth pass"). The poller keeps a second epoll set of its own, edge-triggered like the
// runtime's, holding the connections whose readers are in their brief wait (wsConn.waitBriefly);
// the runtime polls only the poller's epoll descriptor, and the poller wakes the readers of one
// batch in the kernel's order.
//
// A reader waits on its fairWaiter's channel, not in the runtime's poller: readiness only wakes
// it, and it reads as before. An idle connection (quiet for readerSettle) leaves the set and waits
// in the runtime's poller again, so it costs the poller nothing.
type fairPoller struct {
	epfd int
	file *os.File        // epfd
	raw  syscall.RawConn // epfd as the runtime polls it

	mu      sync.Mutex
	waiters map[uint64]*fairWaiter // by the id registered with the connection
	next    uint64                 // the last id given
}

// fairWaiter is where one connection's reader waits.
type fairWaiter struct {
	id    uint64
	ready chan struct{} // holds a wake-up, one at most: none is lost, and two are one
	timer *time.Timer   // fires at the brief wait's deadline, so that the reader sees it passed
}

// wake lets the reader go on, now or when it next waits.
func (w *fairWaiter) wake() {
	select {
	case w.ready <- struct{}{}:
	default:
	}
}

var (
	fairOnce sync.Once
	fair     *fairPoller // nil: the system refused an epoll set; readers wait in the runtime's poller
)

// theFairPoller starts the process's poller on first use.
func theFairPoller() *fairPoller {
	fairOnce.Do(func() {
		p, err := newFairPoller()
		if err == nil {
			fair = p
			go p.run()
		}
	})
	return fair
}

func newFairPoller() (*fairPoller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		_ = unix.Close(epfd)
		return nil, err
	}
	// A non-blocking descriptor given to os.NewFile is polled by the runtime: an epoll set is
	// readable while any of its connections is ready.
	f := os.NewFile(uintptr(epfd), "fairpoll")
	raw, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return &fairPoller{epfd: epfd, file: f, raw: raw, waiters: map[uint64]*fairWaiter{}}, nil
}

// fairBatch is how many events one epoll_wait returns at most.
const fairBatch = 128

// run waits for ready connections and wakes their readers, for the life of the process.
func (p *fairPoller) run() {
	events := make([]unix.EpollEvent, fairBatch)
	woken := make([]*fairWaiter, 0, fairBatch)
	for {
		err := p.raw.Read(func(uintptr) bool {
			for {
				n, err := unix.EpollWait(p.epfd, events, 0)
				if err == unix.EINTR {
					continue
				}
				if n <= 0 {
					return false // wait until the set is readable again
				}
				woken = woken[:0]
				p.mu.Lock()
				for i := range events[:n] {
					if w := p.waiters[eventID(&events[i])]; w != nil {
						woken = append(woken, w)
					}
				}
				p.mu.Unlock()
				wakeInOrder(woken)
				if n < len(events) {
					return false
				}
			}
		})
		if err != nil {
			return // not expected: the set is never closed
		}
	}
}

// wakeInOrder wakes the readers of one batch so that they run in the batch's order. A goroutine
// readied by another runs next, before those already queued, and pushes the one readied before it
// to the back of the queue: woken second to last and then first, they run first to last.
func wakeInOrder(ws []*fairWaiter) {
	if len(ws) == 0 {
		return
	}
	for _, w := range ws[1:] {
		w.wake()
	}
	ws[0].wake()
}

// add puts the connection behind raw into the set; its reader waits on the waiter returned, and
// the waiter's timer fires at deadline. nil when the connection could not be added.
func (p *fairPoller) add(raw syscall.RawConn, deadline time.Time) *fairWaiter {
	p.mu.Lock()
	p.next++
	w := &fairWaiter{id: p.next, ready: make(chan struct{}, 1)}
	p.waiters[w.id] = w
	p.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET}
	setEventID(&ev, w.id)
	var err error
	if cerr := raw.Control(func(fd uintptr) {
		err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
	}); cerr != nil {
		err = cerr
	}
	if err != nil {
		p.forget(w)
		return nil
	}
	w.timer = time.AfterFunc(time.Until(deadline), w.wake)
	return w
}

// remove takes the connection behind raw, waiting on w, out of the set. A closed connection left
// it when its descriptor was closed.
func (p *fairPoller) remove(raw syscall.RawConn, w *fairWaiter) {
	_ = raw.Control(func(fd uintptr) {
		_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
	})
	p.forget(w)
}

// forget drops w: an event for it that is being handled wakes nobody.
func (p *fairPoller) forget(w *fairWaiter) {
	if w.timer != nil {
		w.timer.Stop()
	}
	p.mu.Lock()
	delete(p.waiters, w.id)
	p.mu.Unlock()
}

// eventID and setEventID keep a waiter's id in an event's 64 bits of user data, which x/sys/unix
// splits into Fd and Pad.
func eventID(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

func setEventID(ev *unix.EpollEvent, id uint64) {
	ev.Fd, ev.Pad = int32(uint32(id)), int32(uint32(id>>32))
}

// fairWaiters counts the connections in the set (for tests).
func (p *fairPoller) fairWaiters() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.waiters)
}
