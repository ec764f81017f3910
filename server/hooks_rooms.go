package server

// hooks_rooms.go: room.occupied and room.vacated for the events webhook (SPEC §8.3), once per
// change across the cluster.
//
// Each namespace counts its sockets per room in the backend's presence under the name
// "rooms:<namespace>", with the socket id as the member: the memory presence on one node, Redis
// presence for a cluster, where Join and Leave are atomic cluster-wide, so exactly one node sees
// a room's first socket arrive (occupied) and its last one go (vacated). A node that dies leaves
// its sockets counted until Redis presence reaps them, within 8 s of the dead node's last
// heartbeat once a survivor has beaten cleanly for 6 s (adapters' doc, "Presence on Redis"); the
// survivor that reaps a room's last socket reports it through OnExpired, and that node sends
// room.vacated.
//
// Room changes come from Namespace.OnRoom, on the goroutine that made them (a socket's handler,
// its disconnection, the HTTP API, another node's request), which must not wait for Redis. So
// they are queued and counted by workers, a room always by the same one (the room's shard), so
// that a room's events keep their order. A worker exists only while its shard has work.
//
// One socket's join and leave of a room may reach the queue in the other order when two
// goroutines change the same socket at once (OnRoom runs after the adapter's lock is released).
// Each shard keeps, per (socket, room), the joins minus the leaves it has seen and counts in
// presence only the transitions 0→1 and 1→0: a leave seen before its join brings it to -1, the
// join back to 0, and neither is counted, which is the truth (the socket is not in the room).

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/hooks"
	"github.com/switchboard/switchboard/socketio"
)

// occupancyShards is how many workers a namespace's room changes are spread over at most: Redis
// round trips of different rooms overlap, those of one room stay in order.
const occupancyShards = 8

// presenceCallTimeout bounds one presence call of a worker.
const presenceCallTimeout = 5 * time.Second

// roomsPresence is the presence name a namespace's room occupancy is counted under.
func roomsPresence(nsp string) string { return "rooms:" + nsp }

// occupancy reports one namespace's rooms becoming occupied and vacated.
type occupancy struct {
	nsp      string
	presence socketio.Presence
	notify   func(hooks.Event)
	log      zerolog.Logger
	errs     *sparseLog
	seed     maphash.Seed
	shards   [occupancyShards]occShard
	running  liveCount // workers running
}

type occShard struct {
	mu      sync.Mutex
	queue   []roomChange
	running bool
	// held is the worker's alone: joins minus leaves per (socket, room), and whether the join
	// was counted in presence (a failed Join is not, so its Leave is not made either).
	held map[sockRoom]heldRoom
}

type sockRoom struct{ sid, room string }

type heldRoom struct {
	net     int
	counted bool
}

// roomChange is one socket joining or leaving a room, or (expired) a departure that presence
// reaped from a dead node, with vacated when it was the room's last.
type roomChange struct {
	sid, room string
	joined    bool
	expired   bool
	vacated   bool
}

func newOccupancy(nsp string, p socketio.Presence, notify func(hooks.Event), log zerolog.Logger) *occupancy {
	o := &occupancy{nsp: nsp, presence: p, notify: notify, log: log.With().Str("nsp", nsp).Logger(),
		errs: newSparseLog(time.Second), seed: maphash.MakeSeed()}
	for i := range o.shards {
		o.shards[i].held = map[sockRoom]heldRoom{}
	}
	p.OnExpired(func(room, member string, _ []byte, ch socketio.PresenceChange) {
		o.push(roomChange{sid: member, room: room, expired: true, vacated: ch.Room})
	})
	return o
}

// changed is the namespace's OnRoom callback: it queues and returns.
func (o *occupancy) changed(s *socketio.Socket, room string, joined bool) {
	o.push(roomChange{sid: s.ID(), room: room, joined: joined})
}

func (o *occupancy) push(c roomChange) {
	sh := &o.shards[maphash.String(o.seed, c.room)%occupancyShards]
	sh.mu.Lock()
	sh.queue = append(sh.queue, c)
	start := !sh.running
	sh.running = true
	sh.mu.Unlock()
	if start {
		o.running.add(1)
		go o.work(sh)
	}
}

// work counts a shard's changes in order until its queue is empty.
func (o *occupancy) work(sh *occShard) {
	defer o.running.add(-1)
	for {
		sh.mu.Lock()
		if len(sh.queue) == 0 {
			sh.queue = nil
			sh.running = false
			sh.mu.Unlock()
			return
		}
		c := sh.queue[0]
		sh.queue[0] = roomChange{}
		sh.queue = sh.queue[1:]
		sh.mu.Unlock()
		o.apply(sh, c)
	}
}

func (o *occupancy) apply(sh *occShard, c roomChange) {
	if c.expired {
		if c.vacated {
			o.notify(hooks.RoomVacated(o.nsp, c.room))
		}
		return
	}
	k := sockRoom{c.sid, c.room}
	st := sh.held[k]
	ctx, cancel := context.WithTimeout(context.Background(), presenceCallTimeout)
	defer cancel()
	switch {
	case c.joined:
		st.net++
		if st.net == 1 {
			ch, err := o.presence.Join(ctx, c.room, c.sid, nil)
			st.counted = err == nil
			if err != nil {
				o.errs.warn(o.log, "join", "room occupancy: presence join failed ("+err.Error()+"); this socket is not counted", o.nsp, c.sid)
			} else if ch.Room {
				o.notify(hooks.RoomOccupied(o.nsp, c.room))
			}
		}
	default:
		st.net--
		if st.net == 0 && st.counted {
			// A failed Leave is retried by Redis presence at its heartbeats and reported through
			// OnExpired then.
			ch, err := o.presence.Leave(ctx, c.room, c.sid)
			if err != nil {
				o.errs.warn(o.log, "leave", "room occupancy: presence leave failed ("+err.Error()+"); retried by presence", o.nsp, c.sid)
			} else if ch.Room {
				o.notify(hooks.RoomVacated(o.nsp, c.room))
			}
		}
	}
	if st.net == 0 {
		delete(sh.held, k)
	} else {
		sh.held[k] = st
	}
}

// close waits until the queued changes are counted, or ctx ends.
func (o *occupancy) close(ctx context.Context) error { return o.running.wait(ctx) }
