package server

import (
	"github.com/switchboard/switchboard/namespaces"
	"sync"
	"time"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// The library (v3.0.6) answers a namespace CONNECT from the socket's task goroutine and only then
// registers the socket with its client (servers/socket namespace.go _doConnect: _onconnect
// writes the CONNECT packet, then fn stores client.nsps). A client that emits as soon as it is
// connected — socket.io-client sends its buffered events at once — can have its first event
// decoded on the reader goroutine in between; the client then finds no socket for the namespace
// and closes the whole connection ("invalid state", client.go ondecoded). Node runs both steps
// in one tick and never sees it.
//
// The gate closes that window without forking: our decoder hands every CONNECT a connectGate
// through its auth object (the same map becomes the socket's handshake auth), and holds the
// connection's later packets for that namespace until the namespace's "connect" event — which
// the library emits right after registering the socket — opens the gate. The hold is on the
// connection's own reader, so no other client waits; a gate that never opens (a refused
// connection) lets packets through after connectGateTimeout, as before.
//
// The namespace's first middleware takes the gate out of the handshake into the node's gates
// (by socket), before any other middleware runs and before the socket is in any room: from then
// on other goroutines may read the handshake (a Redis adapter serializing the socket for another
// node's fetchSockets), so it must not change under them.

// connectGateKey is the auth key that carries the gate from the decoder to the namespace. It is
// removed before any middleware or handler sees the handshake.
const connectGateKey = "\x00switchboard.connect-gate"

// connectGateTimeout bounds how long a packet waits for its namespace's connection to finish.
const connectGateTimeout = 5 * time.Second

type connectGate struct {
	once sync.Once
	done chan struct{}
	// d and nsp find the decoder's reference to the gate, dropped once the gate is open so that
	// an idle connection holds no gate.
	d   *gatedDecoder
	nsp string
	// emptyAuth: the decoder made the auth map for a CONNECT without one; once the gate key is
	// out of it, the socket's handshake gets a fresh empty map instead (the one that held the key
	// keeps its grown storage for the life of the socket).
	emptyAuth bool

	mu      sync.Mutex
	release func() // drops the gate from the node's gates; nil until a middleware took it
}

// open lets the namespace's held packets go on; it is called once the socket is registered, when
// the connection closes, or when a held packet gave up waiting.
func (g *connectGate) open() {
	g.once.Do(func() {
		close(g.done)
		g.d.forget(g.nsp, g)
		g.mu.Lock()
		release := g.release
		g.release = nil
		g.mu.Unlock()
		if release != nil {
			release()
		}
	})
}

// connectGates holds the gates of sockets between their first middleware and their "connect".
type connectGates struct {
	m sync.Map // *socket.Socket → *connectGate
}

// of returns the library's namespace name with the gate's first middleware and first "connect"
// listener. Every namespace of the node is created through it.
func (s *Server) of(name string) socket.Namespace {
	nsp := s.io.Of(name, nil)
	nsp.Use(s.gates.take)
	_ = nsp.On("connect", s.gates.open)
	return nsp
}

// take is every namespace's first middleware: it moves the socket's gate out of its handshake.
func (gs *connectGates) take(s *socket.Socket, next func(*socket.ExtendedError)) {
	hs := s.Handshake()
	if g, ok := hs.Auth[connectGateKey].(*connectGate); ok {
		delete(hs.Auth, connectGateKey)
		if g.emptyAuth && len(hs.Auth) == 0 {
			hs.Auth = map[string]any{}
		}
		g.d.bind(g.nsp, s)
		gs.m.Store(s, g)
		g.mu.Lock()
		g.release = func() { gs.m.CompareAndDelete(s, g) }
		g.mu.Unlock()
		if isClosed(g.done) { // opened meanwhile (the connection closed): nothing to hold
			gs.m.CompareAndDelete(s, g)
		}
	}
	next(nil)
}

// open is registered first on every namespace's "connect" event: the socket is now known to its
// client, so the connection's held packets may go on.
func (gs *connectGates) open(args ...any) {
	s, ok := namespaces.SocketArg(args)
	if !ok {
		return
	}
	if g, ok := gs.m.LoadAndDelete(s); ok {
		g.(*connectGate).open()
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// gatedParser is the library's Socket.IO parser with gated decoders.
type gatedParser struct {
	parser.Parser
}

func newGatedParser() parser.Parser { return gatedParser{Parser: parser.NewParser()} }

// NewDecoder implements parser.Parser.
func (p gatedParser) NewDecoder() parser.Decoder {
	d := &gatedDecoder{EventEmitter: types.NewEventEmitter(), inner: p.Parser.NewDecoder()}
	_ = d.inner.On("decoded", d.ondecoded)
	return d
}

// gatedDecoder decodes one connection's packets with the library decoder and holds a
// namespace's packets that follow its CONNECT until the namespace has registered the socket.
type gatedDecoder struct {
	types.EventEmitter
	inner parser.Decoder

	mu      sync.Mutex
	pending map[string]*connectGate // by namespace: CONNECTs whose socket is not registered yet; nil when none

	// socks holds, by namespace, the socket the connection's last CONNECT made (set by the
	// namespace's first middleware, connectGates.take): Add gives that socket's events a
	// directAck instead of the library's ack. A slice: a connection has one or two namespaces
	// (an idle connection keeps it, and a map would cost it ~250 bytes).
	socks []nspSocket
	// leaving holds, by namespace, what closes when the socket a DISCONNECT closes has gone (see
	// leave); nil when none.
	leaving map[string]chan struct{}

	// binary is set while the library's decoder reassembles a packet with binary attachments:
	// what comes then is the library's to take (or refuse). Add runs on the connection's reader
	// goroutine only, and so does the inner decoder's "decoded" that clears it.
	binary bool
}

// Add implements parser.Decoder: plain events and acks are decoded by decodeEvent, everything
// else by the library's decoder.
func (d *gatedDecoder) Add(data any) error {
	if !d.binary {
		if p, ok := decodeEvent(data); ok {
			d.ondecoded(p)
			return nil
		}
		if isBinaryHeader(data) {
			d.binary = true
		}
	}
	return d.inner.Add(data)
}

// ackDirectly gives an event that asks for an ack our directAck as its last argument, where the
// library would have appended its own (Socket.onevent appends Socket.ack(id) to an event with an
// id; without the id it appends nothing, and the handlers find ours in its place). The event must
// be for the namespace's current socket on this connection, which the library dispatches the
// connection's events of that namespace to: the one made by the namespace's last CONNECT. A
// CONNECT or DISCONNECT unbinds the namespace, its first middleware binds the new socket, and an
// event that follows a CONNECT is held (above) until that socket is connected; an event with no
// bound socket keeps the library's ack.
func (d *gatedDecoder) ackDirectly(p *parser.Packet) {
	if p.Type != parser.EVENT || p.Id == nil {
		return
	}
	d.mu.Lock()
	sock := d.socket(p.Nsp)
	d.mu.Unlock()
	if sock == nil {
		return
	}
	p.Data = append(p.Data.([]any), directAck(sock, p.Nsp, *p.Id))
	p.Id = nil
}

// nspSocket is the socket of one namespace on a connection.
type nspSocket struct {
	nsp  string
	sock *socket.Socket
}

// socket returns the socket bound to nsp, nil if none. d.mu is held.
func (d *gatedDecoder) socket(nsp string) *socket.Socket {
	for _, b := range d.socks {
		if b.nsp == nsp {
			return b.sock
		}
	}
	return nil
}

// unbindLocked forgets the socket of nsp and returns it. d.mu is held.
func (d *gatedDecoder) unbindLocked(nsp string) *socket.Socket {
	for i, b := range d.socks {
		if b.nsp == nsp {
			d.socks = append(d.socks[:i], d.socks[i+1:]...)
			return b.sock
		}
	}
	return nil
}

// unbind forgets the socket of nsp.
func (d *gatedDecoder) unbind(nsp string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.unbindLocked(nsp)
}

// The library closes a client's namespace socket on its DISCONNECT packet from the socket's task
// queue, later, but takes a CONNECT for a namespace the client still has a socket in as a protocol
// violation and closes the whole connection ("invalid state", client.go ondecoded). A client that
// leaves a namespace and joins it again at once (socket.disconnect(); socket.connect() in
// socket.io-client) sends both back to back, and Node, which closes the socket at once, serves it.
// So a DISCONNECT notes the namespace's socket as leaving (leave), and a CONNECT that follows
// waits, on this connection's reader, until that socket has gone (waitLeft, bounded by
// connectGateTimeout).

// leave notes that the namespace's socket is leaving; it unbinds it.
func (d *gatedDecoder) leave(nsp string) {
	d.mu.Lock()
	sock := d.unbindLocked(nsp)
	d.mu.Unlock()
	if sock == nil || !sock.Connected() {
		return
	}
	gone := make(chan struct{})
	var once sync.Once
	done := func(...any) { once.Do(func() { close(gone) }) }
	_ = sock.Once("disconnect", done)
	if !sock.Connected() { // gone before the listener was in place
		done()
	}
	d.mu.Lock()
	if d.leaving == nil {
		d.leaving = map[string]chan struct{}{}
	}
	d.leaving[nsp] = gone
	d.mu.Unlock()
}

// waitLeft waits until the socket a DISCONNECT of nsp is closing has gone.
func (d *gatedDecoder) waitLeft(nsp string) {
	d.mu.Lock()
	gone := d.leaving[nsp]
	delete(d.leaving, nsp)
	d.mu.Unlock()
	if gone == nil {
		return
	}
	select {
	case <-gone:
	case <-time.After(connectGateTimeout):
	}
}

// bind records sock as the socket of nsp on this connection (see socks).
func (d *gatedDecoder) bind(nsp string, sock *socket.Socket) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.unbindLocked(nsp)
	d.socks = append(d.socks, nspSocket{nsp, sock})
}

// isBinaryHeader tells the text packet that starts a packet with attachments (BINARY_EVENT or
// BINARY_ACK).
func isBinaryHeader(data any) bool {
	var first byte
	switch v := data.(type) {
	case *types.StringBuffer:
		if b := v.Bytes(); len(b) > 0 {
			first = b[0]
		}
	case string:
		if len(v) > 0 {
			first = v[0]
		}
	}
	return first == '0'+byte(parser.BINARY_EVENT) || first == '0'+byte(parser.BINARY_ACK)
}

// Destroy implements parser.Decoder.
func (d *gatedDecoder) Destroy() {
	d.inner.Destroy()
	d.mu.Lock()
	pending := d.pending
	d.pending = nil
	d.mu.Unlock()
	for _, g := range pending {
		g.open()
	}
}

// forget drops the gate of nsp if it is still g, and the map with the last one.
func (d *gatedDecoder) forget(nsp string, g *connectGate) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pending[nsp] == g {
		delete(d.pending, nsp)
	}
	if len(d.pending) == 0 {
		d.pending = nil
	}
}

func (d *gatedDecoder) ondecoded(args ...any) {
	packet, ok := args[0].(*parser.Packet)
	if !ok {
		d.Emit("decoded", args...)
		return
	}
	if packet.Type == parser.BINARY_EVENT || packet.Type == parser.BINARY_ACK {
		d.binary = false
	}
	if packet.Type == parser.DISCONNECT {
		d.leave(packet.Nsp)
	}
	if packet.Type == parser.CONNECT {
		d.waitLeft(packet.Nsp)
		d.unbind(packet.Nsp)
		auth, _ := packet.Data.(map[string]any)
		made := auth == nil && packet.Data == nil
		if made {
			auth = map[string]any{}
			packet.Data = auth
		}
		if auth != nil {
			g := &connectGate{done: make(chan struct{}), d: d, nsp: packet.Nsp, emptyAuth: made}
			auth[connectGateKey] = g
			d.mu.Lock()
			if d.pending == nil {
				d.pending = map[string]*connectGate{}
			}
			d.pending[packet.Nsp] = g
			d.mu.Unlock()
		}
	} else {
		d.mu.Lock()
		g := d.pending[packet.Nsp]
		d.mu.Unlock()
		if g != nil {
			select {
			case <-g.done:
			case <-time.After(connectGateTimeout):
				g.open() // given up: the socket may still connect, but nothing waits for it
			}
		}
		d.ackDirectly(packet) // after the gate: the namespace's socket is known by now
	}
	d.Emit("decoded", packet)
}
