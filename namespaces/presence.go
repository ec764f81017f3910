package namespaces

import (
	"context"
	"sort"
	"sync"

	"github.com/zishang520/socket.io/servers/socket/v3"
)

// presence answers "who is in this chat room" through the adapter (so the answer is
// cluster-wide once the adapter is) and serializes the decisions that send chat:user-joined and
// chat:user-left.
//
// Lock order: a socket's member.mu, then presence.locks for (room, user), then presence.mu.
type presence struct {
	locks keyedMutex

	mu sync.Mutex
	// departed holds, per disconnecting socket, the rooms whose presence decision has been
	// taken (under the room's lock): from "disconnecting" to "disconnect" the adapter still lists
	// the socket there, but it no longer counts as present. Marking per room under the lock, not
	// per socket up front, is what lets exactly one of several tabs dropping at once be the last.
	departed map[socket.SocketId]*departure
}

// departure is what depart recorded for one socket.
type departure struct {
	userID string // the user whose (room, user) locks guard the marks
	rooms  map[string]struct{}
}

func newPresence() *presence {
	return &presence{departed: map[socket.SocketId]*departure{}}
}

// member is what the chat namespace keeps per connected socket. mu serializes the socket's
// joins and leaves with its disconnection, which the library runs on another goroutine.
type member struct {
	mu   sync.Mutex
	gone bool
}

// lock serializes presence decisions about one user in one room.
func (p *presence) lock(room, userID string) (unlock func()) {
	return p.locks.Lock(room + "\x00" + userID)
}

// depart records that sid, a socket of userID, no longer counts as present in room. The caller
// holds lock(room, userID).
func (p *presence) depart(sid socket.SocketId, userID, room string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.departed[sid]
	if d == nil {
		d = &departure{userID: userID, rooms: map[string]struct{}{}}
		p.departed[sid] = d
	}
	d.rooms[room] = struct{}{}
}

// forget drops what depart recorded, once the socket has left every room. Each room's mark is
// dropped under that room's lock: a decision in progress may hold a member list fetched while
// the socket was still in the room, and must still find the socket departed when it reads the
// marks (without the lock, the last of several tabs dropping at once could count a tab that had
// just left as present, and nobody would announce chat:user-left).
func (p *presence) forget(sid socket.SocketId) {
	p.mu.Lock()
	d := p.departed[sid]
	p.mu.Unlock()
	if d == nil {
		return
	}
	for _, room := range p.departedRooms(d) {
		unlock := p.lock(room, d.userID)
		p.mu.Lock()
		delete(d.rooms, room)
		p.mu.Unlock()
		unlock()
	}
	p.mu.Lock()
	if p.departed[sid] == d && len(d.rooms) == 0 {
		delete(p.departed, sid)
	}
	p.mu.Unlock()
}

func (p *presence) departedRooms(d *departure) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	rooms := make([]string, 0, len(d.rooms))
	for room := range d.rooms {
		rooms = append(rooms, room)
	}
	return rooms
}

func (p *presence) hasDeparted(sid socket.SocketId, room string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.departed[sid]
	if d == nil {
		return false
	}
	_, ok := d.rooms[room]
	return ok
}

// tracked tells how many sockets have departure marks (for tests: none once all are gone).
func (p *presence) tracked() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.departed)
}

// present lists the identities of the sockets in room, but the departed ones and self.
func (p *presence) present(ctx context.Context, nsp socket.Namespace, room string, self socket.SocketId) ([]Identity, error) {
	sockets, err := fetchSockets(ctx, nsp.In(socket.Room(room)))
	if err != nil {
		return nil, err
	}
	out := make([]Identity, 0, len(sockets))
	for _, rs := range sockets {
		if rs.Id() == self || p.hasDeparted(rs.Id(), room) {
			continue
		}
		out = append(out, remoteIdentity(rs))
	}
	return out, nil
}

// alone reports whether no socket of userID but self is present in room.
func (p *presence) alone(ctx context.Context, nsp socket.Namespace, room, userID string, self socket.SocketId) (bool, error) {
	ids, err := p.present(ctx, nsp, room, self)
	if err != nil {
		return false, err
	}
	for _, id := range ids {
		if id.User.ID == userID {
			return false, nil
		}
	}
	return true, nil
}

// members lists each user present in room once, sorted by name then id.
func (p *presence) members(ctx context.Context, nsp socket.Namespace, room string) ([]User, error) {
	ids, err := p.present(ctx, nsp, room, "")
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(ids))
	users := make([]User, 0, len(ids))
	for _, id := range ids {
		if !seen[id.User.ID] {
			seen[id.User.ID] = true
			users = append(users, id.User)
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

// remoteIdentity reads the identity a socket carries in its data (on this node or another); a
// socket without one is anonymous.
func remoteIdentity(rs *socket.RemoteSocket) Identity {
	if id, ok := IdentityFromData(rs.Data()); ok {
		return id
	}
	var auth map[string]any
	if hs := rs.Handshake(); hs != nil {
		auth = hs.Auth
	}
	return Anonymous(string(rs.Id()), auth)
}

// fetchSockets waits for the adapter's answer, which a cluster adapter gives asynchronously.
func fetchSockets(ctx context.Context, op *socket.BroadcastOperator) ([]*socket.RemoteSocket, error) {
	type result struct {
		sockets []*socket.RemoteSocket
		err     error
	}
	ch := make(chan result, 1)
	op.FetchSockets()(func(sockets []*socket.RemoteSocket, err error) {
		select {
		case ch <- result{sockets, err}:
		default:
		}
	})
	select {
	case r := <-ch:
		return r.sockets, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// keyedMutex is a set of mutexes created on demand and dropped when unused.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedLock
}

type keyedLock struct {
	mu   sync.Mutex
	refs int
}

// Lock locks key and returns its unlock.
func (k *keyedMutex) Lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyedLock{}
	}
	l, ok := k.locks[key]
	if !ok {
		l = &keyedLock{}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()

	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		k.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
