package engineio

import (
	"sync"
	"time"
)

// timerKind says what a connection's pending deadline is for.
type timerKind uint8

const (
	timerNone timerKind = iota
	timerPing           // send the next ping
	timerPong           // the ping went unanswered: close with "ping timeout"
)

// timerSlot is a connection's place in the timer heap: one deadline per connection, because a
// connection waits either to send its next ping or for the pong of the last one.
type timerSlot struct {
	when int64 // nanoseconds on the heap's monotonic clock
	kind timerKind
	idx  int32 // index in the heap, -1 when not scheduled
}

// timers holds every connection's heartbeat deadline in one min-heap served by one goroutine
// and one runtime timer, instead of a timer (and, when it fires, a goroutine) per connection.
// A connection is in the heap at most once. Callbacks run on the heap's goroutine and must not
// block: sending a ping is a non-blocking write, a timeout closes the connection.
type timers struct {
	mu    sync.Mutex
	heap  []*Conn
	base  time.Time
	wake  *time.Timer
	next  int64 // the deadline wake is set for, 0 when idle
	fire  func(c *Conn, kind timerKind)
	stop  chan struct{}
	done  chan struct{}
	close sync.Once
}

func newTimers(fire func(c *Conn, kind timerKind)) *timers {
	t := &timers{base: time.Now(), fire: fire, stop: make(chan struct{}), done: make(chan struct{})}
	t.wake = time.NewTimer(time.Hour)
	t.wake.Stop()
	go t.run()
	return t
}

// now is the heap's clock.
func (t *timers) now() int64 { return int64(time.Since(t.base)) }

// schedule sets c's deadline to d from now, replacing any it had.
func (t *timers) schedule(c *Conn, kind timerKind, d time.Duration) {
	when := t.now() + int64(d)
	t.mu.Lock()
	s := &c.timer
	s.when, s.kind = when, kind
	if s.idx < 0 {
		s.idx = int32(len(t.heap))
		t.heap = append(t.heap, c)
		t.up(int(s.idx))
	} else {
		t.fix(int(s.idx))
	}
	t.rearm()
	t.mu.Unlock()
}

// cancel removes c's deadline.
func (t *timers) cancel(c *Conn) {
	t.mu.Lock()
	t.remove(c)
	t.mu.Unlock()
}

// deadline returns c's pending deadline and its kind.
func (t *timers) deadline(c *Conn) (int64, timerKind) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c.timer.idx < 0 {
		return 0, timerNone
	}
	return c.timer.when, c.timer.kind
}

func (t *timers) remove(c *Conn) {
	i := int(c.timer.idx)
	if i < 0 {
		return
	}
	last := len(t.heap) - 1
	if i != last {
		t.swap(i, last)
	}
	t.heap[last] = nil
	t.heap = t.heap[:last]
	c.timer.idx = -1
	c.timer.kind = timerNone
	if i != last {
		t.fix(i)
	}
}

// rearm points the runtime timer at the earliest deadline when it moved earlier. A later
// deadline is left alone: the goroutine wakes, finds nothing due and re-arms.
func (t *timers) rearm() {
	if len(t.heap) == 0 {
		return
	}
	first := t.heap[0].timer.when
	if t.next != 0 && t.next <= first {
		return
	}
	t.next = first
	t.wake.Reset(time.Duration(first - t.now()))
}

func (t *timers) run() {
	defer close(t.done)
	for {
		select {
		case <-t.stop:
			return
		case <-t.wake.C:
		}
		for {
			t.mu.Lock()
			t.next = 0
			if len(t.heap) == 0 {
				t.mu.Unlock()
				break
			}
			c := t.heap[0]
			if c.timer.when > t.now() {
				t.rearm()
				t.mu.Unlock()
				break
			}
			kind := c.timer.kind
			t.remove(c)
			t.mu.Unlock()
			t.fire(c, kind)
		}
	}
}

func (t *timers) shutdown() {
	t.close.Do(func() { close(t.stop) })
	<-t.done
}

func (t *timers) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.heap)
}

// The heap: a binary min-heap on when, each connection knowing its index.

func (t *timers) less(i, j int) bool { return t.heap[i].timer.when < t.heap[j].timer.when }

func (t *timers) swap(i, j int) {
	t.heap[i], t.heap[j] = t.heap[j], t.heap[i]
	t.heap[i].timer.idx = int32(i)
	t.heap[j].timer.idx = int32(j)
}

func (t *timers) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !t.less(i, p) {
			return
		}
		t.swap(i, p)
		i = p
	}
}

func (t *timers) down(i int) bool {
	start := i
	n := len(t.heap)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && t.less(r, l) {
			m = r
		}
		if !t.less(m, i) {
			break
		}
		t.swap(i, m)
		i = m
	}
	return i > start
}

func (t *timers) fix(i int) {
	if !t.down(i) {
		t.up(i)
	}
}
