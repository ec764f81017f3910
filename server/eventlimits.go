package server

import (
	"sync/atomic"

	"github.com/rs/zerolog"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"golang.org/x/time/rate"

	"github.com/switchboard/switchboard/namespaces"
)

// Events that put a socket in rooms; the room limit applies to them.
const (
	eventSubscribe = "subscribe"
	eventChatJoin  = "chat:join"
)

// eventGuard applies the per-socket limits to every event a socket sends: the event rate (token
// bucket; over it the event is dropped and its ack gets rate_limited; sustained abuse
// disconnects) and the rooms per socket. It runs as a socket middleware on the connection's
// reader goroutine and never blocks, so a limited client slows nobody else.
type eventGuard struct {
	limits  Limits
	metrics *Metrics
	log     zerolog.Logger
}

// guard installs the limits on a socket that just connected.
func (g *eventGuard) guard(s *socket.Socket) {
	var events, abuse *rate.Limiter
	if g.limits.EventRate > 0 {
		events = rate.NewLimiter(rate.Limit(g.limits.EventRate), g.limits.EventBurst)
		if g.limits.EventAbuse > 0 {
			abuse = rate.NewLimiter(rate.Limit(float64(g.limits.EventAbuse)/abuseWindow.Seconds()), g.limits.EventAbuse)
		}
	}
	var kicked atomic.Bool
	// reserved counts the rooms asked for by join events that passed this middleware and whose
	// handler has not run yet: handlers run later, on the socket's task queue, so the rooms the
	// socket is in do not yet show them.
	var reserved atomic.Int64

	s.Use(func(event []any, next func(error)) {
		if events != nil && !events.Allow() {
			g.metrics.Limited("event_rate")
			reply(event, namespaces.CodeRateLimited, "too many events: the limit is %s per second", formatLimit(g.limits.EventRate))
			if abuse != nil && !abuse.Allow() && kicked.CompareAndSwap(false, true) {
				g.metrics.Limited("event_abuse")
				g.log.Warn().Str("sid", string(s.Id())).Msg("sustained event flood: disconnecting")
				go s.Disconnect(true)
			}
			return
		}
		n := g.newRooms(s, event)
		if n == 0 {
			next(nil)
			return
		}
		limit := int64(g.limits.MaxRoomsPerSocket)
		if int64(roomCount(s))+reserved.Load()+int64(n) > limit {
			g.metrics.Limited("rooms")
			reply(event, namespaces.CodeForbidden, "a socket may be in at most %d rooms", limit)
			return
		}
		reserved.Add(int64(n))
		next(nil)
		// The handler was queued by next; this task runs after it.
		s.Enqueue(func() { reserved.Add(-int64(n)) })
	})
}

// newRooms is how many rooms the event asks to join that s is not in yet: 0 for other events,
// malformed payloads (the handler answers those) and when there is no room limit.
func (g *eventGuard) newRooms(s *socket.Socket, event []any) int {
	if g.limits.MaxRoomsPerSocket == 0 || len(event) < 2 {
		return 0
	}
	name, _ := event[0].(string)
	payload, ok := event[1].(map[string]any)
	if !ok {
		return 0
	}
	var asked []string
	switch name {
	case eventSubscribe:
		list, _ := payload["rooms"].([]any)
		if len(list) > namespaces.MaxRoomsPerRequest {
			return 0
		}
		for _, r := range list {
			if r, ok := r.(string); ok {
				asked = append(asked, r)
			}
		}
	case eventChatJoin:
		if r, ok := payload["room"].(string); ok {
			asked = append(asked, r)
		}
	default:
		return 0
	}
	in := s.Rooms()
	seen := make(map[string]bool, len(asked))
	n := 0
	for _, r := range asked {
		if !seen[r] && !in.Has(socket.Room(r)) {
			n++
		}
		seen[r] = true
	}
	return n
}

// roomCount is how many rooms s is in, its own id room and its user room not counted.
func roomCount(s *socket.Socket) int {
	own := socket.Room(namespaces.UserRoom(namespaces.IdentityOf(s).User.ID))
	n := 0
	for _, r := range s.Rooms().Keys() {
		if r != socket.Room(s.Id()) && r != own {
			n++
		}
	}
	return n
}

// reply answers the event's ack, if it has one, with a coded error.
func reply(event []any, code, format string, args ...any) {
	if ack, _ := trailingAck(event); ack != nil {
		ack([]any{map[string]any{"error": namespaces.Errorf(code, format, args...)}}, nil)
	}
}
