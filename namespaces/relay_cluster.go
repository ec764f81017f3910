package namespaces

// relay_cluster.go: what the relay's nodes tell each other, as server-side events through the
// namespace's adapter: each tick's keyed values of a room (coalesced on the publishing node,
// delivered by each receiving node to its own sockets, relay_tick.go), and a user's departure.

import (
	"context"
	"encoding/json"
)

// The server-side events between the nodes of a cluster.
const (
	relayBatchEvent = "relay:batch" // one room's values of one tick
	relayGoneEvent  = "relay:gone"  // a user left a room: drop what is held of it
)

// relayBatch is one room's values of one tick as the other nodes get them (as a JSON string,
// which every adapter carries as it is).
type relayBatch struct {
	Room    string           `json:"room"`
	Entries []relayWireEntry `json:"entries"`
}

type relayWireEntry struct {
	User  User            `json:"user"`
	SID   string          `json:"sid"`
	Key   string          `json:"key"`
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
}

// tellBatch hands the room's values of this tick to the other nodes.
func (r *Relay) tellBatch(ctx context.Context, rm *relayRoom) {
	if r.single {
		return
	}
	rm.mu.Lock()
	b := relayBatch{Room: rm.name}
	for _, e := range rm.inflight {
		if !e.dropped {
			b.Entries = append(b.Entries, relayWireEntry{User: e.user, SID: e.sid, Key: e.key, Event: e.event, Data: e.data})
		}
	}
	rm.mu.Unlock()
	if len(b.Entries) == 0 {
		return
	}
	payload, err := json.Marshal(b)
	if err != nil {
		r.logTickError("encode a relay batch", err)
		return
	}
	if err := r.nsp.ServerSideEmit(ctx, relayBatchEvent, string(payload)); err != nil {
		r.logTickError("send a relay batch to the cluster", err)
	}
}

// tellOthers sends a server-side event to the other nodes.
func (r *Relay) tellOthers(ctx context.Context, event string, args ...any) {
	if r.single {
		return
	}
	if err := r.nsp.ServerSideEmit(ctx, event, args...); err != nil {
		r.log.Warn().Err(err).Str("event", event).Msg("tell the cluster")
	}
}

// serverSide takes the other nodes' relay events.
func (r *Relay) serverSide(args []any, ack func(...any)) {
	if ack != nil {
		defer ack()
	}
	if len(args) < 2 {
		return
	}
	name, _ := args[0].(string)
	switch name {
	case relayBatchEvent:
		payload, _ := args[1].(string)
		r.remoteBatch(payload)
	case relayGoneEvent:
		if len(args) < 3 {
			return
		}
		room, _ := args[1].(string)
		user, _ := args[2].(string)
		if room != "" && user != "" {
			r.purge(room, user)
		}
	}
}

// remoteBatch delivers another node's values to this node's sockets in the room, at once.
func (r *Relay) remoteBatch(payload string) {
	var b relayBatch
	if json.Unmarshal([]byte(payload), &b) != nil || !ValidRoomName(b.Room) || len(b.Entries) == 0 {
		return
	}
	if r.nsp.Local().RoomSize(b.Room) == 0 {
		return // no one here: nothing is kept
	}
	entries := make([]*relayEntry, 0, len(b.Entries))
	for _, w := range b.Entries {
		if w.User.ID == "" || w.Key == "" || len(w.Data) == 0 {
			continue
		}
		entries = append(entries, &relayEntry{user: w.User, sid: w.SID, key: w.Key, event: w.Event, data: w.Data})
	}
	r.withRoom(b.Room, func(rm *relayRoom) {
		r.deliverLocked(rm, entries)
		rm.idle = 0
	})
}
