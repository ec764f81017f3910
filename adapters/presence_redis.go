package adapters

// presence_redis.go: socketio.Presence on Redis, cluster-wide (doc.go, "Presence on Redis", has
// the key layout and the dead-node bound).
//
// Every node counts, per room, the sockets of each member under its own node id as well as in
// the room's total, in one Lua script per Join or Leave: the script is the one place a count
// changes, so exactly one caller in the cluster sees a member's (and a room's) first arrival and
// last departure. A room's keys share one {hash tag}, so each script touches a single slot of a
// Redis Cluster.
//
// A node heartbeats (its id and Redis's clock in a sorted set). A node unseen for Timeout is
// claimed dead by a surviving node, atomically (one Lua script moves it from the live set to the
// dead set, so one claim wins); then any survivor reaps, room by room, the counts the dead node
// left, each room in one Lua script that deletes the dead node's counts of that room and returns
// the departures it caused: the script runs once per room with effect, so each departure is
// reported once, through OnExpired, on the node that ran it.
//
// Fencing: a node that could not heartbeat for Timeout (a paused process, a partition) may have
// been claimed while it lives. Its next heartbeat finds its id gone: it takes a new id for what
// joins from then on, and its older sockets, already reported gone, are not counted again (their
// later Leaves change nothing). A Redis outage claims nobody: a node reaps only after it has been
// heartbeating without a failure for Timeout, so every live node has beaten again by then.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/socketio"
)

// Presence timings: the defaults of PresenceOptions.
const (
	// PresenceHeartbeat is how often a node tells Redis it lives, and looks for dead nodes.
	PresenceHeartbeat = 2 * time.Second
	// PresenceTimeout is how long a node may go unseen before it is dead: its members are
	// removed, and reported through OnExpired, within PresenceTimeout + PresenceHeartbeat of
	// its last heartbeat.
	PresenceTimeout = 6 * time.Second
	// presenceGrace is how long a dead node's id stays in the dead set after its claim, reaped
	// again on every heartbeat, so that a write it had in flight when it was claimed is reaped
	// too.
	presenceGrace = 10 * time.Second
	// presenceStripes is the number of locks serialising this node's Join and Leave per room.
	presenceStripes = 64
)

// PresenceOptions configures presence on Redis.
type PresenceOptions struct {
	// Prefix starts every key ("<Prefix>:presence..."); empty is "socket.io".
	Prefix string
	// Heartbeat and Timeout [PresenceHeartbeat, PresenceTimeout]; Timeout is at least twice
	// Heartbeat.
	Heartbeat time.Duration
	Timeout   time.Duration
	// Logger gets what presence cannot hand to a caller (a failed heartbeat or reap).
	Logger zerolog.Logger
}

// RedisPresence is socketio.Presence on Redis: one name's rooms and members, counted by every
// node of the cluster (PresenceNode.Presence).
type RedisPresence struct {
	node *PresenceNode
	name string

	mu        sync.Mutex
	onExpired func(room, member string, info []byte, change socketio.PresenceChange)
}

var _ socketio.Presence = (*RedisPresence)(nil)

// keys are the room's keys: the members' totals, their info, and node id's counts.
func (p *RedisPresence) keys(room, id string) []string {
	base := p.node.prefix + ":presence:" + p.name + ":{" + room + "}:"
	return []string{base + "m", base + "i", base + "n:" + id}
}

func (p *RedisPresence) ref(room string) string { return p.name + "\x00" + room }

// errNoRoom is a Join, Leave or Members without a room.
var errNoRoom = errors.New("adapters: presence: empty room name")

// Join implements socketio.Presence. An error means nothing was counted (ErrUnavailable while
// Redis is down).
func (p *RedisPresence) Join(ctx context.Context, room, member string, info []byte) (socketio.PresenceChange, error) {
	if room == "" {
		return socketio.PresenceChange{}, errNoRoom
	}
	n := p.node
	if err := n.fresh(ctx); err != nil {
		return socketio.PresenceChange{}, Unavailable(err)
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	id := n.id
	ref := p.ref(room)
	r, done := n.lockRoom(ref)
	defer done()
	if !r.listed[id] {
		// Listed before anything is counted, so that a reaper finds every room a node counts in.
		if err := n.conn.Client().SAdd(ctx, n.nodeKey(id), ref).Err(); err != nil {
			return socketio.PresenceChange{}, Unavailable(fmt.Errorf("adapters: presence: list room: %w", err))
		}
		r.listed[id] = true
	}
	hasInfo, infoArg := "0", ""
	if info != nil {
		hasInfo, infoArg = "1", string(info)
	}
	res, err := n.conn.RunFenced(ctx, joinScript, p.keys(room, id), member, infoArg, hasInfo)
	if err != nil {
		return socketio.PresenceChange{}, Unavailable(fmt.Errorf("adapters: presence: join: %w", err))
	}
	m := r.byID[id]
	if m == nil {
		m = map[string]int{}
		r.byID[id] = m
	}
	m[member]++
	v := ints(res)
	return socketio.PresenceChange{Member: at(v, 0) == 1, Room: at(v, 1) == 1}, nil
}

// Leave implements socketio.Presence. An error means the cluster has not counted the socket out
// yet: it is retried on every heartbeat, and the departure it then makes is reported through
// OnExpired.
func (p *RedisPresence) Leave(ctx context.Context, room, member string) (socketio.PresenceChange, error) {
	if room == "" {
		return socketio.PresenceChange{}, errNoRoom
	}
	n := p.node
	n.mu.RLock()
	id := n.id
	n.stateMu.Lock()
	r, stale := n.rooms[p.ref(room)], n.stale
	n.stateMu.Unlock()
	if r != nil && len(stale) > 0 {
		// A socket counted under an earlier id leaves first: its count is the one that may be
		// gone (reaped) already.
		lk := n.stripe(p.ref(room))
		lk.Lock()
		for _, sid := range stale {
			if r.byID[sid][member] > 0 {
				id = sid
				break
			}
		}
		lk.Unlock()
	}
	n.mu.RUnlock()
	ch, _, err := p.leaveAs(ctx, room, member, id, false)
	return ch, err
}

// leaveAs counts one socket of member less under node id; on failure (but a retry's) the Leave
// is owed and retried later.
func (p *RedisPresence) leaveAs(ctx context.Context, room, member, id string, retry bool) (socketio.PresenceChange, []byte, error) {
	n := p.node
	n.mu.RLock()
	defer n.mu.RUnlock()
	ref := p.ref(room)
	r, done := n.lockRoom(ref)
	defer done()
	counted := r.byID[id][member] > 0
	if !retry && counted {
		// Taken now: a failure below owes it, and the next Leave must not count it again.
		take(r, id, member)
	}
	res, err := n.conn.RunFenced(ctx, leaveScript, p.keys(room, id), member)
	if err != nil {
		if retry || counted {
			n.stateMu.Lock()
			n.owed = append(n.owed, owedLeave{p: p, room: room, member: member, id: id})
			n.stateMu.Unlock()
		}
		return socketio.PresenceChange{}, nil, Unavailable(fmt.Errorf("adapters: presence: leave: %w", err))
	}
	v, _ := res.([]any)
	nums := ints(res)
	if at(nums, 2) == 1 && r.listed[id] {
		// The node's counts of the room are gone: unlist it (a failure leaves it listed, which
		// only costs a reaper a look).
		if n.conn.Client().SRem(ctx, n.nodeKey(id), ref).Err() == nil {
			r.listed[id] = false
		}
	}
	var info []byte
	if len(v) > 3 {
		if s, ok := v[3].(string); ok && s != "" {
			info = []byte(s)
		}
	}
	n.dropStale()
	return socketio.PresenceChange{Member: at(nums, 0) == 1, Room: at(nums, 1) == 1}, info, nil
}

// take counts one socket of member under id less in r.
func take(r *presenceRoom, id, member string) {
	m := r.byID[id]
	if m[member] <= 1 {
		delete(m, member)
		if len(m) == 0 {
			delete(r.byID, id)
		}
		return
	}
	m[member]--
}

// Members implements socketio.Presence.
func (p *RedisPresence) Members(ctx context.Context, room string) ([][]byte, error) {
	if room == "" {
		return nil, errNoRoom
	}
	vals, err := p.node.conn.Client().HVals(ctx, p.keys(room, "")[1]).Result()
	if err != nil {
		return nil, Unavailable(fmt.Errorf("adapters: presence: members: %w", err))
	}
	out := make([][]byte, len(vals))
	for i, v := range vals {
		if v != "" {
			out[i] = []byte(v)
		}
	}
	return out, nil
}

// OnExpired implements socketio.Presence: fn hears the departures no caller was told of, because
// the member's node died (or closed with members counted), or because a Leave failed and was
// completed later. Each departure is told once in the cluster, on the node that removed it.
func (p *RedisPresence) OnExpired(fn func(room, member string, info []byte, change socketio.PresenceChange)) {
	p.mu.Lock()
	p.onExpired = fn
	p.mu.Unlock()
}

func (p *RedisPresence) expired(room, member string, info []byte, ch socketio.PresenceChange) {
	p.mu.Lock()
	fn := p.onExpired
	p.mu.Unlock()
	if fn != nil {
		fn(room, member, info, ch)
	}
}

// reaped reports what a reap script returned: {room vacated, member, info, member, info...}.
func (p *RedisPresence) reaped(room string, res any) {
	v, _ := res.([]any)
	if len(v) < 3 {
		return
	}
	vacated := at(ints(res), 0) == 1
	for i := 1; i+1 < len(v); i += 2 {
		member, _ := v[i].(string)
		s, _ := v[i+1].(string)
		var info []byte
		if s != "" {
			info = []byte(s)
		}
		last := i+2 >= len(v)
		p.expired(room, member, info, socketio.PresenceChange{Member: true, Room: vacated && last})
	}
}

// ints reads the integers of a script's reply (other elements read as 0).
func ints(res any) []int64 {
	v, _ := res.([]any)
	out := make([]int64, len(v))
	for i, e := range v {
		out[i], _ = e.(int64)
	}
	return out
}

func at(v []int64, i int) int64 {
	if i < len(v) {
		return v[i]
	}
	return 0
}

// The scripts. Counts never go below zero: a Leave of what is not counted changes nothing, which
// is what a Leave of a reaped socket must do.
var (
	// joinScript: KEYS totals, infos, this node's counts; ARGV member, info, hasInfo.
	joinScript = NewFencedScript(`
redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
local c = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
local member, room = 0, 0
if c == 1 then
  member = 1
  if redis.call('HLEN', KEYS[1]) == 1 then room = 1 end
end
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
elseif c == 1 then
  redis.call('HSET', KEYS[2], ARGV[1], '')
end
return {member, room}
`)

	// leaveScript: KEYS totals, infos, the node's counts; ARGV member. Returns {member gone,
	// room vacated, the node's counts of the room gone, the member's info when gone}.
	leaveScript = NewFencedScript(`
local nc = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
if nc <= 0 then
  return {0, 0, redis.call('EXISTS', KEYS[3]) == 0 and 1 or 0, ''}
end
if nc == 1 then redis.call('HDEL', KEYS[3], ARGV[1]) else redis.call('HINCRBY', KEYS[3], ARGV[1], -1) end
local member, room, info = 0, 0, ''
local c = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if c <= 0 then
  info = redis.call('HGET', KEYS[2], ARGV[1]) or ''
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  member = 1
  if redis.call('HLEN', KEYS[1]) == 0 then
    redis.call('DEL', KEYS[1], KEYS[2])
    room = 1
  end
end
return {member, room, redis.call('EXISTS', KEYS[3]) == 0 and 1 or 0, info}
`)

	// reapScript: KEYS totals, infos, the dead node's counts. Returns {room vacated, member,
	// info, ...} for the members that were present only through the dead node; {} when there
	// was nothing (already reaped).
	reapScript = NewFencedScript(`
local flat = redis.call('HGETALL', KEYS[3])
if #flat == 0 then return {} end
redis.call('DEL', KEYS[3])
local out = {0}
for k = 1, #flat, 2 do
  local member = flat[k]
  local c = redis.call('HINCRBY', KEYS[1], member, -tonumber(flat[k + 1]))
  if c <= 0 then
    table.insert(out, member)
    table.insert(out, redis.call('HGET', KEYS[2], member) or '')
    redis.call('HDEL', KEYS[1], member)
    redis.call('HDEL', KEYS[2], member)
  end
end
if #out > 1 and redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
  out[1] = 1
end
return out
`)
)
