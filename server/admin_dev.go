package server

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/socketio"
)

// Development mode (--admin-mode development) streams what happens on the product namespaces to
// the admin UI, as Node's instrument() does in development: socket_connected, socket_updated,
// socket_disconnected, room_joined, room_left, event_received and event_sent, each a broadcast
// on /admin through the adapter (so an admin UI on any node sees every node's), and all_sockets,
// the whole cluster's sockets, for each admin socket that connects. /admin itself is never
// shown.
//
// The observers run on the product's goroutines (a socket's queue, a broadcast's sender): they
// only queue the event (adminStream), and one goroutine broadcasts them in order. Past
// adminStreamQueue waiting, events are dropped rather than slowing the product down.

// adminSocket is a socket as all_sockets and socket_connected describe it (Node's serialize()).
type adminSocket struct {
	ID string `json:"id"`
	// ClientID is the first 12 characters of the Engine.IO session id: the UI groups a
	// connection's sockets (one per namespace) into one client by it.
	ClientID  string         `json:"clientId"`
	Transport string         `json:"transport"`
	Nsp       string         `json:"nsp"`
	Data      any            `json:"data"`
	Handshake adminHandshake `json:"handshake"`
	// Rooms lists the socket's own id first, as Node's socket.rooms does.
	Rooms []string `json:"rooms"`
}

// adminHandshake is Node's socket.handshake as the UI shows it, without auth (which holds the
// client's token): the headers the server keeps, the authorization header's value hidden.
type adminHandshake struct {
	Address string            `json:"address"`
	Headers map[string]string `json:"headers"`
	Query   map[string]any    `json:"query"`
	// Issued is the handshake's time in Unix ms; Time the same as JavaScript's Date#toString.
	Issued  int64  `json:"issued"`
	Secure  bool   `json:"secure"`
	Time    string `json:"time"`
	URL     string `json:"url"`
	XDomain bool   `json:"xdomain"`
}

// redactedHeader replaces the value of a header that carries a credential.
const redactedHeader = "[redacted]"

// jsDateString is Date.prototype.toString in UTC, the form of Node's handshake.time.
const jsDateString = "Mon Jan 02 2006 15:04:05 GMT+0000 (Coordinated Universal Time)"

func serializeSocket(sock *socketio.Socket) adminSocket {
	h := sock.Handshake()
	headers := make(map[string]string, len(h.Headers))
	for k, v := range h.Headers {
		if k == "authorization" || k == "cookie" {
			v = redactedHeader
		}
		headers[k] = v
	}
	query := make(map[string]any, len(h.Query))
	for k, vs := range h.Query {
		if len(vs) == 1 {
			query[k] = vs[0]
		} else {
			query[k] = vs
		}
	}
	data := sock.Data()
	if data == nil {
		data = map[string]any{} // Node's default socket.data
	}
	clientID := sock.ConnID()
	if len(clientID) > 12 {
		clientID = clientID[:12]
	}
	return adminSocket{
		ID:        sock.ID(),
		ClientID:  clientID,
		Transport: sock.Transport(),
		Nsp:       sock.Namespace().Name(),
		Data:      data,
		Handshake: adminHandshake{
			Address: h.Address,
			Headers: headers,
			Query:   query,
			Issued:  h.Time.UnixMilli(),
			Secure:  h.Secure,
			Time:    h.Time.UTC().Format(jsDateString),
			URL:     h.URL,
			XDomain: h.XDomain,
		},
		Rooms: append([]string{sock.ID()}, sock.Rooms()...),
	}
}

// adminTimestamp is an event's time as Node's JSON sends a Date: ISO 8601 in UTC with ms.
func adminTimestamp() string { return time.Now().UTC().Format("2006-01-02T15:04:05.000Z") }

// observe streams what happens on the product namespace n.
func (a *admin) observe(n *socketio.Namespace) {
	name := n.Name()
	st := a.stream
	n.OnConnection(func(sock *socketio.Socket) {
		ts := adminTimestamp()
		st.post("room_joined", name, sock.ID(), sock.ID(), ts) // its own room, as Node's adapter reports it
		st.post("socket_connected", serializeSocket(sock), ts)
		if sock.Transport() == "polling" {
			a.upgradeMu.Lock()
			a.upgrading[sock] = struct{}{}
			a.upgradeMu.Unlock()
		}
	})
	n.OnRoom(func(sock *socketio.Socket, room string, joined bool) {
		switch {
		case joined:
			st.post("room_joined", name, room, sock.ID(), adminTimestamp())
		case sock.Connected():
			st.post("room_left", name, room, sock.ID(), adminTimestamp())
		}
		// A disconnecting socket's rooms are reported after its socket_disconnected (below), in
		// Node's order.
	})
	n.OnDisconnect(func(sock *socketio.Socket, reason string) {
		ts := adminTimestamp()
		st.post("socket_disconnected", name, sock.ID(), reason, ts)
		st.post("room_left", name, sock.ID(), sock.ID(), ts)
		for _, room := range sock.Rooms() {
			st.post("room_left", name, room, sock.ID(), ts)
		}
		a.upgradeMu.Lock()
		delete(a.upgrading, sock)
		a.upgradeMu.Unlock()
	})
	n.UseEvents(func(sock *socketio.Socket, ev *socketio.Event) bool {
		if vals, err := ev.Values(); err == nil {
			st.post("event_received", name, sock.ID(), append([]any{ev.Name}, vals...), adminTimestamp())
		}
		return true
	})
	n.OnSent(func(sock *socketio.Socket, data []any) {
		st.post("event_sent", name, sock.ID(), data, adminTimestamp())
	})
	n.OnData(func(sock *socketio.Socket) {
		if sock.Connected() {
			data := sock.Data()
			if data == nil {
				data = map[string]any{}
			}
			st.post("socket_updated", map[string]any{"id": sock.ID(), "nsp": name, "data": data})
		}
	})
}

// reportUpgrades sends socket_updated {transport: "websocket"} for the sockets that left
// long-polling since the last look (the engine tells no one of an upgrade; the stats loop looks
// every 2 s).
func (a *admin) reportUpgrades() {
	a.upgradeMu.Lock()
	var upgraded []*socketio.Socket
	for sock := range a.upgrading {
		switch {
		case !sock.Connected():
			delete(a.upgrading, sock)
		case sock.Transport() == "websocket":
			upgraded = append(upgraded, sock)
			delete(a.upgrading, sock)
		}
	}
	a.upgradeMu.Unlock()
	for _, sock := range upgraded {
		a.stream.post("socket_updated", map[string]any{"id": sock.ID(), "nsp": sock.Namespace().Name(), "transport": "websocket"})
	}
}

// adminSocketsRequest is the serverSideEmit by which a node asks the others for their sockets
// (all_sockets): each answers with its own, serialized as here, so that every socket keeps its
// clientId and transport, which a fetchSockets answer does not carry.
const adminSocketsRequest = "switchboard:admin:sockets"

// localSockets serializes this node's sockets of every product namespace.
func (a *admin) localSockets() []adminSocket {
	out := []adminSocket{}
	for _, n := range a.productNamespaces() {
		for _, sock := range n.Sockets() {
			if sock.Connected() {
				out = append(out, serializeSocket(sock))
			}
		}
	}
	return out
}

// sseWithAck is what the cluster adapters offer beside socketio.Adapter: Node's serverSideEmit
// with an ack, answered by every other node.
type sseWithAck interface {
	ServerSideEmitWithAck(ctx context.Context, args []any) ([]any, error)
}

// allSockets is every socket of the cluster: this node's, and those of each other node that
// answered before ctx ended (a node that does not is left out and logged, rather than holding
// all_sockets back).
func (a *admin) allSockets(ctx context.Context) []any {
	var out []any
	for _, s := range a.localSockets() {
		out = append(out, s)
	}
	if c, ok := a.nsp.Adapter().(sseWithAck); ok {
		answers, err := c.ServerSideEmitWithAck(ctx, []any{adminSocketsRequest})
		if err != nil {
			a.log.Warn().Err(err).Int("answers", len(answers)).Msg("all_sockets: sent without the nodes that did not answer")
		}
		for _, ans := range answers {
			if list, ok := ans.([]any); ok {
				out = append(out, list...)
			}
		}
	}
	if out == nil {
		out = []any{}
	}
	return out
}

// serverSideEvent answers another node's request for this node's sockets.
func (a *admin) serverSideEvent(args []any, ack func(...any)) {
	if name, _ := argString(args, 0); name == adminSocketsRequest && ack != nil {
		ack(a.localSockets())
	}
}

// adminStream broadcasts the development-mode events on /admin, in the order they were posted,
// from one goroutine.
type adminStream struct {
	nsp     *socketio.Namespace
	ch      chan adminEvent
	dropped atomic.Int64
}

type adminEvent struct {
	name string
	args []any
}

func newAdminStream(nsp *socketio.Namespace, queue int) *adminStream {
	return &adminStream{nsp: nsp, ch: make(chan adminEvent, queue)}
}

// post queues an event; it never blocks.
func (st *adminStream) post(name string, args ...any) {
	select {
	case st.ch <- adminEvent{name, args}:
	default:
		st.dropped.Add(1)
	}
}

// run broadcasts the queued events until stop is closed.
func (st *adminStream) run(stop <-chan struct{}, log zerolog.Logger) {
	for {
		select {
		case <-stop:
			return
		case ev := <-st.ch:
			if err := st.nsp.Emit(ev.name, ev.args...); err != nil {
				log.Debug().Err(err).Str("event", ev.name).Msg("admin event not broadcast")
			}
			if n := st.dropped.Swap(0); n > 0 {
				log.Warn().Int64("dropped", n).Msg("admin UI events dropped: more than the queue holds")
			}
		}
	}
}
