package server

import (
	"slices"
	"sync"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/switchboard/switchboard/namespaces"
	"github.com/switchboard/switchboard/socketio"
)

// Events that put a socket in rooms; the room limit applies to them.
const (
	eventSubscribe = "subscribe"
	eventChatJoin  = "chat:join"
)

// eventGuard applies the per-socket limits to every event a socket sends: the event rate (token
// bucket; over it the event is dropped and its ack gets rate_limited; sustained abuse
// disconnects) and the rooms per socket. It is an event middleware, so it runs on the socket's
// queue, one event at a time, before the namespace's handler.
type eventGuard struct {
	limits  Limits
	metrics *Metrics
	log     zerolog.Logger

	mu      sync.Mutex
	sockets map[*socketio.Socket]*socketLimits
}

// socketLimits is one socket's state of the limits, made on its first event (an idle socket
// holds none; a bucket starts full, as it would have been at connect).
type socketLimits struct {
	events, abuse *rate.Limiter
	kicked        bool
}

// install puts the guard in front of nsp's handlers. The room limit applies to the joining
// events (subscribe, chat:join, relay:join) only where ns handles them itself: on a namespace of
// --namespaces an event of that name is the app's own, and the rooms its backend answers with
// are checked against the limit where they are applied (hooks.go).
func (g *eventGuard) install(nsp *socketio.Namespace, ns namespaces.Namespace) {
	own, _ := ns.(interface{ Handles(event string) bool })
	nsp.UseEvents(func(s *socketio.Socket, ev *socketio.Event) bool {
		return g.admit(s, ev, own != nil && own.Handles(ev.Name))
	})
	nsp.OnOverflow(func(s *socketio.Socket, ev *socketio.Event) {
		g.metrics.Limited("event_queue")
		ev.Ack(namespaces.ErrorReply(namespaces.Errorf(namespaces.CodeRateLimited, "too many events waiting")))
	})
	nsp.OnDisconnect(func(s *socketio.Socket, _ string) {
		g.mu.Lock()
		delete(g.sockets, s)
		g.mu.Unlock()
	})
}

func (g *eventGuard) state(s *socketio.Socket) *socketLimits {
	g.mu.Lock()
	defer g.mu.Unlock()
	l := g.sockets[s]
	if l == nil {
		if g.sockets == nil {
			g.sockets = map[*socketio.Socket]*socketLimits{}
		}
		l = &socketLimits{events: rate.NewLimiter(rate.Limit(g.limits.EventRate), g.limits.EventBurst)}
		if g.limits.EventAbuse > 0 {
			l.abuse = rate.NewLimiter(rate.Limit(float64(g.limits.EventAbuse)/abuseWindow.Seconds()), g.limits.EventAbuse)
		}
		g.sockets[s] = l
	}
	return l
}

// admit applies the limits to one event of s; false refuses it (its ack has been answered).
// builtin says the namespace's own handler takes the event (the room limit may apply).
func (g *eventGuard) admit(s *socketio.Socket, ev *socketio.Event, builtin bool) bool {
	if g.limits.EventRate > 0 && s.Connected() {
		l := g.state(s)
		if !l.events.Allow() {
			g.metrics.Limited("event_rate")
			ev.Ack(namespaces.ErrorReply(namespaces.Errorf(namespaces.CodeRateLimited, "too many events: the limit is %s per second", formatLimit(g.limits.EventRate))))
			if l.abuse != nil && !l.abuse.Allow() && !l.kicked {
				l.kicked = true
				g.metrics.Limited("event_abuse")
				g.log.Warn().Str("sid", s.ID()).Msg("sustained event flood: disconnecting")
				s.Disconnect(true)
			}
			return false
		}
	}
	most := maxAsked(ev.Name)
	if g.limits.MaxRoomsPerSocket == 0 || most == 0 || !builtin {
		return true
	}
	own := namespaces.UserRoom(namespaces.IdentityOf(s).User.ID)
	in := s.Rooms()
	count := 0
	for _, r := range in {
		if r != own {
			count++
		}
	}
	if count+most <= g.limits.MaxRoomsPerSocket {
		return true // whatever it asks, it stays within the limit: no need to decode it here
	}
	asked := askedRooms(ev)
	if len(asked) == 0 {
		return true
	}
	for i, r := range asked {
		if !slices.Contains(in, r) && !slices.Contains(asked[:i], r) {
			count++
		}
	}
	if count > g.limits.MaxRoomsPerSocket {
		g.metrics.Limited("rooms")
		ev.Ack(namespaces.ErrorReply(namespaces.Errorf(namespaces.CodeForbidden, "a socket may be in at most %d rooms", g.limits.MaxRoomsPerSocket)))
		return false
	}
	return true
}

// maxAsked is the most rooms one event may join: 0 for events that join none.
func maxAsked(event string) int {
	switch event {
	case eventSubscribe:
		return namespaces.MaxRoomsPerRequest
	case eventChatJoin, namespaces.RelayJoinEvent:
		return 1
	}
	return 0
}

// askedRooms decodes the rooms a subscribe, chat:join or relay:join payload asks to join; nil for
// other events and for payloads the handler refuses as bad_request anyway (a list of the wrong
// shape or length, an invalid name), so that such a request gets bad_request rather than the room
// limit's forbidden, whatever the rooms the socket is in. The rules are the handlers' own
// (Validate).
func askedRooms(ev *socketio.Event) []string {
	switch ev.Name {
	case eventSubscribe:
		var req namespaces.RoomsRequest
		if namespaces.Decode(ev.Args, &req) != nil {
			return nil
		}
		return req.Rooms
	case eventChatJoin, namespaces.RelayJoinEvent:
		var req namespaces.RoomRequest
		if namespaces.Decode(ev.Args, &req) != nil {
			return nil
		}
		return []string{req.Room}
	}
	return nil
}
