package namespaces

// presence.go: the membership and presence that "/chat" and "/relay" share (SPEC §4, §9: the
// relay's presence is that of the chat).

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/socketio"
)

// presenceTimeout bounds the presence work that runs when a socket disconnects, when no request
// context is left to bound it.
const presenceTimeout = 5 * time.Second

// roomPresence is the membership of a namespace whose sockets enter rooms by a join request.
// Presence is kept as sockets join and leave (socketio.Presence: in this process, or in Redis
// for a cluster), counting each user's sockets per room: the room hears the joined event when a
// user's count goes from 0 to 1, the left event when it goes back to 0, and the members a join
// answers with are the users counted. Nothing lists sockets to answer either. Presence counts
// the rooms a socket entered by a join (or got back by connection state recovery); rooms joined
// through the HTTP API or a hook are rooms, not membership.
//
// Each member learns of each other exactly once: from the member list of its join, or from a
// joined event after it. On a node that holds because a room's presence work is done under the
// room's lock: a join puts the socket in the room, counts it, reads the members and sends its
// own announcement (whose recipients are chosen then) before the next one starts, so an
// announcement either reaches a joiner or was counted before its member list. Across nodes the
// announcement travels through the adapter and may arrive after a later joiner on another node
// read its list: then that joiner hears of the member twice (README, "Running several nodes").
//
// A node that dies (killed, crashed) leaves its members counted in cluster presence until the
// presence reaps them (a bounded time, adapters' doc); one survivor then reports each departure
// (socketio.Presence.OnExpired) and the room hears the left event from it, once in the cluster.
type roomPresence struct {
	log      zerolog.Logger
	presence socketio.Presence
	nsp      *socketio.Namespace
	// joined and left are the events the room hears (chat:user-joined, relay:user-left, …).
	joined, left string
	// ctx bounds the departures no request is left to bound (disconnects, expiries).
	ctx   context.Context
	hooks presenceHooks

	rooms keyedMutex // presence work, one room at a time

	mu     sync.Mutex
	counts map[*socketio.Socket][]string // the rooms presence counts each socket in
}

// presenceHooks is what a namespace does beyond presence itself; each may be nil. Those of a
// room's arrivals and departures run under the room's lock, so they must not wait on presence.
type presenceHooks struct {
	// counted follows each room counted for a socket.
	counted func()
	// arrived is a user's first socket entering room, before the room hears of it.
	arrived func(room string, u User)
	// departed is a user's last socket leaving room, before the room hears of it.
	departed func(ctx context.Context, room string, u User, ch socketio.PresenceChange)
	// recovered follows a socket that connection state recovery gave room back being counted
	// there again, before the room hears of it.
	recovered func(ctx context.Context, s *socketio.Socket, room string, u User)
}

func newRoomPresence(ctx context.Context, log zerolog.Logger, presence socketio.Presence, joined, left string, hooks presenceHooks) *roomPresence {
	return &roomPresence{
		log:      log,
		presence: presence,
		joined:   joined,
		left:     left,
		ctx:      ctx,
		hooks:    hooks,
		counts:   map[*socketio.Socket][]string{},
	}
}

// register serves nsp, and takes the departures of members whose node died.
func (p *roomPresence) register(nsp *socketio.Namespace) {
	p.nsp = nsp
	p.presence.OnExpired(p.expired)
}

// isChatRoom tells the rooms presence is about from user rooms.
func isChatRoom(room string) bool { return !strings.HasPrefix(room, UserRoomPrefix) }

func userInfo(u User) []byte {
	b, _ := json.Marshal(u)
	return b
}

func (p *roomPresence) counted(s *socketio.Socket, room string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Contains(p.counts[s], room)
}

func (p *roomPresence) count(s *socketio.Socket, room string) {
	p.mu.Lock()
	p.counts[s] = append(p.counts[s], room)
	p.mu.Unlock()
	if p.hooks.counted != nil {
		p.hooks.counted()
	}
}

func (p *roomPresence) uncount(s *socketio.Socket, room string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	rooms := p.counts[s]
	i := slices.Index(rooms, room)
	if i < 0 {
		return false
	}
	rooms = slices.Delete(rooms, i, i+1)
	if len(rooms) == 0 {
		delete(p.counts, s)
	} else {
		p.counts[s] = rooms
	}
	return true
}

// anyCounted reports whether this node counts a socket anywhere.
func (p *roomPresence) anyCounted() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.counts) > 0
}

// countedRooms lists the rooms this node counts sockets in.
func (p *roomPresence) countedRooms() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	set := map[string]struct{}{}
	for _, rooms := range p.counts {
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

// join counts s of u in room, unless it is counted there already, and lists the room's users.
func (p *roomPresence) join(ctx context.Context, s *socketio.Socket, u User, room string) ([]User, error) {
	unlock := p.rooms.Lock(room)
	defer unlock()
	if !p.counted(s, room) {
		if err := p.enter(ctx, s, u, room); err != nil {
			return nil, err
		}
	}
	return presentUsers(ctx, p.presence, room)
}

// enter puts s in room and counts it; the room hears of the user when this is its first socket
// there.
func (p *roomPresence) enter(ctx context.Context, s *socketio.Socket, u User, room string) error {
	s.Join(room)
	ch, err := p.presence.Join(ctx, room, u.ID, userInfo(u))
	if err != nil {
		s.Leave(room)
		return err
	}
	p.count(s, room)
	if ch.Member {
		if p.hooks.arrived != nil {
			p.hooks.arrived(room, u)
		}
		if err := p.nsp.To(room).Except(s.ID()).Emit(p.joined, PresenceEvent{Room: room, User: u}); err != nil {
			p.log.Warn().Err(err).Str("room", room).Msg("announce a member")
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

// leave takes s of u out of room and uncounts it; a user's own room cannot be left.
func (p *roomPresence) leave(s *socketio.Socket, u User, room string) error {
	if room == UserRoom(u.ID) {
		return Errorf(CodeForbidden, "the user room %q cannot be left", room)
	}
	unlock := p.rooms.Lock(room)
	defer unlock()
	s.Leave(room)
	if p.uncount(s, room) {
		return p.depart(s.Context(), s.ID(), u, room)
	}
	return nil
}

// depart uncounts a socket (sid) of u in room; the room, but that socket, hears of the
// departure when it was the user's last. The room is locked.
func (p *roomPresence) depart(ctx context.Context, sid string, u User, room string) error {
	ch, err := p.presence.Leave(ctx, room, u.ID)
	if err != nil {
		return err
	}
	p.gone(ctx, room, u, ch, sid)
	return nil
}

// gone ends a user's presence in room when ch says it was its last socket: the hook first, then
// the room hears of it (but the socket except, if any). The room is locked.
func (p *roomPresence) gone(ctx context.Context, room string, u User, ch socketio.PresenceChange, except string) {
	if !ch.Member {
		return
	}
	if p.hooks.departed != nil {
		p.hooks.departed(ctx, room, u, ch)
	}
	to, what := p.nsp.To(room), "announce an expired member"
	if except != "" {
		to, what = to.Except(except), "announce a departure"
	}
	if err := to.Emit(p.left, PresenceEvent{Room: room, User: u}); err != nil {
		p.log.Warn().Err(err).Str("room", room).Msg(what)
	}
}

// expired handles members whose node died: cluster presence reaps them on one survivor, which
// announces the departures the dead node never could.
func (p *roomPresence) expired(room, _ string, info []byte, ch socketio.PresenceChange) {
	if !ch.Member {
		return
	}
	var u User
	if json.Unmarshal(info, &u) != nil || u.ID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, presenceTimeout)
	defer cancel()
	unlock := p.rooms.Lock(room)
	defer unlock()
	p.gone(ctx, room, u, ch, "")
}

// disconnected uncounts a socket from every room it was counted in.
func (p *roomPresence) disconnected(s *socketio.Socket) {
	p.mu.Lock()
	rooms := p.counts[s]
	delete(p.counts, s)
	p.mu.Unlock()
	if len(rooms) == 0 {
		return
	}
	u := IdentityOf(s).User
	ctx, cancel := context.WithTimeout(p.ctx, presenceTimeout)
	defer cancel()
	for _, room := range rooms {
		unlock := p.rooms.Lock(room)
		err := p.depart(ctx, s.ID(), u, room)
		unlock()
		if err != nil {
			p.log.Warn().Err(err).Str("sid", s.ID()).Str("room", room).Msg("presence on disconnect")
		}
	}
}

// recovered counts a socket that connection state recovery put back in its rooms: its
// disconnection uncounted it, so the rooms where it is the user's first socket again hear of it.
func (p *roomPresence) recovered(s *socketio.Socket) {
	u := IdentityOf(s).User
	for _, room := range s.Rooms() {
		if !isChatRoom(room) || p.counted(s, room) {
			continue
		}
		p.recover(s, u, room)
	}
}

func (p *roomPresence) recover(s *socketio.Socket, u User, room string) {
	unlock := p.rooms.Lock(room)
	defer unlock()
	ch, err := p.presence.Join(s.Context(), room, u.ID, userInfo(u))
	if err != nil {
		p.log.Warn().Err(err).Str("sid", s.ID()).Str("room", room).Msg("presence on recovery")
		return
	}
	p.count(s, room)
	if p.hooks.recovered != nil {
		p.hooks.recovered(s.Context(), s, room, u)
	}
	if ch.Member {
		if p.hooks.arrived != nil {
			p.hooks.arrived(room, u)
		}
		_ = p.nsp.To(room).Except(s.ID()).Emit(p.joined, PresenceEvent{Room: room, User: u})
	}
}
