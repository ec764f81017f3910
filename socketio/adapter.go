package socketio

import (
	"context"
	"errors"
	"slices"
	"time"
)

// BroadcastOptions selects the sockets a broadcast or a cluster-wide operation reaches.
type BroadcastOptions struct {
	// Rooms are the rooms whose sockets are reached; empty means every socket of the namespace.
	// A socket id counts as the room of that one socket.
	Rooms []string
	// Except are rooms whose sockets are left out.
	Except []string
	// Volatile broadcasts may be dropped for a client that cannot take them at once.
	Volatile bool
	// Local keeps the operation on this node.
	Local bool
}

// Reaches reports whether a socket in rooms (its own id among them) is among the recipients of a
// broadcast with these options: in one of Rooms, or Rooms is empty, and in none of Except (Node's
// shouldIncludePacket). Connection state recovery asks it of each stored event, to give a
// returning socket what it would have got, and the cluster adapters that keep their own store
// ask it too, so that every store picks the same events.
func (o BroadcastOptions) Reaches(rooms []string) bool {
	in := func(r string) bool { return slices.Contains(rooms, r) }
	return (len(o.Rooms) == 0 || slices.ContainsFunc(o.Rooms, in)) && !slices.ContainsFunc(o.Except, in)
}

// Adapter is a namespace's room and broadcast backend, Node's Adapter in Go: it keeps which
// local socket is in which room and delivers broadcasts to them; a cluster adapter also reaches
// the other nodes of a cluster (adapters/). Every implementation embeds a *LocalAdapter, whose
// methods are the single-node behaviour.
type Adapter interface {
	// AddAll, Del and DelAll change the rooms of a local socket.
	AddAll(s *Socket, rooms []string)
	Del(s *Socket, room string)
	DelAll(s *Socket)
	// SocketRooms lists the rooms a local socket is in (its own id not included).
	SocketRooms(s *Socket) []string
	// Rooms lists the rooms with local sockets in them.
	Rooms() []string

	// Broadcast delivers p (an event) to the matching sockets of every node. An error means the
	// cluster did not take it: no other node got it. Local delivery happens either way.
	Broadcast(p *Packet, opts BroadcastOptions) error
	// BroadcastWithAck delivers p with an ack id to the matching sockets of every node and
	// collects their acks until every one answered or ctx ends (then timedOut is true).
	BroadcastWithAck(ctx context.Context, p *Packet, opts BroadcastOptions) (acks []*Args, timedOut bool, err error)

	// FetchSockets lists the matching sockets of every node.
	FetchSockets(ctx context.Context, opts BroadcastOptions) ([]RemoteSocket, error)
	// AddSockets and DelSockets make the matching sockets of every node join or leave rooms.
	AddSockets(ctx context.Context, opts BroadcastOptions, rooms []string) error
	DelSockets(ctx context.Context, opts BroadcastOptions, rooms []string) error
	// DisconnectSockets disconnects the matching sockets of every node (close: their whole
	// connection).
	DisconnectSockets(ctx context.Context, opts BroadcastOptions, close bool) error
	// ServerSideEmit sends an event to the namespace of every other node.
	ServerSideEmit(ctx context.Context, args []any) error
	// ServerCount is the number of nodes, this one included.
	ServerCount(ctx context.Context) (int, error)

	// PersistSession keeps a disconnected socket's session for connection state recovery.
	PersistSession(s *Session)
	// RestoreSession takes the session pid back, with the events broadcast to its rooms since
	// offset (nil when there is none, it expired, or offset is no longer known). It calls join
	// with the session (Missed not yet set) after reading it and before looking for the missed
	// events; join puts the recovering socket in the session's rooms, so that every event is
	// either among Missed or delivered to the socket afterwards (the socket buffers those until
	// it is connected, and drops the ones whose offset is among Missed): none falls between the
	// two. An adapter that recovers keeps an event (and gives it its offset) before it delivers
	// it locally.
	RestoreSession(ctx context.Context, pid, offset string, join func(*Session)) (*Session, error)

	// Close releases what the adapter holds.
	Close() error
}

// Recoverer is implemented by adapters that keep sessions for connection state recovery; a
// socket's own emits then go through the adapter, so that they are kept too.
type Recoverer interface {
	Recovers() bool
}

// AdapterFactory builds the adapter of a namespace.
type AdapterFactory func(nsp *Namespace) (Adapter, error)

// RemoteSocket is a socket as FetchSockets sees it, on this node or another.
type RemoteSocket struct {
	ID        string
	Handshake Handshake
	Rooms     []string
	Data      any
	// Local is the socket itself when it is on this node.
	Local *Socket
}

// Session is what connection state recovery keeps of a disconnected socket, and gives back with
// the packets it missed.
type Session struct {
	SID            string
	PID            string
	Rooms          []string
	Data           any
	DisconnectedAt time.Time
	// Missed holds the data of the events broadcast to the socket's rooms since the offset the
	// client reported, oldest first (Packet.Data: the event name, its arguments, the offset).
	Missed [][]any
}

// ErrUnavailable is what a cluster adapter answers while the cluster cannot take an operation
// (Redis is down): nothing was done beyond this node.
var ErrUnavailable = errors.New("socketio: the cluster is unavailable")
