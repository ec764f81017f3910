package namespaces

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"
)

// MaxRelayKeys bounds the keys one user holds in one relay room (SPEC §9).
const MaxRelayKeys = 100

// ErrRelayKeys is RelayState.Admit's answer to a user's 101st key in a room.
var ErrRelayKeys = errors.New("relay: too many keys")

// RelayValue is the latest publish of one (user, key) of a room: its event and its data, as
// JSON.
type RelayValue struct {
	User  string
	Key   string
	Event string
	Data  json.RawMessage
}

// RelayUpdate is what a tick stores for one room: the newest value of each (user, key) that
// changed, already admitted.
type RelayUpdate struct {
	Room   string
	Values []RelayValue
}

// RelayMissing names a value Update did not store because its key was no longer held.
type RelayMissing struct {
	Room, User, Key string
}

// RelayState keeps the keyed state of relay rooms: the latest value per (user, key), at most
// MaxRelayKeys keys per user per room, for relay:join to hand to late joiners. The memory
// implementation serves one node; the Redis one shares rooms across a cluster. A user's values
// go when the user leaves the room, and a room's when it empties.
type RelayState interface {
	// Admit stores v as the latest value of its (user, key) in room, the key counting against
	// the user's MaxRelayKeys there; ErrRelayKeys when the key is new and the user already
	// holds MaxRelayKeys. It is called for keys the node has not seen the user publish yet, so
	// that the bound holds across the cluster.
	Admit(ctx context.Context, room string, v RelayValue) error
	// Update stores the newest values of keys already admitted. A value whose key is no longer
	// held (its user left the room meanwhile, or a TTL expired) is not stored again: it comes
	// back in missing, and the caller admits the key afresh at its next publish.
	Update(ctx context.Context, updates []RelayUpdate) (missing []RelayMissing, err error)
	// State returns room's values, in no particular order.
	State(ctx context.Context, room string) ([]RelayValue, error)
	// DropUser forgets user's values in room.
	DropUser(ctx context.Context, room, user string) error
	// DropRoom forgets every value of room.
	DropRoom(ctx context.Context, room string) error
	// Touch keeps the values of rooms that still have members on this node (a TTL backstop
	// would expire them otherwise).
	Touch(ctx context.Context, rooms []string) error
	// TouchEvery is how often Touch is due for a room with members; 0 means never.
	TouchEvery() time.Duration
}

// MemoryRelayState is RelayState on one node.
type MemoryRelayState struct {
	mu    sync.Mutex
	rooms map[string]map[string]map[string]RelayValue // room → user → key → value
}

var _ RelayState = (*MemoryRelayState)(nil)

// NewMemoryRelayState returns an empty MemoryRelayState.
func NewMemoryRelayState() *MemoryRelayState {
	return &MemoryRelayState{rooms: map[string]map[string]map[string]RelayValue{}}
}

// Admit implements RelayState.
func (m *MemoryRelayState) Admit(_ context.Context, room string, v RelayValue) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	users := m.rooms[room]
	if users == nil {
		users = map[string]map[string]RelayValue{}
		m.rooms[room] = users
	}
	keys := users[v.User]
	if keys == nil {
		keys = map[string]RelayValue{}
		users[v.User] = keys
	}
	if _, ok := keys[v.Key]; !ok && len(keys) >= MaxRelayKeys {
		return ErrRelayKeys
	}
	keys[v.Key] = v
	return nil
}

// Update implements RelayState.
func (m *MemoryRelayState) Update(_ context.Context, updates []RelayUpdate) ([]RelayMissing, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var missing []RelayMissing
	for _, u := range updates {
		users := m.rooms[u.Room]
		for _, v := range u.Values {
			keys := users[v.User]
			if _, ok := keys[v.Key]; !ok {
				missing = append(missing, RelayMissing{Room: u.Room, User: v.User, Key: v.Key})
				continue
			}
			keys[v.Key] = v
		}
	}
	return missing, nil
}

// State implements RelayState.
func (m *MemoryRelayState) State(_ context.Context, room string) ([]RelayValue, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []RelayValue
	for _, keys := range m.rooms[room] {
		for _, v := range keys {
			out = append(out, v)
		}
	}
	return out, nil
}

// DropUser implements RelayState.
func (m *MemoryRelayState) DropUser(_ context.Context, room, user string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if users := m.rooms[room]; users != nil {
		delete(users, user)
		if len(users) == 0 {
			delete(m.rooms, room)
		}
	}
	return nil
}

// DropRoom implements RelayState.
func (m *MemoryRelayState) DropRoom(_ context.Context, room string) error {
	m.mu.Lock()
	delete(m.rooms, room)
	m.mu.Unlock()
	return nil
}

// Touch implements RelayState: memory does not expire.
func (*MemoryRelayState) Touch(context.Context, []string) error { return nil }

// TouchEvery implements RelayState.
func (*MemoryRelayState) TouchEvery() time.Duration { return 0 }

// rooms is the number of rooms holding values (for tests).
func (m *MemoryRelayState) roomCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.rooms)
}
