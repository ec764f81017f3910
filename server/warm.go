package server

import (
	"runtime"
	"sync"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/switchboard/switchboard/namespaces"
)

// warmPool runs the handlers of clients' events on a few long-lived goroutines.
//
// After a socket's middlewares the library queues the event's handlers as a task of the socket's
// queue, which starts a goroutine for each burst with the runtime's small initial stack; handling
// an event (decoding, our handler, the ack's JSON encoding and its write) needs more, so every
// burst grows the new stack two or three times, copying it each time: 14% of the server's CPU in
// the echo benchmark (runtime.newstack and copystack under encoding/json and our decoder). A
// worker of the pool keeps the stack it grew.
//
// The pool adds a socket middleware at each end of the chain. The first hands the rest of the
// chain to an idle worker and waits for it; the last, instead of passing the event on to the
// library's dispatch, runs the event's handlers there (the library's EmitUntyped, as dispatch
// would, if the socket is still connected). A socket's events still run one at a time and in
// order, on its queue's goroutine or a worker lent to it; when no worker is idle (handlers
// blocked on I/O, say) the chain runs on the socket's goroutine, as without the pool.
type warmPool struct {
	tasks chan *warmTask
	stop  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
	n     int // workers
}

// warmTask is one event's handling and where its worker reports the end (a recovered panic or nil).
type warmTask struct {
	fn   func()
	done chan any
}

var warmTasks = sync.Pool{New: func() any { return &warmTask{done: make(chan any, 1)} }}

// newWarmPool starts the workers: two per processor the runtime uses.
func newWarmPool() *warmPool {
	p := &warmPool{tasks: make(chan *warmTask), stop: make(chan struct{})}
	p.n = 2 * runtime.GOMAXPROCS(0)
	p.wg.Add(p.n)
	for range p.n {
		go p.work()
	}
	return p
}

func (p *warmPool) work() {
	defer p.wg.Done()
	for {
		select {
		case t := <-p.tasks:
			t.done <- runRecovering(t.fn)
		case <-p.stop:
			return
		}
	}
}

// runRecovering runs fn and returns what it panicked with, if it did.
func runRecovering(fn func()) (panicked any) {
	defer func() { panicked = recover() }()
	fn()
	return nil
}

// do runs fn on an idle worker and waits for it, or runs it here when none is idle. A panic in fn
// is raised again on the caller's goroutine, where the library recovers it as it would have.
func (p *warmPool) do(fn func()) {
	t := warmTasks.Get().(*warmTask)
	t.fn = fn
	select {
	case p.tasks <- t:
		v := <-t.done
		t.fn = nil
		warmTasks.Put(t)
		if v != nil {
			panic(v)
		}
	default:
		t.fn = nil
		warmTasks.Put(t)
		fn()
	}
}

// enter starts the middleware chain of nsp's sockets with the pool's first middleware, which
// runs the rest of the chain on a worker. It must be called before every other registration of
// per-socket middlewares on nsp.
func (p *warmPool) enter(nsp socket.Namespace) {
	_ = nsp.On("connection", func(args ...any) {
		if s, ok := namespaces.SocketArg(args); ok {
			s.Use(p.handOver)
		}
	})
}

// handOver is the first socket middleware.
func (p *warmPool) handOver(_ []any, next func(error)) {
	p.do(func() { next(nil) })
}

// dispatch ends the middleware chain of nsp's sockets with the pool's last middleware, which runs
// the event's handlers where the chain runs. It must be called after every other registration of
// per-socket middlewares on nsp.
func (p *warmPool) dispatch(nsp socket.Namespace) {
	_ = nsp.On("connection", func(args ...any) {
		s, ok := namespaces.SocketArg(args)
		if !ok {
			return
		}
		s.Use(func(event []any, next func(error)) {
			name, ok := firstString(event)
			if !ok {
				next(nil) // the library's dispatch deals with it
				return
			}
			if s.Connected() {
				s.EmitUntyped(name, event[1:]...)
			}
		})
	})
}

// firstString returns an event's name.
func firstString(event []any) (string, bool) {
	if len(event) == 0 {
		return "", false
	}
	name, ok := event[0].(string)
	return name, ok
}

// close stops the workers; events are handled on the sockets' goroutines from then on.
func (p *warmPool) close() {
	p.once.Do(func() { close(p.stop) })
	p.wg.Wait()
}
