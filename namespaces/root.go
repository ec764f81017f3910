package namespaces

import (
	"slices"
	"sort"

	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/socketio"
)

// Root is the "/" namespace: clients subscribe to rooms that backends publish to
// (notifications, dashboards, tickers, IoT feeds). Whatever a backend emits to a room arrives as
// that event with those arguments.
type Root struct {
	routes   *Routes[*socketio.Socket]
	fallback Fallback
}

var _ Namespace = (*Root)(nil)

// NewRoot returns the "/" namespace; fallback gets the events it does not handle.
func NewRoot(log zerolog.Logger, fallback Fallback) *Root {
	routes := NewRoutes[*socketio.Socket](log)
	Route(routes, "subscribe", subscribe)
	Route(routes, "unsubscribe", unsubscribe)
	return &Root{routes: routes, fallback: fallback}
}

// Name implements Namespace.
func (*Root) Name() string { return "/" }

// Handles reports whether event is one of the namespace's own.
func (n *Root) Handles(event string) bool { return n.routes.Has(event) }

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
func (n *Root) Register(nsp *socketio.Namespace) {
	nsp.Use(joinUserRoom)
	nsp.OnEvent(func(s *socketio.Socket, ev *socketio.Event) {
		if !n.routes.Handle(s, ev) && n.fallback != nil {
			n.fallback(s, ev)
		}
	})
}

// subscribe puts s in every requested room, or in none when one of them is not allowed. The
// identity is read per request: a token refresh may have changed its rooms claim.
func subscribe(s *socketio.Socket, req RoomsRequest) (RoomsReply, error) {
	id := IdentityOf(s)
	for _, r := range req.Rooms {
		if !id.MayJoin(r) {
			return RoomsReply{}, Errorf(CodeForbidden, "not allowed to subscribe to %q", r)
		}
	}
	s.Join(req.Rooms...)
	return RoomsReply{Rooms: SocketRooms(s)}, nil
}

// unsubscribe takes s out of the requested rooms (those it is not in are no-ops); its own user
// room cannot be left, and asking to is forbidden for the whole request.
func unsubscribe(s *socketio.Socket, req RoomsRequest) (RoomsReply, error) {
	own := UserRoom(IdentityOf(s).User.ID)
	if slices.Contains(req.Rooms, own) {
		return RoomsReply{}, Errorf(CodeForbidden, "the user room %q cannot be left", own)
	}
	for _, r := range req.Rooms {
		s.Leave(r)
	}
	return RoomsReply{Rooms: SocketRooms(s)}, nil
}

// SocketRooms lists the rooms s is in, sorted, without its own id room.
func SocketRooms(s *socketio.Socket) []string {
	rooms := s.Rooms()
	sort.Strings(rooms)
	return rooms
}
