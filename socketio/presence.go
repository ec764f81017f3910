package socketio

import (
	"context"
	"sync"
)

// Presence counts, across the cluster, the sockets of each member (a user, say) in each room, so
// that "who is here" and "did the first one arrive, did the last one go" are answered from state
// kept as sockets join and leave, never by listing every socket. Join and Leave are atomic
// cluster-wide: exactly one caller sees a member's (or a room's) first arrival and last
// departure. A cluster implementation also removes, within a bounded time, the counts of a node
// that died, and reports those departures through OnExpired.
type Presence interface {
	// Join counts one more socket of member in room; info describes the member while it is
	// present (the newest info wins).
	Join(ctx context.Context, room, member string, info []byte) (PresenceChange, error)
	// Leave counts one socket of member in room less.
	Leave(ctx context.Context, room, member string) (PresenceChange, error)
	// Members lists the info of every member present in room.
	Members(ctx context.Context, room string) ([][]byte, error)
	// OnExpired sets the function told of members that left because their node died.
	OnExpired(fn func(room, member string, info []byte, change PresenceChange))
}

// PresenceChange says what a Join or Leave changed.
type PresenceChange struct {
	// Member is true for a member's first socket in the room (Join) or its last (Leave).
	Member bool
	// Room is true for the room's first member (Join: it is now occupied) or its last (Leave:
	// vacated).
	Room bool
}

// MemoryPresence is Presence on one node.
type MemoryPresence struct {
	mu    sync.Mutex
	rooms map[string]map[string]*presenceEntry
}

type presenceEntry struct {
	count int
	info  []byte
	order uint64
}

var _ Presence = (*MemoryPresence)(nil)

// NewMemoryPresence returns an empty MemoryPresence.
func NewMemoryPresence() *MemoryPresence {
	return &MemoryPresence{rooms: map[string]map[string]*presenceEntry{}}
}

// Join implements Presence.
func (p *MemoryPresence) Join(_ context.Context, room, member string, info []byte) (PresenceChange, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	members := p.rooms[room]
	var ch PresenceChange
	if members == nil {
		members = map[string]*presenceEntry{}
		p.rooms[room] = members
		ch.Room = true
	}
	e := members[member]
	if e == nil {
		e = &presenceEntry{}
		members[member] = e
		ch.Member = true
	}
	e.count++
	if info != nil {
		e.info = info
	}
	return ch, nil
}

// Leave implements Presence.
func (p *MemoryPresence) Leave(_ context.Context, room, member string) (PresenceChange, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ch PresenceChange
	members := p.rooms[room]
	e := members[member]
	if e == nil {
		return ch, nil
	}
	e.count--
	if e.count <= 0 {
		delete(members, member)
		ch.Member = true
		if len(members) == 0 {
			delete(p.rooms, room)
			ch.Room = true
		}
	}
	return ch, nil
}

// Members implements Presence.
func (p *MemoryPresence) Members(_ context.Context, room string) ([][]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	members := p.rooms[room]
	out := make([][]byte, 0, len(members))
	for _, e := range members {
		out = append(out, e.info)
	}
	return out, nil
}

// OnExpired implements Presence: a single node never outlives itself.
func (p *MemoryPresence) OnExpired(func(room, member string, info []byte, change PresenceChange)) {}
