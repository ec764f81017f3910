package adapters

// requests.go: what a cluster adapter keeps while it waits for other nodes (fetchSockets,
// serverSideEmit with ack, broadcast acks), and the ordered queue its answers leave through.

import (
	"context"
	"fmt"
	"sync"

	"github.com/switchboard/switchboard/socketio"
)

// pendingSet holds this node's requests that wait for answers, by request id. An answer comes
// to its request as its type and its body (the message itself on the classic wire, its data on
// ClusterAdapter's), which is where every wire puts a request's answer fields.
type pendingSet struct {
	mu sync.Mutex
	m  map[string]answerFunc
}

// answerFunc takes one answer: its message type (0 when it has none) and its body.
type answerFunc func(typ float64, body map[string]any)

func (p *pendingSet) add(id string, fn answerFunc) (remove func()) {
	p.mu.Lock()
	if p.m == nil {
		p.m = map[string]answerFunc{}
	}
	p.m[id] = fn
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		delete(p.m, id)
		p.mu.Unlock()
	}
}

func (p *pendingSet) has(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.m[id]
	return ok
}

// answer hands an answer to the request id; false when none waits for it.
func (p *pendingSet) answer(id string, typ float64, body map[string]any) bool {
	p.mu.Lock()
	fn := p.m[id]
	p.mu.Unlock()
	if fn == nil {
		return false
	}
	fn(typ, body)
	return true
}

// gather collects the answers of a fixed number of nodes.
type gather[T any] struct {
	mu   sync.Mutex
	want int
	got  int
	out  []T
	done chan struct{}
}

func newGather[T any](want int, first []T) *gather[T] {
	g := &gather[T]{want: want, out: first, done: make(chan struct{})}
	if want <= 0 {
		close(g.done)
	}
	return g
}

// add counts one node's answer with its items.
func (g *gather[T]) add(items ...T) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.got >= g.want {
		return
	}
	g.got++
	g.out = append(g.out, items...)
	if g.got == g.want {
		close(g.done)
	}
}

// await returns what arrived once every node answered, or, when requestsTimeout (Node's) or
// ctx ended first, what arrived with an error wrapping context.DeadlineExceeded; what names the
// request in that error.
func (g *gather[T]) await(ctx context.Context, what string) ([]T, error) {
	ctx, cancel := context.WithTimeout(ctx, requestsTimeout)
	defer cancel()
	select {
	case <-g.done:
	case <-ctx.Done():
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	out := append([]T(nil), g.out...)
	if g.got < g.want {
		return out, fmt.Errorf("adapters: %s: %d of %d other nodes answered: %w", what, g.got, g.want, context.DeadlineExceeded)
	}
	return out, nil
}

// ackGather collects a broadcast's acks across the cluster, as Node's BroadcastOperator does:
// it is complete when every counted server reported its client count (this one included) and
// as many acks arrived as those counts add up to.
type ackGather struct {
	mu      sync.Mutex
	servers int // expected, -1 until known
	counted int
	clients int
	answers int // acks, and local sockets that went away instead
	acks    []*socketio.Args
	done    chan struct{}
	closed  bool
}

func newAckGather() *ackGather { return &ackGather{servers: -1, done: make(chan struct{})} }

func (g *ackGather) checkLocked() {
	if !g.closed && g.servers >= 0 && g.counted >= g.servers && g.answers >= g.clients {
		g.closed = true
		close(g.done)
	}
}

func (g *ackGather) expect(servers int) {
	g.mu.Lock()
	g.servers = servers
	g.checkLocked()
	g.mu.Unlock()
}

func (g *ackGather) count(clients int) {
	g.mu.Lock()
	g.counted++
	g.clients += clients
	g.checkLocked()
	g.mu.Unlock()
}

// ack takes one ack; nil is a local socket that disconnected before it acked (it counts as
// answered, and is not returned).
func (g *ackGather) ack(a *socketio.Args) {
	g.mu.Lock()
	g.answers++
	if a != nil {
		g.acks = append(g.acks, a)
	}
	g.checkLocked()
	g.mu.Unlock()
}

func (g *ackGather) wait(ctx context.Context) ([]*socketio.Args, bool) {
	timedOut := false
	select {
	case <-g.done:
	case <-ctx.Done():
		timedOut = true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if timedOut && g.closed {
		timedOut = false
	}
	return append([]*socketio.Args(nil), g.acks...), timedOut
}

// serial runs functions one at a time in the order they were queued, on a goroutine that exists
// only while there is work (answers to other nodes leave in order, without holding up the
// subscription's reader).
type serial struct {
	mu      sync.Mutex
	queue   []func()
	running bool
	idle    *sync.Cond
}

func (s *serial) do(fn func()) {
	s.mu.Lock()
	s.queue = append(s.queue, fn)
	if s.running {
		s.mu.Unlock()
		return
	}
	s.running = true
	s.mu.Unlock()
	go s.run()
}

func (s *serial) run() {
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.running = false
			if s.idle != nil {
				s.idle.Broadcast()
			}
			s.mu.Unlock()
			return
		}
		fn := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		s.mu.Unlock()
		fn()
	}
}

// wait returns once the queue is empty and nothing runs.
func (s *serial) wait() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idle == nil {
		s.idle = sync.NewCond(&s.mu)
	}
	for s.running {
		s.idle.Wait()
	}
}

// ackRelay answers a broadcast with ack from another node: its client count first, then each
// ack, in that order even when a client acks before the count left.
type ackRelay struct {
	mu      sync.Mutex
	sent    bool
	pending []*socketio.Args
	send    func(a *socketio.Args) // queues one ack's answer
}

func (r *ackRelay) onAck(a *socketio.Args) {
	if a == nil {
		return // the socket went away: nothing to answer
	}
	r.mu.Lock()
	if !r.sent {
		r.pending = append(r.pending, a)
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	r.send(a)
}

// counted is called once the count is queued; the acks that came first follow it.
func (r *ackRelay) counted() {
	r.mu.Lock()
	r.sent = true
	pending := r.pending
	r.pending = nil
	r.mu.Unlock()
	for _, a := range pending {
		r.send(a)
	}
}
