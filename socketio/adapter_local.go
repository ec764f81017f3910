package socketio

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/switchboard/switchboard/engineio"
)

// LocalAdapter is the single-node adapter, and the part of every cluster adapter that knows this
// node's sockets: which socket is in which room, and how a broadcast reaches them. A socket's own
// id is not stored as a room: a broadcast to an id finds the socket through the namespace.
//
// A broadcast is encoded once per parser in use among its recipients and framed once
// (engineio.Message), and written to every recipient from the broadcasting goroutine.
//
// With connection state recovery on (and no cluster adapter doing it instead), it also keeps the
// sessions of disconnected sockets and the events broadcast since, bounded in time and in bytes
// (recovery.go).
type LocalAdapter struct {
	nsp *Namespace

	mu    sync.RWMutex
	rooms map[string]map[*Socket]struct{}

	sessions *sessionStore // nil when this adapter does not recover sessions
}

var _ Adapter = (*LocalAdapter)(nil)

// LocalOptions configures a LocalAdapter.
type LocalOptions struct {
	// Recovery keeps sessions for connection state recovery, with the server's window and
	// memory bound. A cluster adapter that keeps sessions elsewhere, or cannot (Redis pub/sub),
	// leaves it off.
	Recovery bool
}

// NewLocalAdapter returns the single-node adapter of nsp.
func NewLocalAdapter(nsp *Namespace, opts LocalOptions) *LocalAdapter {
	a := &LocalAdapter{nsp: nsp, rooms: map[string]map[*Socket]struct{}{}}
	if opts.Recovery && nsp.srv.cfg.RecoveryWindow > 0 {
		a.sessions = newSessionStore(nsp.srv.cfg.RecoveryWindow, nsp.srv.cfg.RecoveryMaxBytes)
	}
	return a
}

// MemoryAdapter is the AdapterFactory of a single node: a LocalAdapter that recovers sessions.
func MemoryAdapter(nsp *Namespace) (Adapter, error) {
	return NewLocalAdapter(nsp, LocalOptions{Recovery: true}), nil
}

// Recovers implements Recoverer.
func (a *LocalAdapter) Recovers() bool { return a.sessions != nil }

// Namespace is the adapter's namespace.
func (a *LocalAdapter) Namespace() *Namespace { return a.nsp }

// AddAll implements Adapter.
func (a *LocalAdapter) AddAll(s *Socket, rooms []string) {
	var joined []string
	a.mu.Lock()
	for _, r := range rooms {
		if r == s.id || slices.Contains(s.rooms, r) {
			continue
		}
		set := a.rooms[r]
		if set == nil {
			set = make(map[*Socket]struct{}, 1)
			a.rooms[r] = set
		}
		set[s] = struct{}{}
		s.rooms = append(s.rooms, r)
		joined = append(joined, r)
	}
	a.mu.Unlock()
	for _, r := range joined {
		a.nsp.roomChanged(s, r, true)
	}
}

// Del implements Adapter.
func (a *LocalAdapter) Del(s *Socket, room string) {
	a.mu.Lock()
	i := slices.Index(s.rooms, room)
	if i < 0 {
		a.mu.Unlock()
		return
	}
	s.rooms = slices.Delete(s.rooms, i, i+1)
	a.removeLocked(s, room)
	a.mu.Unlock()
	a.nsp.roomChanged(s, room, false)
}

func (a *LocalAdapter) removeLocked(s *Socket, room string) {
	if set := a.rooms[room]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(a.rooms, room)
		}
	}
}

// DelAll implements Adapter.
func (a *LocalAdapter) DelAll(s *Socket) {
	a.mu.Lock()
	left := s.rooms
	s.rooms = nil
	for _, r := range left {
		a.removeLocked(s, r)
	}
	a.mu.Unlock()
	for _, r := range left {
		a.nsp.roomChanged(s, r, false)
	}
}

// SocketRooms implements Adapter.
func (a *LocalAdapter) SocketRooms(s *Socket) []string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return slices.Clone(s.rooms)
}

// Rooms implements Adapter.
func (a *LocalAdapter) Rooms() []string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	out := make([]string, 0, len(a.rooms))
	for r := range a.rooms {
		out = append(out, r)
	}
	return out
}

// RoomSize is the number of local sockets in room.
func (a *LocalAdapter) RoomSize(room string) int {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return len(a.rooms[room])
}

// Match returns the local sockets opts selects, each once.
func (a *LocalAdapter) Match(opts BroadcastOptions) []*Socket {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.matchLocked(opts)
}

func (a *LocalAdapter) matchLocked(opts BroadcastOptions) []*Socket {
	var except map[*Socket]struct{}
	if len(opts.Except) > 0 {
		except = map[*Socket]struct{}{}
		for _, r := range opts.Except {
			for s := range a.rooms[r] {
				except[s] = struct{}{}
			}
			if s := a.nsp.Socket(r); s != nil {
				except[s] = struct{}{}
			}
		}
	}
	keep := func(s *Socket) bool {
		_, out := except[s]
		return !out
	}
	if len(opts.Rooms) == 0 {
		all := a.nsp.localSockets()
		out := all[:0]
		for _, s := range all {
			if keep(s) {
				out = append(out, s)
			}
		}
		return out
	}
	if len(opts.Rooms) == 1 {
		r := opts.Rooms[0]
		set := a.rooms[r]
		out := make([]*Socket, 0, len(set)+1)
		for s := range set {
			if keep(s) {
				out = append(out, s)
			}
		}
		if s := a.nsp.Socket(r); s != nil && keep(s) {
			if _, in := set[s]; !in {
				out = append(out, s)
			}
		}
		return out
	}
	seen := map[*Socket]struct{}{}
	var out []*Socket
	add := func(s *Socket) {
		if _, dup := seen[s]; !dup && keep(s) {
			seen[s] = struct{}{}
			out = append(out, s)
		}
	}
	for _, r := range opts.Rooms {
		for s := range a.rooms[r] {
			add(s)
		}
		if s := a.nsp.Socket(r); s != nil {
			add(s)
		}
	}
	return out
}

// Broadcast implements Adapter: on one node, local delivery is all there is.
func (a *LocalAdapter) Broadcast(p *Packet, opts BroadcastOptions) error {
	a.BroadcastLocal(p, opts)
	return nil
}

// BroadcastLocal delivers p to the local sockets opts selects; with recovery on, an event
// without ack that is not volatile is stored with its offset first (appended to its data, as
// Node does, so that the client can report the last one it got).
func (a *LocalAdapter) BroadcastLocal(p *Packet, opts BroadcastOptions) {
	if a.sessions != nil && p.Type == PacketEvent && p.ID < 0 && !opts.Volatile {
		p = a.sessions.store(p, opts)
	}
	a.Deliver(p, opts, a.Match(opts))
}

// Deliver writes p to targets, encoding it once per parser. A socket still connecting gets
// nothing, unless it is recovering a session: it keeps what it gets until it is connected.
func (a *LocalAdapter) Deliver(p *Packet, opts BroadcastOptions, targets []*Socket) {
	var enc [numParsers][]*engineio.Message
	var failed [numParsers]bool
	n := 0
	defer func() { a.nsp.emitted(p, n) }()
	for _, s := range targets {
		k := s.client.parser
		if enc[k] == nil && !failed[k] {
			msgs, err := encode(k, p)
			if err != nil {
				failed[k] = true
				a.nsp.srv.logEncodeError(p, err)
				continue
			}
			enc[k] = msgs
		}
		if failed[k] {
			continue
		}
		if s.deliver(p, enc[k], opts.Volatile) {
			n++
			a.nsp.sent(s, p)
		}
	}
}

// BroadcastWithAck implements Adapter for one node.
func (a *LocalAdapter) BroadcastWithAck(ctx context.Context, p *Packet, opts BroadcastOptions) ([]*Args, bool, error) {
	c := newAckCollector()
	n := a.BroadcastWithAckLocal(p, opts, c.add)
	acks, timedOut := c.wait(ctx, n)
	return acks, timedOut, nil
}

// BroadcastWithAckLocal sends p to the local sockets opts selects, each with its own ack
// callback, and returns how many it reached; onAck is called for each ack as it arrives, on the
// goroutine that read it from the connection: it must not block.
func (a *LocalAdapter) BroadcastWithAckLocal(p *Packet, opts BroadcastOptions, onAck func(*Args)) int {
	id := a.nsp.nextAckID()
	q := *p
	q.ID = id
	// A socket that disconnects before it answers fails its acks with nil: that is no answer
	// (Node's broadcast then times out, with the acks that did come).
	ack := func(r *Args) {
		if r != nil {
			onAck(r)
		}
	}
	n := 0
	for _, s := range a.Match(opts) {
		if !s.Connected() {
			continue
		}
		s.registerAck(id, ack)
		if s.writePacket(&q, opts.Volatile) {
			n++
			a.nsp.sent(s, &q)
		} else {
			s.takeAck(id)
		}
	}
	return n
}

// ackCollector gathers broadcast acks until the expected number arrived.
type ackCollector struct {
	mu   sync.Mutex
	acks []*Args
	more chan struct{}
}

func newAckCollector() *ackCollector { return &ackCollector{more: make(chan struct{}, 1)} }

func (c *ackCollector) add(a *Args) {
	c.mu.Lock()
	c.acks = append(c.acks, a)
	c.mu.Unlock()
	select {
	case c.more <- struct{}{}:
	default:
	}
}

// wait returns the acks once want arrived, or what arrived when ctx ended (timedOut).
func (c *ackCollector) wait(ctx context.Context, want int) ([]*Args, bool) {
	for {
		c.mu.Lock()
		if len(c.acks) >= want {
			out := c.acks
			c.mu.Unlock()
			return out, false
		}
		c.mu.Unlock()
		select {
		case <-c.more:
		case <-ctx.Done():
			c.mu.Lock()
			out := slices.Clone(c.acks)
			c.mu.Unlock()
			return out, true
		}
	}
}

// FetchSockets implements Adapter for one node.
func (a *LocalAdapter) FetchSockets(_ context.Context, opts BroadcastOptions) ([]RemoteSocket, error) {
	return a.FetchLocal(opts), nil
}

// FetchLocal describes the local sockets opts selects.
func (a *LocalAdapter) FetchLocal(opts BroadcastOptions) []RemoteSocket {
	sockets := a.Match(opts)
	out := make([]RemoteSocket, 0, len(sockets))
	for _, s := range sockets {
		if s.Connected() {
			out = append(out, RemoteSocket{ID: s.id, Handshake: s.Handshake(), Rooms: s.Rooms(), Data: s.Data(), Local: s})
		}
	}
	return out
}

// AddSockets implements Adapter for one node.
func (a *LocalAdapter) AddSockets(_ context.Context, opts BroadcastOptions, rooms []string) error {
	a.AddLocal(opts, rooms)
	return nil
}

// AddLocal makes the local sockets opts selects join rooms.
func (a *LocalAdapter) AddLocal(opts BroadcastOptions, rooms []string) {
	for _, s := range a.Match(opts) {
		s.Join(rooms...)
	}
}

// DelSockets implements Adapter for one node.
func (a *LocalAdapter) DelSockets(_ context.Context, opts BroadcastOptions, rooms []string) error {
	a.DelLocal(opts, rooms)
	return nil
}

// DelLocal makes the local sockets opts selects leave rooms.
func (a *LocalAdapter) DelLocal(opts BroadcastOptions, rooms []string) {
	for _, s := range a.Match(opts) {
		for _, r := range rooms {
			s.Leave(r)
		}
	}
}

// DisconnectSockets implements Adapter for one node.
func (a *LocalAdapter) DisconnectSockets(_ context.Context, opts BroadcastOptions, close bool) error {
	a.DisconnectLocal(opts, close)
	return nil
}

// DisconnectLocal disconnects the local sockets opts selects.
func (a *LocalAdapter) DisconnectLocal(opts BroadcastOptions, close bool) {
	for _, s := range a.Match(opts) {
		s.Disconnect(close)
	}
}

// ServerSideEmit implements Adapter: with no other node, there is no one to tell.
func (a *LocalAdapter) ServerSideEmit(context.Context, []any) error { return nil }

// ServerCount implements Adapter.
func (a *LocalAdapter) ServerCount(context.Context) (int, error) { return 1, nil }

// PersistSession implements Adapter.
func (a *LocalAdapter) PersistSession(s *Session) {
	if a.sessions != nil {
		a.sessions.persist(s)
	}
}

// RestoreSession implements Adapter.
func (a *LocalAdapter) RestoreSession(_ context.Context, pid, offset string, join func(*Session)) (*Session, error) {
	if a.sessions == nil {
		return nil, nil
	}
	return a.sessions.restore(pid, offset, time.Now(), join), nil
}

// Close implements Adapter.
func (a *LocalAdapter) Close() error {
	if a.sessions != nil {
		a.sessions.close()
	}
	return nil
}
