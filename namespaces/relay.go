package namespaces

// relay.go: the "/relay" namespace of SPEC §9: its requests and presence. Its contract (events,
// limits, payloads, observer) is in relay_events.go; how keyed messages are coalesced and slow
// readers served, in relay_tick.go; what nodes tell each other, in relay_cluster.go; the keyed
// state, in relay_state*.go.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/socketio"
)

// RelayConfig configures the relay. Zero values take the defaults in brackets.
type RelayConfig struct {
	// Tick is how often keyed messages go out (--relay-tick) [50ms].
	Tick time.Duration
	// Observer is told what the relay does [nothing].
	Observer RelayObserver
}

// Relay is the "/relay" namespace: members of a room send each other messages with no backend
// round trip (games, live cursors, devices). Unkeyed messages are broadcast to the room at once,
// in order. Keyed ones are state: the room keeps the latest data per (user, key) in a
// RelayState (memory, or Redis for a cluster), and members get at most one relay:message per
// (user, key) per tick, always the latest (relay_tick.go).
//
// Presence is that of "/chat" (presence.go): socketio.Presence counts each user's sockets in
// each room, as sockets join, leave, disconnect and recover; relay:user-joined goes out for a
// user's first socket in a room, relay:user-left for its last, and then the user's state in the
// room is dropped. Membership (needed to publish) is a relay:join, or a room a recovered socket
// got back.
//
// Close stops the tick; the server calls it at shutdown.
type Relay struct {
	log      zerolog.Logger
	routes   *Routes[*socketio.Event]
	state    RelayState
	members  *roomPresence
	fallback Fallback
	obs      RelayObserver
	tick     time.Duration
	nsp      *socketio.Namespace
	single   bool // the adapter is a plain LocalAdapter: there are no other nodes to tell
	// encode prepares a keyed value for every reader (nsp.Encode; tests count the calls).
	encode func(event string, args ...any) *socketio.Encoded

	ctx    context.Context // ends at Close
	cancel context.CancelFunc

	mu      sync.Mutex
	rooms   map[string]*relayRoom // rooms with keyed work on this node
	running bool                  // the tick loop runs
	done    chan struct{}         // closed when the running loop returns
	wake    chan struct{}
	manual  bool // tests run the tick themselves (step)

	errs logLimiter
}

var _ Namespace = (*Relay)(nil)

// NewRelay returns the "/relay" namespace keeping keyed state in state and presence in presence;
// fallback gets the events it does not handle.
func NewRelay(log zerolog.Logger, cfg RelayConfig, state RelayState, presence socketio.Presence, fallback Fallback) *Relay {
	if cfg.Tick < 0 {
		panic("namespaces: NewRelay expects a tick >= 0")
	}
	if state == nil || presence == nil {
		panic("namespaces: NewRelay expects a state and a presence")
	}
	if cfg.Tick == 0 {
		cfg.Tick = DefaultRelayTick
	}
	if cfg.Observer == nil {
		cfg.Observer = nopRelayObserver{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Relay{
		log:      log.With().Str("nsp", "/relay").Logger(),
		state:    state,
		fallback: fallback,
		obs:      cfg.Observer,
		tick:     cfg.Tick,
		ctx:      ctx,
		cancel:   cancel,
		rooms:    map[string]*relayRoom{},
		wake:     make(chan struct{}, 1),
	}
	r.members = newRoomPresence(ctx, r.log, presence, RelayUserJoinedEvent, RelayUserLeftEvent, presenceHooks{
		counted:   r.keepTouched,
		departed:  r.departed,
		recovered: r.recovered,
	})
	routes := NewRoutes[*socketio.Event](log)
	Route(routes, RelayJoinEvent, r.join)
	Route(routes, RelayLeaveEvent, r.leave)
	Route(routes, RelayPublishEvent, r.publish)
	r.routes = routes
	return r
}

// Name implements Namespace.
func (*Relay) Name() string { return "/relay" }

// Handles reports whether event is one of the namespace's own.
func (r *Relay) Handles(event string) bool { return r.routes.Has(event) }

// Register implements Namespace. The relay takes the namespace's server-side events (other
// nodes' keyed batches).
func (r *Relay) Register(nsp *socketio.Namespace) {
	r.nsp = nsp
	if r.encode == nil {
		r.encode = nsp.Encode
	}
	_, r.single = nsp.Adapter().(*socketio.LocalAdapter)
	r.members.register(nsp)
	nsp.Use(joinUserRoom)
	nsp.OnConnection(func(s *socketio.Socket) {
		if s.Recovered() {
			r.members.recovered(s)
		}
	})
	nsp.OnEvent(func(s *socketio.Socket, ev *socketio.Event) {
		if !r.routes.Handle(ev, ev) && r.fallback != nil {
			r.fallback(s, ev)
		}
	})
	nsp.OnDisconnect(func(s *socketio.Socket, _ string) {
		r.forgetSocket(s)
		r.members.disconnected(s)
	})
	nsp.OnServerSideEmit(r.serverSide)
}

// Close stops the tick and waits for it; what was not sent yet is dropped.
func (r *Relay) Close() {
	r.cancel()
	r.mu.Lock()
	done := r.done
	r.mu.Unlock()
	if done != nil {
		<-done
	}
}

// keepTouched follows each room counted for a socket: with a RelayState that expires, the tick
// loop runs to touch the rooms with members.
func (r *Relay) keepTouched() {
	if r.state.TouchEvery() > 0 {
		r.mu.Lock()
		r.ensureLoopLocked()
		r.mu.Unlock()
	}
}

// join enters the room, then answers with its members and state. The socket's keyed deliveries
// are held back from before the state is read until the answer is written (relay_tick.go: a
// value delivered before the answer could be older than the state in it, or newer and then
// overwritten by it), which is why join acks by itself: the Route helper's own ack then sends
// nothing.
func (r *Relay) join(ev *socketio.Event, req RoomRequest) (RelayJoinReply, error) {
	s := ev.Socket()
	id := IdentityOf(s)
	if !id.MayJoin(req.Room) {
		return RelayJoinReply{}, Errorf(CodeForbidden, "not allowed to join %q", req.Room)
	}
	r.holdDeliveries(s, req.Room)
	defer r.releaseDeliveries(s, req.Room)
	ctx := s.Context()
	members, err := r.members.join(ctx, s, id.User, req.Room)
	if err != nil {
		return RelayJoinReply{}, err
	}
	values, err := r.state.State(ctx, req.Room)
	if err != nil {
		return RelayJoinReply{}, err
	}
	reply := RelayJoinReply{Room: req.Room, Members: members, State: decodeState(values)}
	ev.Ack(DataReply(reply))
	return reply, nil
}

// decodeState turns stored JSON into plain values, which every parser can encode.
func decodeState(values []RelayValue) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, v := range values {
		var data any
		if json.Unmarshal(v.Data, &data) != nil {
			continue
		}
		keys := out[v.User]
		if keys == nil {
			keys = map[string]any{}
			out[v.User] = keys
		}
		keys[v.Key] = data
	}
	return out
}

func (r *Relay) leave(ev *socketio.Event, req RoomRequest) (RelayLeaveReply, error) {
	s := ev.Socket()
	if err := r.members.leave(s, IdentityOf(s).User, req.Room); err != nil {
		return RelayLeaveReply{}, err
	}
	return RelayLeaveReply{Room: req.Room}, nil
}

// departed drops the state of a user whose last socket left room (here, in the store and on the
// other nodes) before relay:user-left goes out, so that whoever hears of the departure and then
// joins sees no trace of it.
func (r *Relay) departed(ctx context.Context, room string, u User, ch socketio.PresenceChange) {
	r.purge(room, u.ID)
	if err := r.state.DropUser(ctx, room, u.ID); err != nil {
		r.log.Warn().Err(err).Str("room", room).Msg("drop a departed user's state")
	}
	if ch.Room {
		if err := r.state.DropRoom(ctx, room); err != nil {
			r.log.Warn().Err(err).Str("room", room).Msg("drop an empty room's state")
		}
	}
	r.tellOthers(ctx, relayGoneEvent, room, u.ID)
}

// recovered hands a socket that connection state recovery put back in room the room's state,
// since the keyed values it missed were volatile, before the room hears it rejoin (the state is
// then in the socket's backlog: the next tick writes it).
func (r *Relay) recovered(ctx context.Context, s *socketio.Socket, room string, u User) {
	if err := r.resync(ctx, s, room, u.ID); err != nil {
		r.log.Warn().Err(err).Str("sid", s.ID()).Str("room", room).Msg("state on recovery")
	}
}

func (r *Relay) publish(ev *socketio.Event, req RelayPublishRequest) (struct{}, error) {
	s := ev.Socket()
	if !r.members.counted(s, req.Room) {
		return struct{}{}, Errorf(CodeForbidden, "not a member of %q", req.Room)
	}
	u := IdentityOf(s).User
	if req.Key == nil {
		var data any
		if err := json.Unmarshal(req.Data, &data); err != nil {
			return struct{}{}, Errorf(CodeBadRequest, "data is malformed")
		}
		msg := RelayMessage{Room: req.Room, User: u, Event: req.Event, Data: data}
		if err := r.nsp.To(req.Room).Except(s.ID()).Emit(RelayMessageEvent, msg); err != nil {
			return struct{}{}, err
		}
		r.obs.RelayPublished(false)
		return struct{}{}, nil
	}
	e := &relayEntry{user: u, sid: s.ID(), key: *req.Key, event: req.Event, data: req.Data}
	if err := r.offer(s.Context(), req.Room, e); err != nil {
		if errors.Is(err, ErrRelayKeys) {
			return struct{}{}, Errorf(CodeBadRequest, "at most %d keys per user in a room", MaxRelayKeys)
		}
		return struct{}{}, err
	}
	r.obs.RelayPublished(true)
	return struct{}{}, nil
}

// logLimiter logs one line per interval for a recurring failure (a tick each 50 ms against a
// Redis that is down), with how many it held back.
type logLimiter struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

const relayLogEvery = 10 * time.Second

func (l *logLimiter) allow(now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.last) < relayLogEvery {
		l.suppressed++
		return false, 0
	}
	l.last, suppressed, l.suppressed = now, l.suppressed, 0
	return true, suppressed
}

func (r *Relay) logTickError(what string, err error) {
	if ok, n := r.errs.allow(time.Now()); ok {
		if n > 0 {
			what = fmt.Sprintf("%s (and %d more failures since the last line)", what, n)
		}
		r.log.Warn().Err(err).Msg(what)
	}
}
