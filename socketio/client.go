package socketio

import (
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/switchboard/switchboard/engineio"
)

// client is one Engine.IO connection and the sockets it carries, one per namespace it joined:
// it decodes the connection's packets and hands each to its namespace's socket. It keeps of the
// handshake request only what Handshake reports.
type client struct {
	srv      *Server
	conn     *engineio.Conn
	parser   parserKind // chosen by the first packet; set before any socket exists
	dec      packetDecoder
	headers  map[string]string
	rawQuery string
	issued   time.Time
	secure   bool

	mu           sync.Mutex
	sockets      []*Socket // by namespace, connecting ones included
	refused      int
	connected    bool // some namespace was joined: the connect timeout no longer applies
	connectTimer *time.Timer
	closed       bool
}

// open is the engine's Config.Open: a new connection.
func (srv *Server) open(c *engineio.Conn, r *http.Request) engineio.Receiver {
	cl := &client{srv: srv, conn: c, rawQuery: r.URL.RawQuery, issued: time.Now(), secure: r.TLS != nil}
	for _, name := range srv.cfg.Headers {
		if v := r.Header.Get(name); v != "" {
			if cl.headers == nil {
				cl.headers = make(map[string]string, len(srv.cfg.Headers))
			}
			cl.headers[name] = v
		}
	}
	switch srv.cfg.Parser {
	case ParserDefault:
		cl.parser, cl.dec = parserJSON, &jsonDecoder{}
	case ParserMsgpack:
		cl.parser, cl.dec = parserMsgpack, msgpackDecoder{}
	}
	cl.connectTimer = time.AfterFunc(srv.cfg.ConnectTimeout, cl.connectTimedOut)
	if srv.cfg.OnConnOpen != nil {
		srv.cfg.OnConnOpen(c)
	}
	return cl
}

// connectTimedOut closes a connection that joined no namespace in time, as Node does.
func (cl *client) connectTimedOut() {
	cl.mu.Lock()
	idle := !cl.connected && len(cl.sockets) == 0
	cl.mu.Unlock()
	if idle {
		cl.conn.Close()
	}
}

// OnMessage implements engineio.Receiver.
func (cl *client) OnMessage(_ *engineio.Conn, data []byte, binary bool) {
	if fn := cl.srv.cfg.OnTraffic; fn != nil {
		fn(true, len(data))
	}
	if cl.dec == nil { // --parser auto: the first packet tells
		if binary {
			cl.parser, cl.dec = parserMsgpack, msgpackDecoder{}
		} else {
			cl.parser, cl.dec = parserJSON, &jsonDecoder{}
		}
	}
	p, err := cl.dec.add(data, binary)
	if err != nil {
		cl.protocolError()
		return
	}
	if p != nil {
		cl.route(p)
	}
}

// protocolError closes a connection whose client broke the protocol, as Node's server does.
func (cl *client) protocolError() {
	cl.srv.cfg.OnProtocolError()
	cl.conn.Close()
}

func (cl *client) find(nsp string) *Socket {
	for _, s := range cl.sockets {
		if s.nsp.name == nsp {
			return s
		}
	}
	return nil
}

func (cl *client) route(p *inPacket) {
	if p.typ == PacketConnect {
		cl.connect(p)
		return
	}
	cl.mu.Lock()
	s := cl.find(p.nsp)
	if s != nil && p.typ == PacketDisconnect {
		// The socket leaves the connection now, so that a CONNECT right behind finds the
		// namespace free; it finishes what it queued, then closes.
		cl.sockets = slices.DeleteFunc(cl.sockets, func(x *Socket) bool { return x == s })
	}
	cl.mu.Unlock()
	if s == nil {
		cl.protocolError() // a packet for a namespace it did not join: Node's "invalid state"
		return
	}
	if p.typ == PacketAck {
		// An ack goes to its waiter now, not behind the socket's queue: what waits for it may be
		// the handler the queue is running (EmitWithAck from a handler), and a full queue must
		// not lose it. Ack callbacks do not block.
		if fn := s.takeAck(p.id); fn != nil {
			fn(p.args)
		}
		return
	}
	if !s.enqueue(task{kind: taskPacket, pkt: p}) {
		s.nsp.overflow(s, p)
	}
}

func (cl *client) connect(p *inPacket) {
	nsp := cl.srv.namespaceFor(p.nsp)
	cl.mu.Lock()
	if cl.closed {
		cl.mu.Unlock()
		return
	}
	if cl.find(p.nsp) != nil || len(cl.sockets) >= cl.srv.cfg.MaxNamespaces {
		cl.mu.Unlock()
		cl.protocolError()
		return
	}
	if nsp == nil {
		cl.mu.Unlock()
		if !cl.connectRefused(nil) {
			cl.writeConnectError(p.nsp, "Invalid namespace", nil)
		}
		return
	}
	auth := p.auth
	if auth == nil {
		auth = map[string]any{}
	}
	s := &Socket{nsp: nsp, client: cl, auth: auth}
	cl.sockets = append(cl.sockets, s)
	cl.mu.Unlock()
	s.enqueue(task{kind: taskConnect, pkt: p})
}

// connectRefused forgets a socket whose CONNECT was refused (nil: none was made, the namespace
// does not exist) and counts the refusal; too many close the connection (true).
func (cl *client) connectRefused(s *Socket) bool {
	cl.mu.Lock()
	cl.sockets = slices.DeleteFunc(cl.sockets, func(x *Socket) bool { return x == s })
	cl.refused++
	over := cl.refused > cl.srv.cfg.MaxRefusedConnects
	cl.mu.Unlock()
	cl.srv.cfg.OnRefusedConnect()
	if over {
		cl.conn.Close()
	}
	return over
}

// connectedSocket notes that a namespace was joined.
func (cl *client) connectedSocket() {
	cl.mu.Lock()
	first := !cl.connected
	cl.connected = true
	cl.mu.Unlock()
	if first {
		cl.connectTimer.Stop()
	}
}

func (cl *client) writeConnectError(nsp, message string, data any) {
	e := map[string]any{"message": message}
	if data != nil {
		e["data"] = data
	}
	msgs, err := encode(cl.parserOrDefault(), &Packet{Type: PacketConnectError, Nsp: nsp, ID: -1, Data: []any{e}})
	if err == nil {
		cl.write(msgs, false)
	}
}

func (cl *client) parserOrDefault() parserKind {
	if cl.parser == parserUnknown {
		return parserJSON
	}
	return cl.parser
}

// write sends encoded messages on the connection.
func (cl *client) write(msgs []*engineio.Message, volatile bool) bool {
	var ok bool
	if volatile {
		ok = cl.conn.SendVolatile(msgs...)
	} else {
		ok = cl.conn.Send(msgs...) == nil
	}
	if fn := cl.srv.cfg.OnTraffic; fn != nil && ok {
		for _, m := range msgs {
			fn(false, m.Len())
		}
	}
	return ok
}

func (cl *client) removeSocket(s *Socket) {
	cl.mu.Lock()
	cl.sockets = slices.DeleteFunc(cl.sockets, func(x *Socket) bool { return x == s })
	cl.mu.Unlock()
}

// disconnectAll disconnects every socket of the connection (each told "io server disconnect"),
// then closes it once those packets are out.
func (cl *client) disconnectAll() {
	cl.mu.Lock()
	sockets := slices.Clone(cl.sockets)
	cl.mu.Unlock()
	for _, s := range sockets {
		s.Disconnect(false)
	}
	cl.conn.Close()
}

// OnClose implements engineio.Receiver: each socket closes behind the work it has queued.
func (cl *client) OnClose(c *engineio.Conn, reason string) {
	cl.connectTimer.Stop()
	if fn := cl.srv.cfg.OnConnClose; fn != nil {
		fn(c, reason)
	}
	cl.mu.Lock()
	cl.closed = true
	sockets := cl.sockets
	cl.sockets = nil
	cl.mu.Unlock()
	if reason == engineio.ReasonForcedClose {
		reason = ReasonForcedServer
	}
	for _, s := range sockets {
		s.enqueue(task{kind: taskClose, reason: reason})
	}
}
