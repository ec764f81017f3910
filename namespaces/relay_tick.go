package namespaces

// relay_tick.go: keyed relay messages — coalesced per tick, served to slow readers without a
// backlog, and shared with the other nodes of a cluster.
//
// Coalescing. A keyed publish replaces the (user, key) entry of its room's outbox on the node it
// arrived at; nothing is sent then. The first time a node sees a user publish a key in a room it
// admits the key in the RelayState (atomically bounded to MaxRelayKeys per user and room, across
// the cluster), and remembers it while the room is busy. One loop per namespace ticks every
// RelayConfig.Tick; each tick takes every room's outbox and (1) stores the values (one
// RelayState.Update: on Redis one pipelined round trip, one script per room), (2) hands each
// room's values to the other nodes as one server-side event, (3) delivers them to this node's
// sockets in the room. So a (user, key) leaves a node at most once per tick, with the newest
// value, whatever the publish rate, and the last publish of a burst goes out at the next tick.
// Values are stored before they are delivered: a member joining meanwhile either reads a value
// in relay:join's state or receives it (or both), never neither.
//
// Where: on the sending node. Coalescing there bounds what crosses the cluster (one event per
// busy room per tick instead of one per publish) and the state writes alike. A receiving node
// delivers a batch as it arrives, without waiting for a tick of its own (latency: at most one
// tick plus the hop), and keeps, for its own slow readers, the backlog described next, which
// only the node holding the connection can keep. Two tabs of one user on two nodes publishing
// the same key are coalesced per node: members may then get one message per node per tick.
//
// Slow readers. Each tick's values go to each socket in one Socket.WriteVolatile (in chunks of
// about relayWriteChunk bytes): the engine writes a chunk only if the transport can take it at
// once (a websocket with nothing queued, a long-poll waiting), all of it or none, and refuses it
// otherwise. A value is encoded once per parser for every reader (Namespace.Encode), not once
// per socket. When a socket refuses a chunk, it gets a backlog: the newest value per (user, key)
// it has not received. Later values replace what the backlog holds (RelayStageSlowReader)
// instead of queuing behind it, and each tick the backlog is written again as far as the
// transport takes it. So a reader that stops reading costs the server, whatever the publish rate
// and however long it stalls, at most one entry per (user, key) of the room (a pointer; the data
// and its encodings are shared with every other reader) and, in the engine, at most the
// unwritten tail of one chunk (a volatile write is refused while anything is queued) —
// TestRelaySlowReader measures both — and when it reads again it gets the present, not the past.
// A plain Emit would have queued every value (a backlog that grows until the engine drops the
// client); a plain volatile one would lose the last value of a burst. A long-polling transport
// takes a write only while a poll waits, and the write answers it: a tick's values going as one
// write is what lets such a reader get them all in one poll rather than one value per poll. A
// socket whose relay:join is being answered is treated as slow until the answer is written, so
// that no value reaches it before the state in the answer.
//
// Nothing is kept for idle rooms: a room's relayRoom exists while it has keyed work here (values
// to send, backlogs, a join being answered) and goes relayIdleTicks ticks after that ended; the
// loop stops when no room is left (with a RelayState that expires, it slows to TouchEvery while
// this node has members, to keep their rooms' state alive).

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/switchboard/switchboard/socketio"
)

const (
	// relayIdleTicks is how many ticks a room without keyed work keeps its relayRoom (and its
	// memory of admitted keys) before it is dropped.
	relayIdleTicks = 20
	// relayStoreTimeout bounds a tick's RelayState and cluster calls.
	relayStoreTimeout = 2 * time.Second
	// relayWriteChunk is about how many bytes of values go to a socket in one volatile write. A
	// chunk is written whole or not at all, so it bounds what the engine may hold for a slow
	// reader (the unwritten tail of one chunk) and keeps a tick of large values (up to 100 keys
	// of 16 KiB per user) far below the write buffer limit that would drop the client.
	relayWriteChunk = 64 << 10
	// relayFrameOverhead is what a relay:message frame adds to its data, roughly (the event,
	// room and user around it), for counting chunks.
	relayFrameOverhead = 96
)

type relayKey struct{ user, key string }

// relayEntry is one keyed publish. It is shared by every reader it goes to and read or changed
// only under its room's lock.
type relayEntry struct {
	user    User
	sid     string // the socket that published it, which does not get it back
	key     string
	event   string
	data    json.RawMessage
	dropped bool              // its user left the room: it is not delivered
	enc     *socketio.Encoded // the relay:message, encoded once per parser for every reader
}

// encoded is the entry's relay:message, prepared the first time a reader needs it.
func (r *Relay) encoded(e *relayEntry, room string) *socketio.Encoded {
	if e.enc == nil {
		var data any
		_ = json.Unmarshal(e.data, &data) // validated when published
		e.enc = r.encode(RelayMessageEvent, &RelayMessage{Room: room, User: e.user, Event: e.event, Data: data, Key: e.key})
	}
	return e.enc
}

// size is about how many bytes the entry's frame takes.
func (e *relayEntry) size() int {
	return len(e.data) + len(e.event) + len(e.key) + len(e.user.ID) + len(e.user.Name) + relayFrameOverhead
}

// relayBacklog is what a slow reader has not received: the newest entry per (user, key).
type relayBacklog map[relayKey]*relayEntry

// merge puts entries (but the reader's own) in the backlog and returns how many it replaced.
func (b relayBacklog) merge(sid string, entries []*relayEntry) (replaced int) {
	for _, e := range entries {
		if e.sid == sid || e.dropped {
			continue
		}
		k := relayKey{e.user.ID, e.key}
		if _, ok := b[k]; ok {
			replaced++
		}
		b[k] = e
	}
	return replaced
}

// relayRoom is a room's keyed work on this node. Lock order: Relay.mu, then relayRoom.mu.
type relayRoom struct {
	name string

	mu       sync.Mutex
	dead     bool // dropped from Relay.rooms: look it up again
	idle     int  // ticks without keyed work
	outbox   map[relayKey]*relayEntry
	inflight []*relayEntry              // taken by the running tick, not delivered yet
	admitted map[string]map[string]bool // user → keys the store holds for it
	slow     map[*socketio.Socket]relayBacklog
	joining  map[*socketio.Socket]struct{} // relay:join being answered: deliveries wait
}

func (rm *relayRoom) busy() bool {
	return len(rm.outbox) > 0 || len(rm.slow) > 0 || len(rm.joining) > 0 || len(rm.inflight) > 0
}

// withRoom runs fn with room's relayRoom locked, making it (and starting the tick) if needed.
func (r *Relay) withRoom(name string, fn func(rm *relayRoom)) {
	for {
		r.mu.Lock()
		rm := r.rooms[name]
		if rm == nil {
			rm = &relayRoom{name: name}
			r.rooms[name] = rm
		}
		r.ensureLoopLocked()
		r.mu.Unlock()
		rm.mu.Lock()
		if rm.dead {
			rm.mu.Unlock()
			continue
		}
		fn(rm)
		rm.mu.Unlock()
		return
	}
}

// ifRoom runs fn with room's relayRoom locked, if it has one.
func (r *Relay) ifRoom(name string, fn func(rm *relayRoom)) {
	r.mu.Lock()
	rm := r.rooms[name]
	r.mu.Unlock()
	if rm == nil {
		return
	}
	rm.mu.Lock()
	if !rm.dead {
		fn(rm)
	}
	rm.mu.Unlock()
}

// ensureLoopLocked starts the tick loop, or wakes it from its slow pace. r.mu is held.
func (r *Relay) ensureLoopLocked() {
	if r.manual || r.ctx.Err() != nil {
		return
	}
	if r.running {
		select {
		case r.wake <- struct{}{}:
		default:
		}
		return
	}
	r.running = true
	r.done = make(chan struct{})
	go r.loop(r.done)
}

// offer takes a keyed publish: admitted when the key is new here, then the room's newest value
// of its (user, key) until the next tick.
func (r *Relay) offer(ctx context.Context, room string, e *relayEntry) error {
	known := false
	r.withRoom(room, func(rm *relayRoom) { known = rm.admitted[e.user.ID][e.key] })
	if !known {
		v := RelayValue{User: e.user.ID, Key: e.key, Event: e.event, Data: e.data}
		if err := r.state.Admit(ctx, room, v); err != nil {
			return err
		}
	}
	replaced := false
	r.withRoom(room, func(rm *relayRoom) {
		if rm.admitted == nil {
			rm.admitted = map[string]map[string]bool{}
		}
		if rm.admitted[e.user.ID] == nil {
			rm.admitted[e.user.ID] = map[string]bool{}
		}
		rm.admitted[e.user.ID][e.key] = true
		if rm.outbox == nil {
			rm.outbox = map[relayKey]*relayEntry{}
		}
		k := relayKey{e.user.ID, e.key}
		_, replaced = rm.outbox[k]
		rm.outbox[k] = e
		rm.idle = 0
	})
	if replaced {
		r.obs.RelayCoalesced(RelayStageTick, 1)
	}
	return nil
}

// holdDeliveries makes s slow in room until releaseDeliveries: what is delivered to it meanwhile
// waits in its backlog.
func (r *Relay) holdDeliveries(s *socketio.Socket, room string) {
	r.withRoom(room, func(rm *relayRoom) {
		if rm.joining == nil {
			rm.joining = map[*socketio.Socket]struct{}{}
		}
		rm.joining[s] = struct{}{}
	})
}

// releaseDeliveries ends holdDeliveries; the backlog goes out at the next tick.
func (r *Relay) releaseDeliveries(s *socketio.Socket, room string) {
	r.ifRoom(room, func(rm *relayRoom) { delete(rm.joining, s) })
}

// purge forgets what this node holds of user in room: its unsent values, its admitted keys, and
// its values in backlogs.
func (r *Relay) purge(room, user string) {
	r.ifRoom(room, func(rm *relayRoom) {
		for k := range rm.outbox {
			if k.user == user {
				delete(rm.outbox, k)
			}
		}
		for _, e := range rm.inflight {
			if e.user.ID == user {
				e.dropped = true
			}
		}
		delete(rm.admitted, user)
		for s, b := range rm.slow {
			for k := range b {
				if k.user == user {
					delete(b, k)
				}
			}
			if len(b) == 0 {
				delete(rm.slow, s)
			}
		}
	})
}

// forgetSocket drops a disconnected socket's backlogs.
func (r *Relay) forgetSocket(s *socketio.Socket) {
	for _, room := range s.Rooms() {
		r.ifRoom(room, func(rm *relayRoom) {
			delete(rm.slow, s)
			delete(rm.joining, s)
		})
	}
}

// resync gives a recovered socket the room's state (but its own user's) through its backlog,
// as the next tick writes it.
func (r *Relay) resync(ctx context.Context, s *socketio.Socket, room, own string) error {
	values, err := r.state.State(ctx, room)
	if err != nil || len(values) == 0 {
		return err
	}
	members, err := presentUsers(ctx, r.members.presence, room)
	if err != nil {
		return err
	}
	users := make(map[string]User, len(members))
	for _, u := range members {
		users[u.ID] = u
	}
	entries := make([]*relayEntry, 0, len(values))
	for _, v := range values {
		u, ok := users[v.User]
		if !ok || v.User == own {
			continue
		}
		entries = append(entries, &relayEntry{user: u, key: v.Key, event: v.Event, data: v.Data})
	}
	if len(entries) == 0 {
		return nil
	}
	r.withRoom(room, func(rm *relayRoom) {
		b := rm.slow[s]
		if b == nil {
			b = relayBacklog{}
			if rm.slow == nil {
				rm.slow = map[*socketio.Socket]relayBacklog{}
			}
			rm.slow[s] = b
		}
		for _, e := range entries {
			if _, newer := b[relayKey{e.user.ID, e.key}]; !newer {
				b[relayKey{e.user.ID, e.key}] = e
			}
		}
	})
	return nil
}

// deliverLocked writes entries to the room's local sockets, each but its publisher; a socket
// whose transport refuses one gets the rest in its backlog. rm.mu is held.
func (r *Relay) deliverLocked(rm *relayRoom, entries []*relayEntry) {
	if len(entries) == 0 {
		return
	}
	delivered, coalesced := 0, 0
	for _, s := range r.nsp.Local().Match(socketio.BroadcastOptions{Rooms: []string{rm.name}}) {
		if !s.Connected() {
			continue // connecting (recovering): resync hands it the state
		}
		sid := s.ID()
		if b := rm.slow[s]; b != nil {
			coalesced += b.merge(sid, entries)
			continue
		}
		if _, held := rm.joining[s]; held {
			rm.slowBacklog(s).merge(sid, entries)
			continue
		}
		next, n := r.send(s, rm.name, entries)
		delivered += n
		if next < len(entries) && s.Connected() {
			rm.slowBacklog(s).merge(sid, entries[next:])
		}
	}
	r.obs.RelayDelivered(delivered)
	if coalesced > 0 {
		r.obs.RelayCoalesced(RelayStageSlowReader, coalesced)
	}
}

// send writes entries (but s's own and dropped ones) to s, in order, and returns the index of the
// first one it did not write (len(entries) when it wrote them all) and how many it wrote. They go
// in volatile writes of about relayWriteChunk bytes; the first one the transport refuses ends
// the send. Over long-polling a write answers the waiting poll, so a tick's values reach such a
// client in one poll as long as they fit in one chunk.
func (r *Relay) send(s *socketio.Socket, room string, entries []*relayEntry) (next, delivered int) {
	sid := s.ID()
	batch := make([]*socketio.Encoded, 0, len(entries))
	start, size := 0, 0
	for i, e := range entries {
		if e.sid == sid || e.dropped {
			continue
		}
		if len(batch) > 0 && size+e.size() > relayWriteChunk {
			if !s.WriteVolatile(batch...) {
				return start, delivered
			}
			delivered += len(batch)
			batch, start, size = batch[:0], i, 0
		}
		batch = append(batch, r.encoded(e, room))
		size += e.size()
	}
	if len(batch) > 0 {
		if !s.WriteVolatile(batch...) {
			return start, delivered
		}
		delivered += len(batch)
	}
	return len(entries), delivered
}

func (rm *relayRoom) slowBacklog(s *socketio.Socket) relayBacklog {
	if rm.slow == nil {
		rm.slow = map[*socketio.Socket]relayBacklog{}
	}
	b := rm.slow[s]
	if b == nil {
		b = relayBacklog{}
		rm.slow[s] = b
	}
	return b
}

// flushLocked writes the backlogs as far as their transports take them. rm.mu is held.
func (r *Relay) flushLocked(rm *relayRoom) {
	delivered := 0
	for s, b := range rm.slow {
		if _, held := rm.joining[s]; held {
			continue
		}
		if !s.Connected() || !s.In(rm.name) {
			delete(rm.slow, s)
			continue
		}
		entries := make([]*relayEntry, 0, len(b))
		for _, e := range b {
			entries = append(entries, e)
		}
		next, n := r.send(s, rm.name, entries)
		delivered += n
		for _, e := range entries[:next] {
			delete(b, relayKey{e.user.ID, e.key})
		}
		if len(b) == 0 {
			delete(rm.slow, s)
		}
	}
	r.obs.RelayDelivered(delivered)
}

// step is one tick: store, tell the cluster, deliver, and drop rooms idle long enough. It
// reports whether some room is left.
func (r *Relay) step() bool {
	r.mu.Lock()
	rooms := make([]*relayRoom, 0, len(r.rooms))
	for _, rm := range r.rooms {
		rooms = append(rooms, rm)
	}
	r.mu.Unlock()

	var updates []RelayUpdate
	for _, rm := range rooms {
		rm.mu.Lock()
		if len(rm.outbox) > 0 && !rm.dead {
			rm.inflight = make([]*relayEntry, 0, len(rm.outbox))
			values := make([]RelayValue, 0, len(rm.outbox))
			for _, e := range rm.outbox {
				rm.inflight = append(rm.inflight, e)
				values = append(values, RelayValue{User: e.user.ID, Key: e.key, Event: e.event, Data: e.data})
			}
			rm.outbox = nil
			updates = append(updates, RelayUpdate{Room: rm.name, Values: values})
		}
		rm.mu.Unlock()
	}

	if len(updates) > 0 {
		ctx, cancel := context.WithTimeout(r.ctx, relayStoreTimeout)
		missing, err := r.state.Update(ctx, updates)
		if err != nil {
			r.logTickError("store relay state", err)
		}
		r.forgetMissing(missing)
		for _, rm := range rooms {
			r.tellBatch(ctx, rm)
		}
		cancel()
	}

	for _, rm := range rooms {
		rm.mu.Lock()
		if !rm.dead {
			inflight := rm.inflight
			rm.inflight = nil
			r.deliverLocked(rm, inflight)
			r.flushLocked(rm)
			if len(inflight) > 0 || rm.busy() {
				rm.idle = 0
			} else {
				rm.idle++
			}
		}
		rm.mu.Unlock()
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	for name, rm := range r.rooms {
		rm.mu.Lock()
		if rm.idle >= relayIdleTicks && !rm.busy() {
			rm.dead = true
			delete(r.rooms, name)
		}
		rm.mu.Unlock()
	}
	return len(r.rooms) > 0
}

// forgetMissing drops values whose key the store no longer held (their user left meanwhile): they
// are not delivered, and the key is admitted again at its next publish.
func (r *Relay) forgetMissing(missing []RelayMissing) {
	for _, m := range missing {
		r.ifRoom(m.Room, func(rm *relayRoom) {
			delete(rm.admitted[m.User], m.Key)
			for _, e := range rm.inflight {
				if e.user.ID == m.User && e.key == m.Key {
					e.dropped = true
				}
			}
		})
	}
}

// touch keeps alive the stored state of the rooms this node has members in.
func (r *Relay) touch() {
	rooms := r.members.countedRooms()
	if len(rooms) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, relayStoreTimeout)
	defer cancel()
	if err := r.state.Touch(ctx, rooms); err != nil {
		r.logTickError("touch relay state", err)
	}
}

// loop ticks while some room has keyed work; with a RelayState that expires, it goes on at the
// TouchEvery pace while this node has members.
func (r *Relay) loop(done chan struct{}) {
	defer close(done)
	touchEvery := r.state.TouchEvery()
	t := time.NewTicker(r.tick)
	defer t.Stop()
	fast := true
	lastTouch := time.Now()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-r.wake:
			if !fast {
				fast = true
				t.Reset(r.tick)
			}
			continue
		case now := <-t.C:
			active := r.step()
			if touchEvery > 0 && now.Sub(lastTouch) >= touchEvery-r.tick {
				r.touch()
				lastTouch = now
			}
			if active {
				continue
			}
		}
		r.mu.Lock()
		switch {
		case len(r.rooms) > 0:
		case touchEvery == 0 || !r.members.anyCounted():
			r.running = false
			r.mu.Unlock()
			return
		case fast:
			fast = false
			t.Reset(touchEvery)
		}
		r.mu.Unlock()
	}
}
