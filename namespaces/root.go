package namespaces

import (
	"slices"
	"sort"

	"github.com/rs/zerolog"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

// Root is the "/" namespace: clients subscribe to rooms that backends publish to
// (notifications, dashboards, tickers, IoT feeds). Whatever a backend emits to a room arrives as
// that event with those arguments.
type Root struct {
	routes *Routes[*socket.Socket]
}

var _ Namespace = (*Root)(nil)

// NewRoot returns the "/" namespace.
func NewRoot(log zerolog.Logger) *Root {
	routes := NewRoutes[*socket.Socket](log, nil)
	Route(routes, "subscribe", subscribe)
	Route(routes, "unsubscribe", unsubscribe)
	return &Root{routes: routes}
}

// Name implements Namespace.
func (*Root) Name() string { return "/" }

// RoomsRequest is the payload of subscribe and unsubscribe.
type RoomsRequest struct {
	Rooms []string `json:"rooms"`
}

// Validate implements Validator.
func (r *RoomsRequest) Validate() error { return checkRooms("rooms", r.Rooms) }

// RoomsReply is the ack data of subscribe and unsubscribe.
type RoomsReply struct {
	Rooms []string `json:"rooms"`
}

// Register implements Namespace.
func (n *Root) Register(nsp socket.Namespace) {
	onConnection(nsp, func(s *socket.Socket, _ Identity) { n.routes.Serve(s, s) })
}

// subscribe puts s in every requested room, or in none when one of them is not allowed. The
// identity is read per request: a token refresh may have changed its rooms claim.
func subscribe(s *socket.Socket, req RoomsRequest) (RoomsReply, error) {
	id := IdentityOf(s)
	for _, r := range req.Rooms {
		if !id.MayJoin(r) {
			return RoomsReply{}, Errorf(CodeForbidden, "not allowed to subscribe to %q", r)
		}
	}
	if missing := notIn(s, req.Rooms); len(missing) > 0 {
		s.Join(missing...)
	}
	return RoomsReply{Rooms: SocketRooms(s)}, nil
}

// notIn lists the rooms of names s is not in. Joining a room a socket is in changes nothing, but
// the library's Join allocates two sets per call even then (a client that subscribes again, on
// every reconnection or page view, pays for it).
func notIn(s *socket.Socket, names []string) []socket.Room {
	in := s.Rooms()
	var out []socket.Room
	for _, n := range names {
		if r := socket.Room(n); !in.Has(r) && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// unsubscribe takes s out of the requested rooms (those it is not in are no-ops); its own user
// room cannot be left, and asking to is forbidden for the whole request.
func unsubscribe(s *socket.Socket, req RoomsRequest) (RoomsReply, error) {
	own := UserRoom(IdentityOf(s).User.ID)
	for _, r := range req.Rooms {
		if r == own {
			return RoomsReply{}, Errorf(CodeForbidden, "the user room %q cannot be left", r)
		}
	}
	for _, r := range req.Rooms {
		s.Leave(socket.Room(r))
	}
	return RoomsReply{Rooms: SocketRooms(s)}, nil
}

// SocketRooms lists the rooms s is in, sorted, without its own id room.
func SocketRooms(s *socket.Socket) []string {
	rooms := s.Rooms().Keys()
	out := make([]string, 0, len(rooms))
	for _, r := range rooms {
		if string(r) != string(s.Id()) {
			out = append(out, string(r))
		}
	}
	sort.Strings(out)
	return out
}
