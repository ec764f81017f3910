package socketio

import (
	"time"
)

// workers runs the sockets' queued work (connects, events, acks, disconnects) on goroutines that
// stay alive between bursts, so that a socket's handler does not start on a fresh goroutine whose
// small stack grows again for every event. A socket is served by one worker at a time, which
// drains its queue in order; any number of sockets are served at once, so a handler that blocks
// holds up its own socket only. Workers beyond the busy ones exit after a short idle time.
type workers struct {
	idle chan *Socket // idle workers wait here; a send succeeds only when one waits
	stop chan struct{}
}

// workerIdle is how long a worker waits for more work before it exits.
const workerIdle = 2 * time.Second

func newWorkers() *workers {
	return &workers{idle: make(chan *Socket), stop: make(chan struct{})}
}

// run has a worker drain s's queue: an idle one if there is, else a new one.
func (w *workers) run(s *Socket) {
	select {
	case w.idle <- s:
	default:
		go w.work(s)
	}
}

func (w *workers) work(s *Socket) {
	t := time.NewTimer(workerIdle)
	defer t.Stop()
	for {
		s.drain()
		t.Reset(workerIdle)
		select {
		case s = <-w.idle:
		case <-t.C:
			return
		case <-w.stop:
			return
		}
	}
}

func (w *workers) close() { close(w.stop) }
