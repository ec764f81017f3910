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
	rooms := &roomBudget{limit: g.limits.MaxRoomsPerSocket}

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
		if rooms.limit == 0 || len(event) < 2 {
			next(nil)
			return
		}
		name, _ := event[0].(string)
		asked := askedRooms(name, event[1])
		if len(asked) == 0 {
			next(nil)
			return
		}
		added, ok := rooms.reserve(s, asked)
		if !ok {
			g.metrics.Limited("rooms")
			reply(event, namespaces.CodeForbidden, "a socket may be in at most %d rooms", rooms.limit)
			return
		}
		next(nil)
		// next queued the handler on the socket's task queue; this task runs right after it.
		s.Enqueue(func() { rooms.release(added) })
	})
}

// roomBudget enforces the rooms-per-socket limit. Handlers run later than this middleware, on the
// socket's task queue, so the rooms a socket is in do not show the joins already let through:
// those are held in pending until their handler ran. A room counts once whether it is joined,
// pending or both.
type roomBudget struct {
	limit int

	mu      sync.Mutex
	pending map[string]int
}

// reserve admits the rooms asked for when the socket's rooms and pending joins, together with
// them, stay within the limit; it returns the rooms it added to pending.
func (b *roomBudget) reserve(s *socket.Socket, asked []string) ([]string, bool) {
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
	if count+len(added) > b.limit {
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
}

// askedRooms decodes the rooms a subscribe or chat:join payload asks to join; nil for other
// events and payloads of the wrong shape. Names are not validated here: an invalid one counts
// against the limit like any other, and the handler refuses it anyway.
func askedRooms(event string, payload any) []string {
	m, ok := payload.(map[string]any)
	if !ok {
		return nil
	}
	switch event {
	case eventSubscribe:
		list, _ := m["rooms"].([]any)
		asked := make([]string, 0, len(list))
		for _, r := range list {
			if name, ok := r.(string); ok {
				asked = append(asked, name)
			}
		}
		return asked
	case eventChatJoin:
		if name, ok := m["room"].(string); ok {
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
