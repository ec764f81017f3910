package server

import (
	"sync"
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
// disconnects) and the rooms per socket. It runs in the socket's middleware (sockets.go) on the
// connection's reader goroutine and never blocks, so a limited client slows nobody else.
type eventGuard struct {
	limits  Limits
	metrics *Metrics
	log     zerolog.Logger
}

// socketLimits is one socket's state of the limits. Its token buckets are made on the socket's
// first event, so an idle socket holds none; a bucket made then is as full as one made at connect
// (a bucket starts full, and refills to full while unused).
type socketLimits struct {
	events, abuse atomic.Pointer[rate.Limiter]
	kicked        atomic.Bool
	rooms         roomBudget
}

// buckets returns the socket's event and abuse buckets (nil when their limit is off), making
// them on first use. The reader goroutine is the only caller for a websocket, but polling
// requests of one session may overlap, hence the compare-and-swap.
func (g *eventGuard) buckets(l *socketLimits) (events, abuse *rate.Limiter) {
	if g.limits.EventRate <= 0 {
		return nil, nil
	}
	if events = l.events.Load(); events == nil {
		l.events.CompareAndSwap(nil, rate.NewLimiter(rate.Limit(g.limits.EventRate), g.limits.EventBurst))
		events = l.events.Load()
	}
	if g.limits.EventAbuse <= 0 {
		return events, nil
	}
	if abuse = l.abuse.Load(); abuse == nil {
		l.abuse.CompareAndSwap(nil, rate.NewLimiter(rate.Limit(float64(g.limits.EventAbuse)/abuseWindow.Seconds()), g.limits.EventAbuse))
		abuse = l.abuse.Load()
	}
	return events, abuse
}

// admit applies the limits to one event of s. It reports false when the event is refused (its ack,
// if any, has been answered). When it admits an event that joins rooms, it returns the rooms it
// reserved: the caller passes the event on and then queues release of them on the socket's task
// queue, where they run right after the event's handler.
func (g *eventGuard) admit(s *socket.Socket, l *socketLimits, event []any) (reserved []string, ok bool) {
	if events, abuse := g.buckets(l); events != nil && !events.Allow() {
		g.metrics.Limited("event_rate")
		reply(event, namespaces.CodeRateLimited, "too many events: the limit is %s per second", formatLimit(g.limits.EventRate))
		if abuse != nil && !abuse.Allow() && l.kicked.CompareAndSwap(false, true) {
			g.metrics.Limited("event_abuse")
			g.log.Warn().Str("sid", string(s.Id())).Msg("sustained event flood: disconnecting")
			go s.Disconnect(true)
		}
		return nil, false
	}
	if g.limits.MaxRoomsPerSocket == 0 || len(event) < 2 {
		return nil, true
	}
	name, _ := event[0].(string)
	asked := askedRooms(name, event[1])
	if len(asked) == 0 {
		return nil, true
	}
	added, ok := l.rooms.reserve(s, g.limits.MaxRoomsPerSocket, asked)
	if !ok {
		g.metrics.Limited("rooms")
		reply(event, namespaces.CodeForbidden, "a socket may be in at most %d rooms", g.limits.MaxRoomsPerSocket)
		return nil, false
	}
	return added, true
}

// roomBudget enforces the rooms-per-socket limit. Handlers run later than this middleware, on the
// socket's task queue, so the rooms a socket is in do not show the joins already let through:
// those are held in pending until their handler ran. A room counts once whether it is joined,
// pending or both.
type roomBudget struct {
	mu      sync.Mutex
	pending map[string]int
}

// reserve admits the rooms asked for when the socket's rooms and pending joins, together with
// them, stay within limit; it returns the rooms it added to pending.
func (b *roomBudget) reserve(s *socket.Socket, limit int, asked []string) ([]string, bool) {
	own := socket.Room(namespaces.UserRoom(namespaces.IdentityOf(s).User.ID))
	b.mu.Lock()
	defer b.mu.Unlock()
	in := s.Rooms()
	count := len(b.pending)
	for _, r := range in.Keys() {
		if r != socket.Room(s.Id()) && r != own && b.pending[string(r)] == 0 {
			count++
		}
	}
	var added []string
	seen := make(map[string]bool, len(asked))
	for _, r := range asked {
		if !seen[r] && !in.Has(socket.Room(r)) && b.pending[r] == 0 {
			added = append(added, r)
		}
		seen[r] = true
	}
	if count+len(added) > limit {
		return nil, false
	}
	if b.pending == nil {
		b.pending = make(map[string]int)
	}
	for _, r := range added {
		b.pending[r]++
	}
	return added, true
}

// release drops rooms from pending once their handler ran.
func (b *roomBudget) release(rooms []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range rooms {
		if b.pending[r]--; b.pending[r] <= 0 {
			delete(b.pending, r)
		}
	}
	if len(b.pending) == 0 {
		b.pending = nil // a map keeps its storage when emptied; an idle socket holds none
	}
}

// askedRooms decodes the rooms a subscribe or chat:join payload asks to join; nil for other
// events and for payloads the handler refuses as bad_request anyway (a list of the wrong shape or
// length, an invalid name), so that such a request gets bad_request rather than the room limit's
// forbidden, whatever the rooms the socket is in. The rules are the handlers' own (Validate).
func askedRooms(event string, payload any) []string {
	m, ok := payload.(map[string]any)
	if !ok {
		return nil
	}
	switch event {
	case eventSubscribe:
		list, _ := m["rooms"].([]any)
		if len(list) > namespaces.MaxRoomsPerRequest {
			return nil // before converting a list the handler refuses for its length alone
		}
		asked := make([]string, 0, len(list))
		for _, r := range list {
			name, ok := r.(string)
			if !ok {
				return nil
			}
			asked = append(asked, name)
		}
		if (&namespaces.RoomsRequest{Rooms: asked}).Validate() != nil {
			return nil
		}
		return asked
	case eventChatJoin:
		if name, ok := m["room"].(string); ok && (namespaces.RoomRequest{Room: name}).Validate() == nil {
			return []string{name}
		}
	}
	return nil
}

// reply answers the event's ack, if it has one, with a coded error.
func reply(event []any, code, format string, args ...any) {
	if ack, _ := trailingAck(event); ack != nil {
		ack([]any{map[string]any{"error": namespaces.Errorf(code, format, args...)}}, nil)
	}
}
