package socketio

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/switchboard/switchboard/engineio"
)

// Handshake is what a socket knows of how it connected: the namespace CONNECT's auth payload
// and, from the Engine.IO handshake request, the few things the server keeps (its address, its
// query, the headers Config.Headers names, its time).
type Handshake struct {
	Auth    map[string]any
	Headers map[string]string // lower-case names; only those the server keeps
	Query   url.Values
	Address string
	Time    time.Time
	Secure  bool
	XDomain bool
	URL     string
}

type sockState uint8

const (
	sockConnecting sockState = iota
	sockConnected
	sockClosed
)

// Socket is one client connected to one namespace. Its events run one at a time, in the order
// the client sent them, on a worker of the server (a handler may block: other sockets go on).
// Its methods are safe for concurrent use.
type Socket struct {
	nsp    *Namespace
	client *client
	id     string
	pid    string
	auth   map[string]any

	// rooms is guarded by the namespace adapter's lock (LocalAdapter).
	rooms []string

	mu        sync.Mutex
	state     sockState
	recovered bool
	data      any
	acks      map[int64]func(*Args)
	reason    string
	left      []string // the rooms it was in when it disconnected
	cancel    context.CancelFunc
	ctx       context.Context

	queue   []task
	running bool

	// recovering: the socket is connecting with a recovered session; what is delivered to it
	// waits in pending until its CONNECT answer and missed events are out.
	recovering bool
	pending    []pendingDelivery
}

type pendingDelivery struct {
	offset   string
	msgs     []*engineio.Message
	volatile bool
}

// deliver hands a broadcast's encoded messages to the socket: written when it is connected, kept
// while it recovers, dropped otherwise (a socket still connecting, or gone). It reports whether
// the socket took them.
func (s *Socket) deliver(p *Packet, msgs []*engineio.Message, volatile bool) bool {
	s.mu.Lock()
	switch {
	case s.recovering:
		s.pending = append(s.pending, pendingDelivery{offset: packetOffset(p), msgs: msgs, volatile: volatile})
		s.mu.Unlock()
		return true
	case s.state != sockConnected:
		s.mu.Unlock()
		return false
	}
	s.mu.Unlock()
	return s.client.write(msgs, volatile)
}

// packetOffset is a broadcast's recovery offset: the string its data ends with, when the
// adapter gave it one.
func packetOffset(p *Packet) string {
	if p.Type != PacketEvent || len(p.Data) < 2 {
		return ""
	}
	o, _ := p.Data[len(p.Data)-1].(string)
	return o
}

type taskKind uint8

const (
	taskConnect      taskKind = iota // run the namespace's middlewares, then connect
	taskPacket                       // an event, an ack or the client's DISCONNECT
	taskClose                        // the connection closed: close behind what was queued
	taskDisconnected                 // run the disconnect callbacks
)

type task struct {
	kind   taskKind
	pkt    *inPacket
	reason string
}

// ID is the socket id (a fresh one per connection, or the recovered session's).
func (s *Socket) ID() string { return s.id }

// Namespace is the socket's namespace.
func (s *Socket) Namespace() *Namespace { return s.nsp }

// Handshake describes how the socket connected.
func (s *Socket) Handshake() Handshake {
	c := s.client
	h := Handshake{
		Auth:    s.auth,
		Headers: c.headers,
		Address: c.conn.RemoteAddr(),
		Time:    c.issued,
		Secure:  c.secure,
		XDomain: c.headers["origin"] != "",
		URL:     "/socket.io/?" + c.rawQuery,
	}
	h.Query, _ = url.ParseQuery(c.rawQuery)
	return h
}

// Header returns a kept handshake header (lower-case name).
func (s *Socket) Header(name string) string { return s.client.headers[name] }

// Transport is the transport the socket's connection uses now: "polling" or "websocket".
func (s *Socket) Transport() string { return s.client.conn.Transport() }

// ConnID is the id of the socket's Engine.IO connection, shared by its sockets of every namespace.
func (s *Socket) ConnID() string { return s.client.conn.ID() }

// Data returns what SetData stored (for a recovered socket, the session's data).
func (s *Socket) Data() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data
}

// SetData stores data with the socket. It travels with its session (recovery) and to other
// nodes (FetchSockets): keep it to plain values or structs with json tags.
func (s *Socket) SetData(data any) {
	s.mu.Lock()
	s.data = data
	s.mu.Unlock()
	for _, fn := range s.nsp.onData {
		fn(s)
	}
}

// Connected reports whether the socket is connected.
func (s *Socket) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == sockConnected
}

// Recovered reports whether connection state recovery restored the socket's session.
func (s *Socket) Recovered() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recovered
}

// Context is done when the socket disconnects.
func (s *Socket) Context() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil {
		s.ctx, s.cancel = context.WithCancel(s.nsp.srv.ctx)
		if s.state == sockClosed {
			s.cancel()
		}
	}
	return s.ctx
}

// Rooms lists the rooms the socket is in, without its own id; during its disconnect callbacks,
// the rooms it was in.
func (s *Socket) Rooms() []string {
	s.mu.Lock()
	closed, left := s.state == sockClosed, s.left
	s.mu.Unlock()
	if closed {
		return slices.Clone(left)
	}
	return s.nsp.adapter.SocketRooms(s)
}

// In reports whether the socket is in room.
func (s *Socket) In(room string) bool {
	return room == s.id || slices.Contains(s.Rooms(), room)
}

// Join puts the socket in rooms (on this node; the adapter shares it with the cluster).
func (s *Socket) Join(rooms ...string) {
	s.mu.Lock()
	closed := s.state == sockClosed
	s.mu.Unlock()
	if !closed {
		s.nsp.adapter.AddAll(s, rooms)
	}
}

// Leave takes the socket out of room.
func (s *Socket) Leave(room string) { s.nsp.adapter.Del(s, room) }

// Emit sends an event to this socket. With connection state recovery on, it goes through the
// adapter like a broadcast to the socket's id, so that it carries an offset and is kept for the
// socket's recovery, as in Node.
func (s *Socket) Emit(event string, args ...any) error {
	return s.emit(event, args, false)
}

// EmitVolatile is Emit for an event that may be lost when the client cannot take it at once.
func (s *Socket) EmitVolatile(event string, args ...any) error {
	return s.emit(event, args, true)
}

func (s *Socket) emit(event string, args []any, volatile bool) error {
	if ReservedEvents[event] {
		return fmt.Errorf("socketio: %q is a reserved event name", event)
	}
	p := &Packet{Type: PacketEvent, Nsp: s.nsp.name, ID: -1, Data: eventData(event, args)}
	if !volatile && s.nsp.recovers {
		return s.nsp.adapter.Broadcast(p, BroadcastOptions{Rooms: []string{s.id}})
	}
	if !s.writePacket(p, volatile) {
		return ErrDisconnected
	}
	s.nsp.emitted(p, 1)
	s.nsp.sent(s, p)
	return nil
}

func eventData(event string, args []any) []any {
	data := make([]any, 0, 1+len(args))
	data = append(data, event)
	return append(data, args...)
}

// ErrDisconnected is returned for a socket that is no longer connected.
var ErrDisconnected = errors.New("socketio: socket disconnected")

// WriteVolatile writes events encoded with Namespace.Encode to this socket in one volatile send:
// all of them or none. It reports false when the socket is not connected or its transport cannot
// take them at once (a websocket with writes waiting, a long-poll not waiting).
func (s *Socket) WriteVolatile(evs ...*Encoded) bool {
	if !s.Connected() || len(evs) == 0 {
		return false
	}
	k := s.client.parser
	var msgs []*engineio.Message
	for _, e := range evs {
		m, err := e.messages(k)
		if err != nil {
			s.nsp.srv.logEncodeError(e.p, err)
			return false
		}
		msgs = append(msgs, m...)
	}
	if !s.client.write(msgs, true) {
		return false
	}
	for _, e := range evs {
		s.nsp.emitted(e.p, 1)
		s.nsp.sent(s, e.p)
	}
	return true
}

// EmitWithAck sends an event and waits for the client's ack, until ctx ends.
func (s *Socket) EmitWithAck(ctx context.Context, event string, args ...any) (*Args, error) {
	if ReservedEvents[event] {
		return nil, fmt.Errorf("socketio: %q is a reserved event name", event)
	}
	id := s.nsp.nextAckID()
	ch := make(chan *Args, 1)
	if !s.registerAck(id, func(a *Args) { ch <- a }) {
		return nil, ErrDisconnected
	}
	p := &Packet{Type: PacketEvent, Nsp: s.nsp.name, ID: id, Data: eventData(event, args)}
	if !s.writePacket(p, false) {
		s.takeAck(id)
		return nil, ErrDisconnected
	}
	s.nsp.sent(s, p)
	select {
	case a := <-ch:
		if a == nil {
			return nil, ErrDisconnected
		}
		return a, nil
	case <-ctx.Done():
		s.takeAck(id)
		return nil, ctx.Err()
	}
}

// registerAck waits for the ack of id; fn gets nil if the socket disconnects first.
func (s *Socket) registerAck(id int64, fn func(*Args)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == sockClosed {
		return false
	}
	if s.acks == nil {
		s.acks = map[int64]func(*Args){}
	}
	s.acks[id] = fn
	return true
}

func (s *Socket) takeAck(id int64) func(*Args) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn := s.acks[id]
	delete(s.acks, id)
	if len(s.acks) == 0 {
		s.acks = nil
	}
	return fn
}

// writePacket encodes p for this socket's parser and sends it; false when it could not. A socket
// that disconnected sends nothing: its connection may still be open (it left one namespace), and
// its client's socket of that namespace, connected again or about to be, would take the packet.
func (s *Socket) writePacket(p *Packet, volatile bool) bool {
	s.mu.Lock()
	closed := s.state == sockClosed
	s.mu.Unlock()
	if closed {
		return false
	}
	msgs, err := encode(s.client.parser, p)
	if err != nil {
		s.nsp.srv.logEncodeError(p, err)
		return false
	}
	return s.client.write(msgs, volatile)
}

// To returns a broadcast to rooms from this socket: every socket in them but this one.
func (s *Socket) To(rooms ...string) *BroadcastOperator {
	return s.nsp.To(rooms...).Except(s.id)
}

// Broadcast returns a broadcast to every socket of the namespace but this one.
func (s *Socket) Broadcast() *BroadcastOperator { return s.nsp.Except(s.id) }

// Disconnect disconnects the socket: the client is told ("io server disconnect", and it does
// not reconnect by itself); close also closes the whole connection, every namespace of it.
func (s *Socket) Disconnect(close bool) {
	if close {
		s.client.disconnectAll()
		return
	}
	if !s.Connected() {
		return
	}
	s.writePacket(&Packet{Type: PacketDisconnect, Nsp: s.nsp.name, ID: -1}, false)
	s.onclose(ReasonServerDisconnect)
}

// Disconnect reasons as the server's disconnect callbacks see them (Node's names).
const (
	ReasonServerDisconnect = "server namespace disconnect"
	ReasonClientDisconnect = "client namespace disconnect"
	ReasonServerShutdown   = "server shutting down"
	ReasonForcedServer     = "forced server close"
)

// recoverable are the reasons whose session connection state recovery keeps.
var recoverable = map[string]bool{
	"transport error": true, "transport close": true, "forced close": true, "ping timeout": true,
	ReasonServerShutdown: true, ReasonForcedServer: true,
}

// onclose ends the socket at once: it leaves its rooms and its namespace (so that no broadcast
// or listing sees it any more), its pending acks fail, its session is kept when the reason
// allows recovery, and its disconnect callbacks are queued behind what it was doing.
func (s *Socket) onclose(reason string) {
	s.mu.Lock()
	prev := s.state
	if prev == sockClosed {
		s.mu.Unlock()
		return
	}
	s.state = sockClosed
	s.reason = reason
	acks := s.acks
	s.acks = nil
	data := s.data
	cancel := s.cancel
	s.mu.Unlock()

	rooms := s.nsp.adapter.SocketRooms(s)
	s.mu.Lock()
	s.left = rooms
	s.mu.Unlock()
	if prev == sockConnected && s.pid != "" && recoverable[reason] {
		s.nsp.adapter.PersistSession(&Session{SID: s.id, PID: s.pid, Rooms: rooms, Data: data, DisconnectedAt: time.Now()})
	}
	s.nsp.adapter.DelAll(s)
	s.nsp.removeSocket(s)
	s.client.removeSocket(s)
	if cancel != nil {
		cancel()
	}
	for _, fn := range acks {
		fn(nil)
	}
	if prev == sockConnected {
		s.enqueue(task{kind: taskDisconnected})
	}
}

// enqueue adds work to the socket's queue and has a worker run it. Packets beyond the queue's
// bound are refused (the caller drops them).
func (s *Socket) enqueue(t task) bool {
	s.mu.Lock()
	if t.kind == taskPacket && len(s.queue) >= s.nsp.srv.cfg.MaxQueue {
		s.mu.Unlock()
		return false
	}
	s.queue = append(s.queue, t)
	if s.running {
		s.mu.Unlock()
		return true
	}
	s.running = true
	s.mu.Unlock()
	s.nsp.srv.workers.run(s)
	return true
}

// drain runs the socket's queue until it is empty.
func (s *Socket) drain() {
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.queue = nil
			s.running = false
			s.mu.Unlock()
			return
		}
		t := s.queue[0]
		s.queue[0] = task{}
		s.queue = s.queue[1:]
		closed := s.state == sockClosed
		s.mu.Unlock()
		if closed && t.kind != taskDisconnected && t.kind != taskConnect {
			continue // what arrived before the socket went is dropped, as in Node
		}
		s.run(t)
	}
}

func (s *Socket) run(t task) {
	defer func() {
		if r := recover(); r != nil {
			s.nsp.srv.logPanic(s, r)
		}
	}()
	switch t.kind {
	case taskConnect:
		s.nsp.connect(s, t.pkt.auth)
	case taskPacket:
		s.onpacket(t.pkt)
	case taskClose:
		s.onclose(t.reason)
	case taskDisconnected:
		s.mu.Lock()
		reason := s.reason
		s.mu.Unlock()
		s.nsp.disconnected(s, reason)
	}
}

func (s *Socket) onpacket(p *inPacket) {
	switch p.typ {
	case PacketEvent:
		s.nsp.dispatch(s, &Event{Name: p.event, Args: p.args, socket: s, ackID: p.id})
	case PacketAck:
		if fn := s.takeAck(p.id); fn != nil {
			fn(p.args)
		}
	case PacketDisconnect:
		s.onclose(ReasonClientDisconnect)
	}
}

// Event is one event a client sent.
type Event struct {
	Name string
	*Args
	socket *Socket
	ackID  int64

	mu    sync.Mutex
	acked bool
}

// Socket is the socket that sent the event.
func (e *Event) Socket() *Socket { return e.socket }

// HasAck reports whether the client asked for an ack.
func (e *Event) HasAck() bool { return e.ackID >= 0 }

// Ack answers the event with args; only the first call sends (later ones and calls on an event
// without ack return false).
func (e *Event) Ack(args ...any) bool {
	if e.ackID < 0 {
		return false
	}
	e.mu.Lock()
	if e.acked {
		e.mu.Unlock()
		return false
	}
	e.acked = true
	e.mu.Unlock()
	if args == nil {
		args = []any{}
	}
	if fn := e.socket.nsp.onAck; fn != nil {
		fn(e.socket, e, args)
	}
	return e.socket.writePacket(&Packet{Type: PacketAck, Nsp: e.socket.nsp.name, ID: e.ackID, Data: args}, false)
}

// Acked reports whether Ack was called.
func (e *Event) Acked() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.acked
}
