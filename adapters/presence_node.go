package adapters

// presence_node.go: a node's part of presence on Redis (presence_redis.go): its id and
// heartbeat, the claim of dead nodes and the reaping of what they counted, the Leaves it owes.

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

// lockRoom takes ref's stripe and returns this node's state of ref; done tidies it and lets the
// stripe go.
func (n *PresenceNode) lockRoom(ref string) (r *presenceRoom, done func()) {
	lk := n.stripe(ref)
	lk.Lock()
	r = n.room(ref)
	return r, func() {
		n.tidy(ref, r)
		lk.Unlock()
	}
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

// nodePresence is a Redis backend's presence: one PresenceNode, made at the first Presence call
// (a node that never counts anyone does not heartbeat), closed with the backend.
type nodePresence struct {
	mu   sync.Mutex
	node *PresenceNode
}

// get returns the presence called name on conn, keys under prefix.
func (p *nodePresence) get(conn *Conn, prefix string, log zerolog.Logger, name string) socketio.Presence {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.node == nil {
		p.node = NewPresenceNode(conn, PresenceOptions{Prefix: prefix, Logger: log})
	}
	return p.node.Presence(name)
}

// close closes the node, if there is one; the backend closes its connection after.
func (p *nodePresence) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.node == nil {
		return nil
	}
	return p.node.Close()
}
