package namespaces

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/socketio"
)

// Timings of the per-room lock that orders appends across the cluster.
const (
	historyLockTTL     = 5 * time.Second // a crashed holder blocks its room at most this long
	historyLockMinWait = time.Millisecond
	historyLockMaxWait = 20 * time.Millisecond
	historyStripes     = 64
	// lockFence is how late after it was sent Redis may still run a lock request.
	lockFence = 250 * time.Millisecond
)

// releaseScript deletes the lock only if this holder still owns it.
var releaseScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end
return 0`)

// RedisHistory is the chat history shared by every node on one Redis. Per room it keeps a
// counter (INCR gives the ids "1", "2", …) and a list of the newest perRoom messages as JSON
// (RPUSH then LTRIM). Keys are prefix:{room}:seq, :msgs and :lock; the braces keep a room's
// keys in one Redis Cluster slot.
//
// Order across nodes: Append holds a per-room lock in Redis (SET NX PX) from taking the id
// until deliver returned. deliver broadcasts through the adapter, which publishes to Redis
// before it returns (and delivers to this node's sockets after), so Redis publishes a room's
// messages in id order, and every node reads its subscription in that order. What is not covered: on the sending node the local
// copy of message n could overtake message n-1 from another node if this node's subscription
// lags behind by more than the lock hand-over; and if a holder stalls longer than the lock's TTL
// (5 s) the next holder may go ahead.
type RedisHistory struct {
	rdb     redis.UniversalClient
	prefix  string
	perRoom int
	stripes [historyStripes]sync.Mutex // spares Redis this node's own lock contention

	stale    sync.Map     // lock key → token of this node's lock whose release failed
	offset   atomic.Int64 // Redis's clock less this node's, in ms, as the last lock measured it
	measured atomic.Bool  // offset holds a measure
}

var _ History = (*RedisHistory)(nil)

// NewRedisHistory keeps perRoom messages per room under keys starting with prefix.
func NewRedisHistory(rdb redis.UniversalClient, prefix string, perRoom int) *RedisHistory {
	if perRoom < 0 {
		panic("namespaces: NewRedisHistory expects perRoom >= 0")
	}
	return &RedisHistory{rdb: rdb, prefix: prefix, perRoom: perRoom}
}

func (h *RedisHistory) key(room, kind string) string {
	return h.prefix + ":{" + room + "}:" + kind
}

// Append implements History.
func (h *RedisHistory) Append(ctx context.Context, msg Message, deliver func(Message) error) (Message, error) {
	stripe := &h.stripes[stripeOf(msg.Room)]
	stripe.Lock()
	defer stripe.Unlock()

	unlock, err := h.lock(ctx, msg.Room)
	if err != nil {
		return Message{}, err
	}
	defer unlock()

	seq, err := h.rdb.Incr(ctx, h.key(msg.Room, "seq")).Result()
	if err != nil {
		return Message{}, unavailable(fmt.Sprintf("next id of %q", msg.Room), err)
	}
	msg.ID = strconv.FormatInt(seq, 10)
	// Delivered first: a message the cluster did not take is not kept either (its id is simply
	// never seen, which keeps ids unique and increasing).
	if err := deliver(msg); err != nil {
		return Message{}, err
	}
	if h.perRoom > 0 {
		data, err := json.Marshal(msg)
		if err != nil {
			return Message{}, fmt.Errorf("history: encode message: %w", err)
		}
		list := h.key(msg.Room, "msgs")
		// A store that fails once the message was delivered leaves it out of the history but
		// is no failure of the send: every member got it, and a sender told "unavailable"
		// would send it again (Redis failing in that instant loses the history's recent part
		// anyway, or keeps it when a stalled Redis runs the write late).
		_, _ = h.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.RPush(ctx, list, data)
			p.LTrim(ctx, list, int64(-h.perRoom), -1)
			return nil
		})
	}
	return msg, nil
}

// unavailable wraps a failed Redis call: while Redis is away the history cannot take or give
// anything, which the client is told as "unavailable" (try again), not as an internal error.
func unavailable(what string, err error) error {
	return fmt.Errorf("history: %s: %w: %w", what, socketio.ErrUnavailable, err)
}

// lock takes the room's lock in Redis, waiting for it as long as ctx allows. The SET is fenced
// (lockScript): a lock request that reached a Redis that was stopped (SIGSTOP, a stall) and
// runs only when it resumes, long after this node gave up on it, takes nothing; it used to
// take the lock for its TTL, and every node's chat:send to the room waited 5 s after the
// outage. A lock whose release failed is taken over by this node's next append to the room
// (the stripe keeps this node's appends to a room one at a time, so it is no one's).
func (h *RedisHistory) lock(ctx context.Context, room string) (func(), error) {
	key := h.key(room, "lock")
	token := rand.Text() // tells this holder from the next one when the lock expired meanwhile
	stale, _ := h.stale.LoadAndDelete(key)
	staleToken, _ := stale.(string)
	wait := historyLockMinWait
	for {
		ok, err := h.setLock(ctx, key, token, staleToken)
		if err != nil {
			if staleToken != "" {
				h.stale.Store(key, staleToken)
			}
			return nil, unavailable(fmt.Sprintf("lock %q", room), err)
		}
		if ok {
			return func() {
				// The caller's ctx may be done by now; the release must still happen.
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
				defer cancel()
				if releaseScript.Run(rctx, h.rdb, []string{key}, token).Err() != nil {
					h.stale.Store(key, token)
				}
			}, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("history: lock %q: %w", room, ctx.Err())
		case <-t.C:
		}
		wait = min(wait*2, historyLockMaxWait)
	}
}

// lockScript sets KEYS[1] to ARGV[1] for ARGV[2] ms if it is free or holds ARGV[4] (a lock of
// this node's whose release failed), unless Redis runs it after ARGV[3] (Unix ms on Redis's
// clock; 0: no deadline yet). It answers {1 taken, 0 held by another, -1 too late} and Redis's
// time, from which the node learns its clock's offset.
var lockScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local deadline = tonumber(ARGV[3])
if deadline > 0 and now > deadline then return {-1, now} end
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[4] then return {0, now} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1, now}`)

// errLockLate is a lock request Redis ran after its deadline: it did nothing.
var errLockLate = errors.New("history: redis ran the lock request after its deadline")

// setLock runs lockScript once, fenced lockFence after now on Redis's clock as last measured.
func (h *RedisHistory) setLock(ctx context.Context, key, token, stale string) (bool, error) {
	var deadline int64
	if h.measured.Load() {
		deadline = time.Now().Add(lockFence).UnixMilli() + h.offset.Load()
	}
	sent := time.Now()
	res, err := lockScript.Run(ctx, h.rdb, []string{key}, token, historyLockTTL.Milliseconds(), deadline, stale).Int64Slice()
	if err != nil {
		return false, err
	}
	if len(res) != 2 {
		return false, fmt.Errorf("history: lock answer %v", res)
	}
	if rtt := time.Since(sent); rtt < 50*time.Millisecond { // a slow answer says little of the clock
		h.offset.Store(res[1] - sent.Add(rtt/2).UnixMilli())
		h.measured.Store(true)
	}
	switch res[0] {
	case 1:
		return true, nil
	case -1:
		return false, errLockLate
	}
	return false, nil
}

// Before implements History.
func (h *RedisHistory) Before(ctx context.Context, room, before string, limit int) ([]Message, error) {
	if limit <= 0 || h.perRoom == 0 {
		return []Message{}, nil
	}
	var upper int64 = -1 // no bound
	if before != "" {
		n, err := strconv.ParseInt(before, 10, 64)
		if err != nil || n < 1 {
			return []Message{}, nil // no message is older than something that is not an id
		}
		upper = n
	}
	raw, err := h.rdb.LRange(ctx, h.key(room, "msgs"), 0, -1).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, unavailable(fmt.Sprintf("load %q", room), err)
	}
	out := make([]Message, 0, min(limit, len(raw)))
	// Newest first, so that the limit keeps the newest; reversed at the end.
	for i := len(raw) - 1; i >= 0 && len(out) < limit; i-- {
		var m Message
		if err := json.Unmarshal([]byte(raw[i]), &m); err != nil {
			return nil, fmt.Errorf("history: decode message in %q: %w", room, err)
		}
		if upper >= 0 {
			if id, err := strconv.ParseInt(m.ID, 10, 64); err != nil || id >= upper {
				continue
			}
		}
		out = append(out, m)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

func stripeOf(room string) uint32 {
	f := fnv.New32a()
	_, _ = f.Write([]byte(room))
	return f.Sum32() % historyStripes
}
