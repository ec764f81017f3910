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
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
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

// PresenceNode is this node's part of presence on Redis: its id, its heartbeat, the reaping of
// dead nodes, and the presences (one per name) counted under its id. Build one per node with
// NewPresenceNode, get each presence with Presence, Close it at shutdown.
type PresenceNode struct {
	conn      *Conn
	log       zerolog.Logger
	prefix    string
	heartbeat time.Duration
	timeout   time.Duration
	keyNodes  string // sorted set: live node id → Redis time of its last heartbeat (ms)
	keyDead   string // sorted set: claimed node id → Redis time of its claim (ms)

	// mu is held (read) by every Join and Leave for the id they count under, and (write) by a
	// fence, which changes the id.
	mu sync.RWMutex
	id string

	beatMu     sync.Mutex // one heartbeat at a time
	registered bool
	lastBeat   time.Time // last successful heartbeat
	healthy    time.Time // start of the current run of heartbeats without failure or outage
	outages    uint64    // the connection's outage count at the last heartbeat

	stripes [presenceStripes]sync.Mutex

	stateMu sync.Mutex
	stale   []string                 // this node's earlier ids whose sockets may still leave, oldest first
	rooms   map[string]*presenceRoom // by ref (name + NUL + room)
	owed    []owedLeave              // Leaves that failed, retried on every heartbeat
	names   map[string]*RedisPresence

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once

	skipBeats atomic.Bool // tests: a node that is paused (its heartbeat loop does nothing)
}

// presenceRoom is what this node counted in one room of one presence.
type presenceRoom struct {
	byID   map[string]map[string]int // node id → member → sockets
	listed map[string]bool           // node ids whose node set lists the room
}

func (r *presenceRoom) empty() bool {
	for _, m := range r.byID {
		if len(m) > 0 {
			return false
		}
	}
	for _, l := range r.listed {
		if l {
			return false
		}
	}
	return true
}

type owedLeave struct {
	p            *RedisPresence
	room, member string
	id           string
}

// NewPresenceNode returns this node's presence on conn and starts its heartbeat. Keys go under
// opts.Prefix.
func NewPresenceNode(conn *Conn, opts PresenceOptions) *PresenceNode {
	if opts.Prefix == "" {
		opts.Prefix = "socket.io"
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = PresenceHeartbeat
	}
	if opts.Timeout <= 0 {
		opts.Timeout = PresenceTimeout
	}
	if opts.Timeout < 2*opts.Heartbeat {
		opts.Timeout = 2 * opts.Heartbeat
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &PresenceNode{
		conn:      conn,
		log:       opts.Logger.With().Str("component", "adapter").Logger(),
		prefix:    opts.Prefix,
		heartbeat: opts.Heartbeat,
		timeout:   opts.Timeout,
		keyNodes:  opts.Prefix + ":presence-nodes:{presence}",
		keyDead:   opts.Prefix + ":presence-dead:{presence}",
		id:        newNodeID(),
		rooms:     map[string]*presenceRoom{},
		names:     map[string]*RedisPresence{},
		ctx:       ctx,
		cancel:    cancel,
		done:      make(chan struct{}),
	}
	go n.run()
	return n
}

func newNodeID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ID is the id this node counts its members under now (it changes after a fence).
func (n *PresenceNode) ID() string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.id
}

// Presence returns the presence called name (e.g. "chat"): its rooms and members are apart from
// those of other names. The same name gives the same presence. A name is not empty and holds
// no '{', '}' or NUL (it is part of keys and of hash tags).
func (n *PresenceNode) Presence(name string) *RedisPresence {
	if name == "" || strings.ContainsAny(name, "{}\x00") {
		panic(fmt.Sprintf("adapters: invalid presence name %q", name))
	}
	n.stateMu.Lock()
	defer n.stateMu.Unlock()
	if p := n.names[name]; p != nil {
		return p
	}
	p := &RedisPresence{node: n, name: name}
	n.names[name] = p
	return p
}

// Close stops the heartbeat. A node leaving members counted hands them to the others, which
// reap them (and report them through OnExpired) at their next heartbeat; a node with none
// simply leaves.
func (n *PresenceNode) Close() error {
	n.halt()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.stateMu.Lock()
	ids := append(slices.Clone(n.stale), n.id)
	counted := map[string]bool{}
	for _, r := range n.rooms {
		for id, m := range r.byID {
			if len(m) > 0 || r.listed[id] {
				counted[id] = true
			}
		}
	}
	for _, o := range n.owed {
		counted[o.id] = true
	}
	n.stateMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var errs []error
	for _, id := range ids {
		dead := "0"
		if counted[id] {
			dead = "1"
		}
		if err := retireScript.Run(ctx, n.conn.Client(), []string{n.keyNodes, n.keyDead}, id, dead).Err(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("adapters: presence: leave the cluster: %w", err)
	}
	return nil
}

// halt stops the heartbeat without telling anyone, as a node that dies does.
func (n *PresenceNode) halt() {
	n.once.Do(func() {
		n.cancel()
		<-n.done
	})
}

// run heartbeats, reaps dead nodes, and retries owed Leaves, until Close.
func (n *PresenceNode) run() {
	defer close(n.done)
	t := time.NewTicker(n.heartbeat)
	defer t.Stop()
	for {
		if n.skipBeats.Load() {
			// paused (tests)
		} else if n.beat(n.ctx) == nil {
			n.retryOwed(n.ctx)
			if n.mayReap() {
				n.reap(n.ctx)
			}
		}
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// beat heartbeats once: it registers this node's id the first time, and fences the node when its
// id was claimed dead meanwhile.
func (n *PresenceNode) beat(ctx context.Context) error {
	n.beatMu.Lock()
	defer n.beatMu.Unlock()
	return n.beatLocked(ctx)
}

func (n *PresenceNode) beatLocked(ctx context.Context) error {
	id := n.ID()
	first := "0"
	if !n.registered {
		first = "1"
	}
	cctx, cancel := context.WithTimeout(ctx, redisIOTimeout)
	alive, err := heartbeatScript.Run(cctx, n.conn.Client(), []string{n.keyNodes}, id, first).Int()
	cancel()
	now := time.Now()
	if err != nil {
		n.healthy = time.Time{}
		if ctx.Err() == nil {
			n.log.Debug().Err(err).Msg("presence heartbeat")
		}
		return fmt.Errorf("adapters: presence heartbeat: %w", err)
	}
	st := n.conn.Status()
	if n.healthy.IsZero() || st.Outages != n.outages || !n.conn.Ready() || now.Sub(n.lastBeat) > n.timeout/2 {
		// A failure, an outage, or a gap in our own beats (a paused process): the others may
		// have missed beats too, so claim nobody until a full Timeout of clean beats.
		n.healthy = now
	}
	n.outages = st.Outages
	n.lastBeat = now
	if alive == 1 {
		n.registered = true
		return nil
	}
	// Our id was claimed dead: what was counted under it is being reaped (and reported). Count
	// what joins from now on under a new id.
	n.mu.Lock()
	n.stateMu.Lock()
	n.stale = append(n.stale, n.id)
	n.stateMu.Unlock()
	n.id = newNodeID()
	n.mu.Unlock()
	n.registered = false
	n.log.Warn().Msg("presence: this node was taken for dead (no heartbeat for the timeout); its members were reported gone")
	return n.beatLocked(ctx)
}

// fresh makes sure this node's id is registered and was confirmed recently, so that a Join does
// not count under an id that was claimed while this node was paused.
func (n *PresenceNode) fresh(ctx context.Context) error {
	n.beatMu.Lock()
	defer n.beatMu.Unlock()
	if n.registered && time.Since(n.lastBeat) <= n.timeout/2 {
		return nil
	}
	return n.beatLocked(ctx)
}

// mayReap reports whether this node has heartbeaten cleanly for a whole Timeout: only then are
// the nodes it sees unseen really silent, and not catching up after an outage.
func (n *PresenceNode) mayReap() bool {
	n.beatMu.Lock()
	defer n.beatMu.Unlock()
	return !n.healthy.IsZero() && time.Since(n.healthy) >= n.timeout && n.conn.Ready()
}

// reap claims the nodes unseen for Timeout and removes what every claimed node counted.
func (n *PresenceNode) reap(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, redisIOTimeout)
	dead, err := claimScript.Run(cctx, n.conn.Client(), []string{n.keyNodes, n.keyDead},
		n.timeout.Milliseconds(), (n.timeout + presenceGrace).Milliseconds()).StringSlice()
	cancel()
	if err != nil {
		n.log.Debug().Err(err).Msg("presence: look for dead nodes")
		return
	}
	for _, id := range dead {
		n.reapNode(ctx, id)
	}
}

// reapNode removes, room by room, what node id counted, and reports the departures.
func (n *PresenceNode) reapNode(ctx context.Context, id string) {
	cctx, cancel := context.WithTimeout(ctx, redisIOTimeout)
	refs, err := n.conn.Client().SMembers(cctx, n.nodeKey(id)).Result()
	cancel()
	if err != nil {
		n.log.Debug().Err(err).Msg("presence: list a dead node's rooms")
		return
	}
	for _, ref := range refs {
		name, room, ok := strings.Cut(ref, "\x00")
		if !ok || name == "" || strings.ContainsAny(name, "{}") || room == "" {
			continue
		}
		p := n.Presence(name)
		cctx, cancel := context.WithTimeout(ctx, redisIOTimeout)
		res, err := n.conn.RunFenced(cctx, reapScript, p.keys(room, id))
		if err == nil {
			err = n.conn.Client().SRem(cctx, n.nodeKey(id), ref).Err()
		}
		cancel()
		if res != nil {
			p.reaped(room, res)
		}
		if err != nil {
			n.log.Debug().Err(err).Msg("presence: reap a dead node's room")
			return
		}
	}
}

// retryOwed redoes the Leaves that failed; their departures go to OnExpired.
func (n *PresenceNode) retryOwed(ctx context.Context) {
	n.stateMu.Lock()
	owed := n.owed
	n.owed = nil
	n.stateMu.Unlock()
	var left []owedLeave
	for i, o := range owed {
		if ctx.Err() != nil || !n.conn.Ready() {
			left = append(left, owed[i:]...)
			break
		}
		ch, info, err := o.p.leaveAs(ctx, o.room, o.member, o.id, true)
		if err != nil {
			left = append(left, o)
			continue
		}
		if ch.Member {
			o.p.expired(o.room, o.member, info, ch)
		}
	}
	if len(left) > 0 {
		n.stateMu.Lock()
		n.owed = append(left, n.owed...)
		n.stateMu.Unlock()
	}
}

func (n *PresenceNode) nodeKey(id string) string { return n.prefix + ":presence-node:{" + id + "}" }

func (n *PresenceNode) stripe(ref string) *sync.Mutex {
	h := fnv.New32a()
	_, _ = h.Write([]byte(ref))
	return &n.stripes[h.Sum32()%presenceStripes]
}

// room returns this node's state of ref; the caller holds ref's stripe.
func (n *PresenceNode) room(ref string) *presenceRoom {
	n.stateMu.Lock()
	defer n.stateMu.Unlock()
	r := n.rooms[ref]
	if r == nil {
		r = &presenceRoom{byID: map[string]map[string]int{}, listed: map[string]bool{}}
		n.rooms[ref] = r
	}
	return r
}

// tidy forgets ref's state when nothing is counted or listed any more; the caller holds ref's
// stripe.
func (n *PresenceNode) tidy(ref string, r *presenceRoom) {
	n.stateMu.Lock()
	defer n.stateMu.Unlock()
	if r.empty() {
		delete(n.rooms, ref)
	}
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
	lk := n.stripe(ref)
	lk.Lock()
	defer lk.Unlock()
	r := n.room(ref)
	defer n.tidy(ref, r)
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
	lk := n.stripe(ref)
	lk.Lock()
	defer lk.Unlock()
	r := n.room(ref)
	defer n.tidy(ref, r)
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

// dropStale forgets the earlier ids nothing is counted, listed or owed under any more.
func (n *PresenceNode) dropStale() {
	n.stateMu.Lock()
	defer n.stateMu.Unlock()
	if len(n.stale) == 0 {
		return
	}
	used := map[string]bool{}
	for _, r := range n.rooms {
		for id, m := range r.byID {
			if len(m) > 0 {
				used[id] = true
			}
		}
		for id, l := range r.listed {
			if l {
				used[id] = true
			}
		}
	}
	for _, o := range n.owed {
		used[o.id] = true
	}
	if !slices.ContainsFunc(n.stale, func(id string) bool { return !used[id] }) {
		return
	}
	// A copy: Leave iterates the slice it read without the lock.
	n.stale = slices.DeleteFunc(slices.Clone(n.stale), func(id string) bool { return !used[id] })
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

// redisNowMs is Lua for Redis's clock in ms, as now.
const redisNowMs = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

var (
	// heartbeatScript: KEYS live nodes; ARGV id, first. 0 when a known id is no longer live
	// (it was claimed dead).
	heartbeatScript = redis.NewScript(redisNowMs + `
if ARGV[2] ~= '1' and not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[1])
return 1
`)

	// claimScript: KEYS live nodes, dead nodes; ARGV timeout, how long a dead id is kept (ms).
	// Moves the nodes unseen for timeout to the dead set and returns the dead set.
	claimScript = redis.NewScript(redisNowMs + `
local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. tostring(now - tonumber(ARGV[1])))
for _, id in ipairs(stale) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], now, id)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. tostring(now - tonumber(ARGV[2])))
return redis.call('ZRANGE', KEYS[2], 0, -1)
`)

	// retireScript: KEYS live nodes, dead nodes; ARGV id, dead ("1": hand its counts to the
	// reapers).
	retireScript = redis.NewScript(redisNowMs + `
redis.call('ZREM', KEYS[1], ARGV[1])
if ARGV[2] == '1' then redis.call('ZADD', KEYS[2], now, ARGV[1]) end
return 1
`)
)
