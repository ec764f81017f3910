package socketio

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/engineio"
)

// Middleware runs for every socket connecting to a namespace, in the order they were added,
// before the socket is connected; it may block (another socket's connect goes on). An error
// refuses the socket: the client gets connect_error with the error's message, and a
// *ConnectError's data.
type Middleware func(s *Socket) error

// ConnectError is a middleware's refusal as the client sees it: err.message and err.data.
type ConnectError struct {
	Message string
	Data    any
}

func (e *ConnectError) Error() string { return e.Message }

// EventMiddleware runs for every event of the namespace's sockets, in the order they were added,
// before the handler; false stops the event (the middleware answered it, or drops it).
type EventMiddleware func(s *Socket, ev *Event) bool

// Namespace is a Socket.IO namespace: its sockets on this node, its adapter, and what happens
// when a socket connects, sends an event or disconnects. Configure it (Use, OnConnection,
// OnEvent, ...) before the server serves.
type Namespace struct {
	srv      *Server
	name     string
	adapter  Adapter
	local    *LocalAdapter
	recovers bool // socket emits go through the adapter, which keeps them for recovery

	middlewares  []Middleware
	eventMWs     []EventMiddleware
	onConnection []func(*Socket)
	onEvent      func(*Socket, *Event)
	onDisconnect []func(s *Socket, reason string)
	onRoom       []func(s *Socket, room string, joined bool)
	onOverflow   func(s *Socket, ev *Event)
	onAck        func(s *Socket, ev *Event, args []any)
	onEmitted    []func(event string, recipients int)
	onSent       []func(s *Socket, data []any)
	onData       []func(s *Socket)
	onServerSide func(args []any, ack func(...any))

	mu      sync.RWMutex
	sockets map[string]*Socket

	ackIDs atomic.Int64
}

// Name is the namespace's name, e.g. "/chat".
func (n *Namespace) Name() string { return n.name }

// Server is the namespace's server.
func (n *Namespace) Server() *Server { return n.srv }

// Adapter is the namespace's adapter.
func (n *Namespace) Adapter() Adapter { return n.adapter }

// Local is the namespace's local adapter (the part of any adapter that knows this node).
func (n *Namespace) Local() *LocalAdapter { return n.local }

// Use adds a connect middleware.
func (n *Namespace) Use(mw Middleware) { n.middlewares = append(n.middlewares, mw) }

// UseEvents adds an event middleware.
func (n *Namespace) UseEvents(mw EventMiddleware) { n.eventMWs = append(n.eventMWs, mw) }

// OnConnection adds a function called for every socket once it is connected (its CONNECT
// answered), on the socket's queue: its first event waits for it.
func (n *Namespace) OnConnection(fn func(*Socket)) { n.onConnection = append(n.onConnection, fn) }

// OnEvent sets the handler of the sockets' events (after the event middlewares). Without one,
// events are ignored.
func (n *Namespace) OnEvent(fn func(*Socket, *Event)) { n.onEvent = fn }

// OnDisconnect adds a function called when a socket disconnects, on its queue, after it left its
// rooms (Socket.Rooms still lists them).
func (n *Namespace) OnDisconnect(fn func(s *Socket, reason string)) {
	n.onDisconnect = append(n.onDisconnect, fn)
}

// OnRoom adds a function called whenever a local socket joins or leaves a room (its own id
// excepted), on the goroutine that made the change.
func (n *Namespace) OnRoom(fn func(s *Socket, room string, joined bool)) {
	n.onRoom = append(n.onRoom, fn)
}

// OnAck sets a function told of every ack the server sends to a client's event, before it is
// sent (for metrics).
func (n *Namespace) OnAck(fn func(s *Socket, ev *Event, args []any)) { n.onAck = fn }

// OnEmitted adds a function told of every event delivered by this node: its name and how many
// local sockets it was written to (for metrics; once per broadcast, not per recipient).
func (n *Namespace) OnEmitted(fn func(event string, recipients int)) {
	n.onEmitted = append(n.onEmitted, fn)
}

func (n *Namespace) emitted(p *Packet, recipients int) {
	if len(n.onEmitted) == 0 || recipients == 0 || p.Type != PacketEvent || len(p.Data) == 0 {
		return
	}
	name, _ := p.Data[0].(string)
	for _, fn := range n.onEmitted {
		fn(name, recipients)
	}
}

// OnSent adds a function told of every event written to one of the namespace's sockets (its own
// emits, broadcasts, emits with ack; not a recovered socket's missed events): the socket and the
// packet's data, the event name first. It runs on the sending goroutine, once per recipient, so
// it must not block; data must not be modified. (For the admin UI's event_sent in development
// mode; metrics want OnEmitted, once per broadcast.)
func (n *Namespace) OnSent(fn func(s *Socket, data []any)) { n.onSent = append(n.onSent, fn) }

func (n *Namespace) sent(s *Socket, p *Packet) {
	for _, fn := range n.onSent {
		fn(s, p.Data)
	}
}

// OnData adds a function told whenever SetData changes a socket's data, on the goroutine that
// called it (for the admin UI's socket_updated).
func (n *Namespace) OnData(fn func(s *Socket)) { n.onData = append(n.onData, fn) }

// Encoded is an event encoded at most once per parser, when a socket speaking that parser first
// needs it, so that writing the same event to many sockets one by one (Socket.WriteVolatile)
// costs one encoding per parser, as a broadcast does.
type Encoded struct {
	nsp *Namespace
	p   *Packet

	mu  sync.Mutex
	enc [numParsers][]*engineio.Message
	err [numParsers]error
}

// Encode prepares an event of this namespace for Socket.WriteVolatile.
func (n *Namespace) Encode(event string, args ...any) *Encoded {
	return &Encoded{nsp: n, p: &Packet{Type: PacketEvent, Nsp: n.name, ID: -1, Data: eventData(event, args)}}
}

func (e *Encoded) messages(k parserKind) ([]*engineio.Message, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.enc[k] == nil && e.err[k] == nil {
		e.enc[k], e.err[k] = encode(k, e.p)
	}
	return e.enc[k], e.err[k]
}

// OnOverflow sets what happens to an event refused because its socket already has
// Config.MaxQueue events waiting (default: dropped).
func (n *Namespace) OnOverflow(fn func(s *Socket, ev *Event)) { n.onOverflow = fn }

// OnServerSideEmit sets the handler of events other nodes send with ServerSideEmit: args are the
// event name and its arguments; ack is nil unless the sender waits for an answer.
func (n *Namespace) OnServerSideEmit(fn func(args []any, ack func(...any))) { n.onServerSide = fn }

// ServerSideEvent is how a cluster adapter hands over another node's ServerSideEmit; it reports
// whether a handler took it.
func (n *Namespace) ServerSideEvent(args []any, ack func(...any)) bool {
	if n.onServerSide == nil {
		return false
	}
	n.onServerSide(args, ack)
	return true
}

// Socket returns the local socket with id, or nil.
func (n *Namespace) Socket(id string) *Socket {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.sockets[id]
}

// Sockets lists the namespace's local sockets.
func (n *Namespace) Sockets() []*Socket { return n.localSockets() }

// Len is the number of local sockets.
func (n *Namespace) Len() int {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return len(n.sockets)
}

func (n *Namespace) localSockets() []*Socket {
	n.mu.RLock()
	defer n.mu.RUnlock()
	out := make([]*Socket, 0, len(n.sockets))
	for _, s := range n.sockets {
		out = append(out, s)
	}
	return out
}

func (n *Namespace) removeSocket(s *Socket) {
	n.mu.Lock()
	if n.sockets[s.id] == s {
		delete(n.sockets, s.id)
	}
	n.mu.Unlock()
}

func (n *Namespace) nextAckID() int64 { return n.ackIDs.Add(1) - 1 }

func (n *Namespace) roomChanged(s *Socket, room string, joined bool) {
	for _, fn := range n.onRoom {
		fn(s, room, joined)
	}
}

// connect runs on the socket's queue: recovery, middlewares, then the CONNECT answer.
func (n *Namespace) connect(s *Socket, auth map[string]any) {
	cl := s.client
	var sess *Session
	var replaced *Socket
	if n.srv.cfg.RecoveryWindow > 0 {
		pid, _ := auth["pid"].(string)
		offset, _ := auth["offset"].(string)
		if pid != "" && offset != "" {
			ctx, cancel := context.WithTimeout(n.srv.ctx, restoreTimeout)
			var err error
			sess, err = n.adapter.RestoreSession(ctx, pid, offset, func(se *Session) {
				replaced = n.recovering(s, se)
			})
			cancel()
			if err != nil {
				n.srv.logf("restore session", err)
			}
			if sess == nil && s.recovering {
				n.abandonRecovery(s) // joined, but the missed events could not be had
			}
		}
	}
	if replaced != nil {
		// A client that reconnected before the server saw its previous connection go.
		replaced.onclose(ReasonServerDisconnect)
	}
	if sess == nil {
		s.mu.Lock()
		s.id = newID()
		if n.srv.cfg.RecoveryWindow > 0 {
			s.pid = newID()
		}
		s.mu.Unlock()
	}

	for _, mw := range n.middlewares {
		if err := mw(s); err != nil {
			n.refuse(s, err)
			return
		}
	}

	s.mu.Lock()
	if s.state != sockConnecting || cl.conn.Closed() {
		s.state = sockClosed
		s.recovering, s.pending = false, nil
		s.mu.Unlock()
		n.adapter.DelAll(s)
		n.removeSocket(s)
		cl.removeSocket(s)
		return
	}
	s.state = sockConnected
	s.mu.Unlock()
	if sess == nil {
		n.mu.Lock()
		n.sockets[s.id] = s
		n.mu.Unlock()
	}
	// As in Node, a recovered socket's missed events go out before its CONNECT answer (the client
	// holds events until it is connected, then emits them in order), then what was delivered to
	// it meanwhile.
	var missed map[string]bool
	if sess != nil {
		missed = n.sendMissed(s, sess)
	}
	reply := connectReply{SID: s.id, PID: s.pid}
	s.writePacket(&Packet{Type: PacketConnect, Nsp: n.name, ID: -1, Data: []any{reply}}, false)
	cl.connectedSocket()
	if sess != nil {
		n.flushPending(s, missed)
	}
	for _, fn := range n.onConnection {
		fn(s)
	}
}

// recovering makes s the socket of the recovered session se: its id, data and rooms, and a
// place in the namespace, so that what is broadcast to it from now on is kept for it. It returns
// the socket the session's client still had here, if any. It runs inside the adapter's
// RestoreSession, which may hold its own lock: it must not call back into the adapter's store.
func (n *Namespace) recovering(s *Socket, se *Session) *Socket {
	s.mu.Lock()
	s.id, s.pid, s.data, s.recovered, s.recovering = se.SID, se.PID, se.Data, true, true
	s.mu.Unlock()
	n.mu.Lock()
	old := n.sockets[se.SID]
	n.sockets[se.SID] = s
	n.mu.Unlock()
	n.adapter.AddAll(s, se.Rooms)
	return old
}

// abandonRecovery undoes recovering when the adapter then found no missed events to give.
func (n *Namespace) abandonRecovery(s *Socket) {
	n.adapter.DelAll(s)
	n.removeSocket(s)
	s.mu.Lock()
	s.recovered, s.recovering, s.pending, s.data = false, false, nil, nil
	s.mu.Unlock()
}

// sendMissed sends a recovered socket the events it missed and returns their offsets.
func (n *Namespace) sendMissed(s *Socket, sess *Session) map[string]bool {
	missed := make(map[string]bool, len(sess.Missed))
	for _, data := range sess.Missed {
		p := &Packet{Type: PacketEvent, Nsp: n.name, ID: -1, Data: data}
		if o := packetOffset(p); o != "" {
			missed[o] = true
		}
		s.writePacket(p, false)
	}
	return missed
}

// flushPending sends a recovered socket what was delivered to it while it connected (but for
// what was among the missed), and ends its recovery.
func (n *Namespace) flushPending(s *Socket, missed map[string]bool) {
	for {
		s.mu.Lock()
		pend := s.pending
		s.pending = nil
		if len(pend) == 0 {
			s.recovering = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		for _, d := range pend {
			if d.offset == "" || !missed[d.offset] {
				s.client.write(d.msgs, d.volatile)
			}
		}
	}
}

// restoreTimeout bounds a cluster adapter's session lookup.
const restoreTimeout = 5 * time.Second

// connectReply is the CONNECT answer's payload: {"sid"} and, with recovery on, "pid".
type connectReply struct {
	SID string `json:"sid"`
	PID string `json:"pid,omitempty"`
}

// refuse answers a CONNECT a middleware refused and forgets the socket.
func (n *Namespace) refuse(s *Socket, err error) {
	s.mu.Lock()
	s.state = sockClosed
	s.recovering, s.pending = false, nil
	s.mu.Unlock()
	n.adapter.DelAll(s)
	n.removeSocket(s)
	if s.client.connectRefused(s) {
		return
	}
	var ce *ConnectError
	if errors.As(err, &ce) {
		s.client.writeConnectError(n.name, ce.Message, ce.Data)
	} else {
		s.client.writeConnectError(n.name, err.Error(), nil)
	}
}

// dispatch runs an event through the event middlewares and the handler.
func (n *Namespace) dispatch(s *Socket, ev *Event) {
	for _, mw := range n.eventMWs {
		if !mw(s, ev) {
			return
		}
	}
	if n.onEvent != nil {
		n.onEvent(s, ev)
	}
}

// overflow handles an event its socket's queue refused.
func (n *Namespace) overflow(s *Socket, p *inPacket) {
	if p.typ == PacketEvent && n.onOverflow != nil {
		n.onOverflow(s, &Event{Name: p.event, Args: p.args, socket: s, ackID: p.id})
	}
}

// disconnected runs the disconnect callbacks of s.
func (n *Namespace) disconnected(s *Socket, reason string) {
	for _, fn := range n.onDisconnect {
		fn(s, reason)
	}
}

// To returns a broadcast to the sockets in rooms (of every node).
func (n *Namespace) To(rooms ...string) *BroadcastOperator {
	return &BroadcastOperator{nsp: n, opts: BroadcastOptions{Rooms: rooms}}
}

// Except returns a broadcast to every socket but those in rooms.
func (n *Namespace) Except(rooms ...string) *BroadcastOperator {
	return &BroadcastOperator{nsp: n, opts: BroadcastOptions{Except: rooms}}
}

// All returns a broadcast to every socket of the namespace.
func (n *Namespace) All() *BroadcastOperator { return &BroadcastOperator{nsp: n} }

// Emit broadcasts an event to every socket of the namespace.
func (n *Namespace) Emit(event string, args ...any) error { return n.All().Emit(event, args...) }

// ServerSideEmit sends an event to this namespace on every other node.
func (n *Namespace) ServerSideEmit(ctx context.Context, event string, args ...any) error {
	return n.adapter.ServerSideEmit(ctx, eventData(event, args))
}
