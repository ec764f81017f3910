package namespaces

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRelayTTL is how long a Redis relay room outlives the last node that touched it.
const DefaultRelayTTL = 10 * time.Minute

// RedisRelayState is the relay state shared by every node on one Redis (or Redis Cluster). Per
// room it keeps two hashes, prefix:{room}:state (one field per (user, key): the user id's length,
// ":", the user id, then the key; its value the event, a space, then the JSON data — an event
// name holds no space) and prefix:{room}:keys (user id → how many keys the user holds); the braces keep a room's keys in one Cluster slot, so that each
// operation is one Lua script on one shard and the 100-key bound is atomic across nodes.
//
// Bounded: at most MaxRelayKeys fields per user per room; a user's fields go when the user
// leaves the room (DropUser), both hashes when the room empties (DropRoom). Both carry a TTL,
// refreshed by every write and by Touch (every TTL/3 for rooms with members on a live node), as
// a backstop for a cluster that died before it could drop them.
type RedisRelayState struct {
	rdb    redis.UniversalClient
	prefix string
	ttl    time.Duration
}

var _ RelayState = (*RedisRelayState)(nil)

// NewRedisRelayState keeps relay state under keys starting with prefix, expiring ttl after the
// last write or Touch (DefaultRelayTTL when ttl is 0). prefix holds no '{' or '}'.
func NewRedisRelayState(rdb redis.UniversalClient, prefix string, ttl time.Duration) *RedisRelayState {
	if strings.ContainsAny(prefix, "{}") {
		panic("namespaces: NewRedisRelayState expects a prefix without braces")
	}
	if ttl <= 0 {
		ttl = DefaultRelayTTL
	}
	if ttl < time.Second {
		panic("namespaces: NewRedisRelayState expects a TTL of a second or more")
	}
	return &RedisRelayState{rdb: rdb, prefix: prefix, ttl: ttl}
}

func (r *RedisRelayState) keys(room string) []string {
	base := r.prefix + ":{" + room + "}:"
	return []string{base + "state", base + "keys"}
}

// relayField is the state hash's field of (user, key): the length prefix keeps any user id and
// key apart, and lets DropUser find a user's fields by prefix.
func relayField(user, key string) string {
	return strconv.Itoa(len(user)) + ":" + user + key
}

func relayUserPrefix(user string) string { return strconv.Itoa(len(user)) + ":" + user }

// parseRelayField splits a state field back into its user and key.
func parseRelayField(f string) (user, key string, ok bool) {
	colon := strings.IndexByte(f, ':')
	if colon < 1 {
		return "", "", false
	}
	n, err := strconv.Atoi(f[:colon])
	rest := f[colon+1:]
	if err != nil || n < 0 || n > len(rest) {
		return "", "", false
	}
	return rest[:n], rest[n:], true
}

func (r *RedisRelayState) ttlMillis() int64 { return r.ttl.Milliseconds() }

// admitScript: KEYS state, keys; ARGV field, user, data, max, ttl ms. 0 = the user's keys are
// full.
var admitScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  local n = tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0')
  if n >= tonumber(ARGV[4]) then return 0 end
  redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return 1`)

// updateScript: KEYS state, keys; ARGV ttl ms, then field, data pairs. It writes only the fields
// that exist and returns the (0-based) indexes of the pairs it did not write.
var updateScript = redis.NewScript(`
local missing = {}
for i = 2, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  else
    missing[#missing + 1] = (i - 2) / 2
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return missing`)

// dropUserScript: KEYS state, keys; ARGV the user's field prefix, user.
var dropUserScript = redis.NewScript(`
local p = ARGV[1]
local del = {}
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(f, 1, #p) == p then del[#del + 1] = f end
end
for i = 1, #del, 500 do
  redis.call('HDEL', KEYS[1], unpack(del, i, math.min(i + 499, #del)))
end
redis.call('HDEL', KEYS[2], ARGV[2])
return #del`)

// relayStored is a value as the state hash holds it.
func relayStored(v RelayValue) []byte {
	b := make([]byte, 0, len(v.Event)+1+len(v.Data))
	b = append(b, v.Event...)
	b = append(b, ' ')
	return append(b, v.Data...)
}

// Admit implements RelayState.
func (r *RedisRelayState) Admit(ctx context.Context, room string, v RelayValue) error {
	n, err := admitScript.Run(ctx, r.rdb, r.keys(room),
		relayField(v.User, v.Key), v.User, relayStored(v), MaxRelayKeys, r.ttlMillis()).Int64()
	if err != nil {
		return fmt.Errorf("relay: admit a key in %q: %w", room, err)
	}
	if n == 0 {
		return ErrRelayKeys
	}
	return nil
}

// Update implements RelayState: one script per room, every room in one pipeline.
func (r *RedisRelayState) Update(ctx context.Context, updates []RelayUpdate) ([]RelayMissing, error) {
	if len(updates) == 0 {
		return nil, nil
	}
	args := make([][]any, len(updates))
	for i, u := range updates {
		a := make([]any, 0, 1+2*len(u.Values))
		a = append(a, r.ttlMillis())
		for _, v := range u.Values {
			a = append(a, relayField(v.User, v.Key), relayStored(v))
		}
		args[i] = a
	}
	cmds := make([]*redis.Cmd, len(updates))
	_, _ = r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, u := range updates {
			cmds[i] = updateScript.EvalSha(ctx, p, r.keys(u.Room), args[i]...)
		}
		return nil
	})
	var missing []RelayMissing
	var firstErr error
	for i, c := range cmds {
		if redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
			c = updateScript.Run(ctx, r.rdb, r.keys(updates[i].Room), args[i]...)
		}
		idx, err := c.Int64Slice()
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("relay: update the state of %q: %w", updates[i].Room, err)
			}
			continue
		}
		for _, j := range idx {
			if j >= 0 && int(j) < len(updates[i].Values) {
				v := updates[i].Values[j]
				missing = append(missing, RelayMissing{Room: updates[i].Room, User: v.User, Key: v.Key})
			}
		}
	}
	return missing, firstErr
}

// State implements RelayState.
func (r *RedisRelayState) State(ctx context.Context, room string) ([]RelayValue, error) {
	fields, err := r.rdb.HGetAll(ctx, r.keys(room)[0]).Result()
	if err != nil {
		return nil, fmt.Errorf("relay: read the state of %q: %w", room, err)
	}
	out := make([]RelayValue, 0, len(fields))
	for f, stored := range fields {
		user, key, ok := parseRelayField(f)
		event, data, found := strings.Cut(stored, " ")
		if !ok || !found || !json.Valid([]byte(data)) {
			continue
		}
		out = append(out, RelayValue{User: user, Key: key, Event: event, Data: json.RawMessage(data)})
	}
	return out, nil
}

// DropUser implements RelayState.
func (r *RedisRelayState) DropUser(ctx context.Context, room, user string) error {
	if err := dropUserScript.Run(ctx, r.rdb, r.keys(room), relayUserPrefix(user), user).Err(); err != nil {
		return fmt.Errorf("relay: drop a user's state in %q: %w", room, err)
	}
	return nil
}

// DropRoom implements RelayState.
func (r *RedisRelayState) DropRoom(ctx context.Context, room string) error {
	if err := r.rdb.Del(ctx, r.keys(room)...).Err(); err != nil {
		return fmt.Errorf("relay: drop the state of %q: %w", room, err)
	}
	return nil
}

// Touch implements RelayState.
func (r *RedisRelayState) Touch(ctx context.Context, rooms []string) error {
	if len(rooms) == 0 {
		return nil
	}
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, room := range rooms {
			for _, k := range r.keys(room) {
				p.PExpire(ctx, k, r.ttl)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("relay: touch %d rooms: %w", len(rooms), err)
	}
	return nil
}

// TouchEvery implements RelayState.
func (r *RedisRelayState) TouchEvery() time.Duration { return r.ttl / 3 }
