package adapters

import (
	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// Memory keeps rooms in this process only, in the library's in-memory adapter, with two things of
// ours on top: the sessions and missed packets of connection state recovery (sessions.go, what the
// library's session-aware adapter keeps), and a broadcast that hands each recipient's connection
// the encoded frame directly when Config.Direct can take it.
type Memory struct {
	ctor *memoryBuilder
}

var _ Backend = (*Memory)(nil)

// NewMemory returns the in-memory backend.
func NewMemory(cfg Config) *Memory {
	return &Memory{ctor: &memoryBuilder{recovery: cfg.Recovery, direct: cfg.Direct}}
}

// Constructor implements Backend.
func (m *Memory) Constructor() socket.AdapterConstructor { return m.ctor }

// Close implements Backend; the library closes each namespace's adapter itself.
func (m *Memory) Close() error { return nil }

// Direct is how a server writes a broadcast past the engine's per-packet path. It is called once
// per broadcast with the encoded Engine.IO packet (a text message: "4" and the Socket.IO packet)
// and returns the writer for its recipients, which reports false when a recipient must get the
// packet the library's way instead (its connection is not one the server writes to itself, or
// packets are queued for it in the engine). A writer that returns true owns the delivery: it
// wrote the frame, queued it in order, or dropped it as the library would (a volatile packet for
// a busy connection).
type Direct func(encoded []byte, volatile bool) (write func(*socket.Socket) bool)

type memoryBuilder struct {
	recovery bool
	direct   Direct
}

// New implements socket.AdapterConstructor.
func (b *memoryBuilder) New(nsp socket.Namespace) socket.Adapter {
	a := &memoryAdapter{Adapter: socket.MakeAdapter(), direct: b.direct}
	if b.recovery {
		a.sessions = newSessions()
	}
	a.Prototype(a)
	a.Construct(nsp)
	return a
}

// memoryAdapter is the library's in-memory adapter (rooms, acks, fetches) with our Broadcast and,
// with recovery on, our sessions.
type memoryAdapter struct {
	socket.Adapter
	encoder  parser.Encoder
	direct   Direct    // nil: every recipient the library's way
	sessions *sessions // nil: recovery off
}

// Construct implements socket.Adapter.
func (a *memoryAdapter) Construct(nsp socket.Namespace) {
	a.Adapter.Construct(nsp)
	a.encoder = nsp.Server().Encoder()
	if a.sessions != nil {
		window := socket.DefaultMaxDisconnectionDuration
		if rec := nsp.Server().Opts().ConnectionStateRecovery(); rec != nil {
			window = rec.MaxDisconnectionDuration()
		}
		a.sessions.start(window, socket.DefaultSessionCleanupInterval)
	}
}

// Close implements socket.Adapter.
func (a *memoryAdapter) Close() {
	if a.sessions != nil {
		a.sessions.stop()
	}
	a.Adapter.Close()
}

// PersistSession implements socket.Adapter.
func (a *memoryAdapter) PersistSession(session *socket.SessionToPersist) {
	if a.sessions != nil {
		a.sessions.persist(session)
	}
}

// RestoreSession implements socket.Adapter.
func (a *memoryAdapter) RestoreSession(pid socket.PrivateSessionId, offset string) (*socket.Session, error) {
	if a.sessions == nil {
		return nil, nil
	}
	return a.sessions.restore(pid, offset), nil
}

// Broadcast implements socket.Adapter as the library's session-aware adapter does: an event
// without ack and not volatile gets an offset and is kept for recovery; then it goes to this
// node's recipients (broadcastLocal).
func (a *memoryAdapter) Broadcast(packet *parser.Packet, opts *socket.BroadcastOptions) {
	if a.sessions != nil && packet.Type == parser.EVENT && packet.Id == nil && (opts == nil || opts.Flags == nil || !opts.Flags.Volatile) {
		a.sessions.keep(packet, opts)
	}
	broadcastLocal(a.Adapter, a.encoder, a.direct, packet, opts)
}

// broadcastLocal does what the library's in-memory adapter's Broadcast does with rooms (every
// connected socket of opts' rooms but the excepted, once each), except for how it reaches a
// recipient: the library makes an engine packet per recipient and passes it through the engine's
// buffer and flush, six events on the way; a recipient that direct takes gets the one frame of the
// broadcast written to its connection at once. base holds the rooms.
func broadcastLocal(base socket.Adapter, encoder parser.Encoder, direct Direct, packet *parser.Packet, opts *socket.BroadcastOptions) {
	flags := &socket.BroadcastFlags{}
	if opts != nil && opts.Flags != nil {
		flags = opts.Flags
	}
	writeOpts := &socket.WriteOptions{}
	writeOpts.PreEncoded = true
	writeOpts.Volatile = flags.Volatile
	writeOpts.Compress = flags.Compress
	packet.Nsp = base.Nsp().Name()
	encoded := encoder.Encode(packet)

	var write func(*socket.Socket) bool
	if len(encoded) == 1 {
		if p, ok := encoded[0].(*types.StringBuffer); ok {
			// The library's pre-encoded frame: "4" (an Engine.IO message) and the packet.
			data := types.NewStringBufferString("4")
			_, _ = data.Write(p.Bytes())
			writeOpts.WsPreEncodedFrame = data
			if direct != nil {
				write = direct(data.Bytes(), flags.Volatile)
			}
		}
	}
	eachRecipient(base, opts, func(s *socket.Socket) {
		if notify := s.NotifyOutgoingListeners(); notify != nil {
			notify(packet)
		}
		if write != nil && write(s) {
			return
		}
		s.Client().WriteToEngine(encoded, writeOpts)
	})
}

// eachRecipient calls fn for every connected socket of base's namespace that opts select, once
// each, as the library's adapter does: the sockets of opts.Rooms (every socket when there are
// none) but those in opts.Except.
func eachRecipient(base socket.Adapter, opts *socket.BroadcastOptions, fn func(*socket.Socket)) {
	var rooms, except *types.Set[socket.Room]
	if opts != nil {
		rooms, except = opts.Rooms, opts.Except
	}
	excluded := exceptSids(base, except)
	sockets := base.Nsp().Sockets()
	visit := func(id socket.SocketId) {
		if _, skip := excluded[id]; skip {
			return
		}
		if s, ok := sockets.Load(id); ok && s.Connected() {
			fn(s)
		}
	}
	if rooms == nil || rooms.Len() == 0 {
		base.Sids().Range(func(id socket.SocketId, _ *types.Set[socket.Room]) bool {
			visit(id)
			return true
		})
		return
	}
	keys := rooms.Keys()
	var seen map[socket.SocketId]struct{} // a room's members are distinct: needed for several rooms only
	if len(keys) > 1 {
		seen = map[socket.SocketId]struct{}{}
	}
	for _, room := range keys {
		ids, ok := base.Rooms().Load(room)
		if !ok {
			continue
		}
		for _, id := range ids.Keys() {
			if seen != nil {
				if _, dup := seen[id]; dup {
					continue
				}
				seen[id] = struct{}{}
			}
			visit(id)
		}
	}
}

// exceptSids lists the sockets of the excepted rooms.
func exceptSids(base socket.Adapter, except *types.Set[socket.Room]) map[socket.SocketId]struct{} {
	if except == nil || except.Len() == 0 {
		return nil
	}
	sids := map[socket.SocketId]struct{}{}
	for _, room := range except.Keys() {
		if ids, ok := base.Rooms().Load(room); ok {
			for _, id := range ids.Keys() {
				sids[id] = struct{}{}
			}
		}
	}
	return sids
}
