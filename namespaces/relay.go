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
	"slices"
	"sort"
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
// Presence is that of "/chat": socketio.Presence counts each user's sockets in each room, as
// sockets join, leave, disconnect and recover; relay:user-joined goes out for a user's first
// socket in a room, relay:user-left for its last, and then the user's state in the room is
// dropped. Membership (needed to publish) is a relay:join, or a room a recovered socket got back.
//
// Close stops the tick; the server calls it at shutdown.
type Relay struct {
	log      zerolog.Logger
	routes   *Routes[*socketio.Event]
	state    RelayState
	presence socketio.Presence
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
	counts  map[*socketio.Socket][]string // the rooms presence counts each socket in
	rooms   map[string]*relayRoom         // rooms with keyed work on this node
	running bool                          // the tick loop runs
	done    chan struct{}                 // closed when the running loop returns
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
		presence: presence,
		fallback: fallback,
		obs:      cfg.Observer,
		tick:     cfg.Tick,
		ctx:      ctx,
		cancel:   cancel,
		counts:   map[*socketio.Socket][]string{},
		rooms:    map[string]*relayRoom{},
		wake:     make(chan struct{}, 1),
	}
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
	nsp.Use(joinUserRoom)
	nsp.OnConnection(func(s *socketio.Socket) {
		if s.Recovered() {
			r.recovered(s)
		}
	})
	nsp.OnEvent(func(s *socketio.Socket, ev *socketio.Event) {
		if !r.routes.Handle(ev, ev) && r.fallback != nil {
			r.fallback(s, ev)
		}
	})
	nsp.OnDisconnect(func(s *socketio.Socket, _ string) { r.disconnected(s) })
	nsp.OnServerSideEmit(r.serverSide)
	r.presence.OnExpired(r.expired)
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

func (r *Relay) counted(s *socketio.Socket, room string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.counts[s], room)
}

func (r *Relay) count(s *socketio.Socket, room string) {
	r.mu.Lock()
	r.counts[s] = append(r.counts[s], room)
	if r.state.TouchEvery() > 0 {
		r.ensureLoopLocked() // rooms with members are touched
	}
	r.mu.Unlock()
}

func (r *Relay) uncount(s *socketio.Socket, room string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	rooms := r.counts[s]
	i := slices.Index(rooms, room)
	if i < 0 {
		return false
	}
	rooms = slices.Delete(rooms, i, i+1)
	if len(rooms) == 0 {
		delete(r.counts, s)
	} else {
		r.counts[s] = rooms
	}
	return true
}

// memberRooms lists the rooms this node has relay members in.
func (r *Relay) memberRooms() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	set := map[string]struct{}{}
	for _, rooms := range r.counts {
		for _, room := range rooms {
			set[room] = struct{}{}
		}
	}
	out := make([]string, 0, len(set))
	for room := range set {
		out = append(out, room)
	}
	return out
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
	if !r.counted(s, req.Room) {
		if err := r.enter(ctx, s, id.User, req.Room); err != nil {
			return RelayJoinReply{}, err
		}
	}
	members, err := presentUsers(ctx, r.presence, req.Room)
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

// enter puts s in room and counts it; the room hears relay:user-joined when this is the user's
// first socket there.
func (r *Relay) enter(ctx context.Context, s *socketio.Socket, u User, room string) error {
	s.Join(room)
	ch, err := r.presence.Join(ctx, room, u.ID, userInfo(u))
	if err != nil {
		s.Leave(room)
		return err
	}
	r.count(s, room)
	if ch.Member {
		if err := r.nsp.To(room).Except(s.ID()).Emit(RelayUserJoinedEvent, PresenceEvent{Room: room, User: u}); err != nil {
			r.log.Warn().Err(err).Str("room", room).Msg("announce a member")
		}
	}
	return nil
}

// presentUsers lists each user present in room once, sorted by name then id.
func presentUsers(ctx context.Context, p socketio.Presence, room string) ([]User, error) {
	infos, err := p.Members(ctx, room)
	if err != nil {
		return nil, err
	}
	users := make([]User, 0, len(infos))
	for _, info := range infos {
		var u User
		if json.Unmarshal(info, &u) == nil && u.ID != "" {
			users = append(users, u)
		}
	}
	sort.Slice(users, func(i, j int) bool {
		if users[i].Name != users[j].Name {
			return users[i].Name < users[j].Name
		}
		return users[i].ID < users[j].ID
	})
	return users, nil
}

func (r *Relay) leave(ev *socketio.Event, req RoomRequest) (RelayLeaveReply, error) {
	s := ev.Socket()
	id := IdentityOf(s)
	if req.Room == UserRoom(id.User.ID) {
		return RelayLeaveReply{}, Errorf(CodeForbidden, "the user room %q cannot be left", req.Room)
	}
	s.Leave(req.Room)
	if r.uncount(s, req.Room) {
		if err := r.depart(s.Context(), s.ID(), id.User, req.Room); err != nil {
			return RelayLeaveReply{}, err
		}
	}
	return RelayLeaveReply{Room: req.Room}, nil
}

// depart uncounts a socket of u in room; when it was the user's last, the user's state goes and
// the room hears relay:user-left.
func (r *Relay) depart(ctx context.Context, sid string, u User, room string) error {
	ch, err := r.presence.Leave(ctx, room, u.ID)
	if err != nil {
		return err
	}
	r.gone(ctx, room, u, ch, sid)
	return nil
}

// gone ends a user's presence in room when ch says it was the user's last socket: its state is
// dropped (here, in the store and on the other nodes) before relay:user-left goes out, so that
// whoever hears of the departure and then joins sees no trace of it.
func (r *Relay) gone(ctx context.Context, room string, u User, ch socketio.PresenceChange, except string) {
	if !ch.Member {
		return
	}
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
	to := r.nsp.To(room)
	if except != "" {
		to = to.Except(except)
	}
	if err := to.Emit(RelayUserLeftEvent, PresenceEvent{Room: room, User: u}); err != nil {
		r.log.Warn().Err(err).Str("room", room).Msg("announce a departure")
	}
}

// expired handles members whose node died (cluster presence reaps them on one survivor).
func (r *Relay) expired(room, _ string, info []byte, ch socketio.PresenceChange) {
	var u User
	if json.Unmarshal(info, &u) != nil || u.ID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, presenceTimeout)
	defer cancel()
	r.gone(ctx, room, u, ch, "")
}

// disconnected uncounts a socket from every room it was counted in.
func (r *Relay) disconnected(s *socketio.Socket) {
	r.mu.Lock()
	rooms := r.counts[s]
	delete(r.counts, s)
	r.mu.Unlock()
	r.forgetSocket(s)
	if len(rooms) == 0 {
		return
	}
	u := IdentityOf(s).User
	ctx, cancel := context.WithTimeout(r.ctx, presenceTimeout)
	defer cancel()
	for _, room := range rooms {
		if err := r.depart(ctx, s.ID(), u, room); err != nil {
			r.log.Warn().Err(err).Str("sid", s.ID()).Str("room", room).Msg("presence on disconnect")
		}
	}
}

// recovered counts a socket that connection state recovery put back in its rooms (its
// disconnection uncounted it) and hands it the rooms' state, since the keyed values it missed
// were volatile; then the room hears relay:user-joined where it is its user's first socket
// again (after the state is in the socket's backlog: the next tick writes it).
func (r *Relay) recovered(s *socketio.Socket) {
	u := IdentityOf(s).User
	for _, room := range s.Rooms() {
		if !isChatRoom(room) || r.counted(s, room) {
			continue
		}
		ch, err := r.presence.Join(s.Context(), room, u.ID, userInfo(u))
		if err != nil {
			r.log.Warn().Err(err).Str("sid", s.ID()).Str("room", room).Msg("presence on recovery")
			continue
		}
		r.count(s, room)
		if err := r.resync(s.Context(), s, room, u.ID); err != nil {
			r.log.Warn().Err(err).Str("sid", s.ID()).Str("room", room).Msg("state on recovery")
		}
		if ch.Member {
			_ = r.nsp.To(room).Except(s.ID()).Emit(RelayUserJoinedEvent, PresenceEvent{Room: room, User: u})
		}
	}
}

func (r *Relay) publish(ev *socketio.Event, req RelayPublishRequest) (struct{}, error) {
	s := ev.Socket()
	if !r.counted(s, req.Room) {
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
