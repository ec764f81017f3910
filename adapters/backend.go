package adapters

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/socketio"
)

// Config selects and configures a backend.
type Config struct {
	// Name is memory, redis, redis-sharded or redis-streams.
	Name string
	// RedisURL is used by the Redis backends (see ConnConfig.URL for its forms).
	RedisURL string
	// Prefix names the Redis channels, streams and keys; empty is "socket.io", the default of
	// Node's adapters, which a cluster shared with Node servers must keep. Give each kind of
	// Redis adapter its own prefix when several share a Redis: their channel names overlap.
	Prefix string
	// RecoveryWindow is the server's connection state recovery window; only redis-streams
	// keeps sessions across nodes (memory keeps them in the server, redis and redis-sharded
	// cannot, as in Node).
	RecoveryWindow time.Duration
	// Logger gets the backend's outage and recovery lines and what no caller can be told.
	Logger zerolog.Logger
}

// Backend is a room/broadcast backend: the adapter factory of every namespace of a server, its
// presence, and what it holds open.
type Backend interface {
	// Adapter is the server's socketio.Config.Adapter.
	Adapter() socketio.AdapterFactory
	// Presence is the presence store called name (one per name, shared by every caller).
	Presence(name string) socketio.Presence
	// Redis is the command client of the Redis backends (nil for memory); it fails fast while
	// Redis is down.
	Redis() redis.UniversalClient
	// Status is the health of the outside dependency; false when there is none (memory).
	Status() (Status, bool)
	// Close releases the connections the backend holds; the server calls it after it closed
	// its namespaces' adapters.
	Close() error
}

// New returns the backend named in cfg; a Redis backend fails when Redis does not answer.
func New(cfg Config) (Backend, error) {
	switch cfg.Name {
	case "", "memory":
		return &memoryBackend{presence: presences{}}, nil
	case "redis":
		return newRedisBackend(cfg, false)
	case "redis-sharded":
		return newRedisBackend(cfg, true)
	case "redis-streams":
		// Written in redis_streams.go (its own helper); until then streams_stub.go refuses.
		return newStreamsBackend(cfg)
	default:
		return nil, fmt.Errorf("adapters: unknown adapter %q", cfg.Name)
	}
}

// prefixOf is the configured prefix or Node's default.
func prefixOf(cfg Config) string {
	if cfg.Prefix == "" {
		return "socket.io"
	}
	return cfg.Prefix
}

// presences gives one presence store per name.
type presences struct {
	mu sync.Mutex
	m  map[string]socketio.Presence
}

func (p *presences) get(name string, make func() socketio.Presence) socketio.Presence {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]socketio.Presence{}
	}
	if pr := p.m[name]; pr != nil {
		return pr
	}
	pr := make()
	p.m[name] = pr
	return pr
}

// memoryBackend is one node: socketio's own adapter and presence.
type memoryBackend struct {
	presence presences
}

func (*memoryBackend) Adapter() socketio.AdapterFactory { return socketio.MemoryAdapter }

func (b *memoryBackend) Presence(name string) socketio.Presence {
	return b.presence.get(name, func() socketio.Presence { return socketio.NewMemoryPresence() })
}

func (*memoryBackend) Redis() redis.UniversalClient { return nil }
func (*memoryBackend) Status() (Status, bool)       { return Status{}, false }
func (*memoryBackend) Close() error                 { return nil }

// redisHold is what both Redis backends hold and the Backend methods that only read it: the
// connection, the prefix and presence on Redis (presence_redis.go).
type redisHold struct {
	log      zerolog.Logger
	conn     *Conn
	prefix   string
	presence nodePresence
}

// Presence implements Backend: presence on Redis, cluster-wide, under the backend's prefix.
func (h *redisHold) Presence(name string) socketio.Presence {
	return h.presence.get(h.conn, h.prefix, h.log, name)
}

// Redis implements Backend.
func (h *redisHold) Redis() redis.UniversalClient { return h.conn.Client() }

// Status implements Backend.
func (h *redisHold) Status() (Status, bool) { return h.conn.Status(), true }

// release closes presence, then the connection.
func (h *redisHold) release() error { return errors.Join(h.presence.close(), h.conn.Close()) }

// redisBackend is the redis (classic pub/sub) and redis-sharded backends: one connection, one
// subscriber shared by every namespace, and the node counts that hold a recovery back until
// every node listens again (node_counter.go).
type redisBackend struct {
	redisHold
	cfg     Config
	sharded bool
	classic *classicSub
	shard   *shardSub

	nodes *nodeCounter // by the request channel (redis) or the main channel (redis-sharded)

	ctx    context.Context // ends at Close: answers to other nodes and waits for subscriptions
	cancel context.CancelFunc
}

func newRedisBackend(cfg Config, sharded bool) (*redisBackend, error) {
	conn, err := DialRedis(ConnConfig{URL: cfg.RedisURL, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &redisBackend{
		redisHold: redisHold{log: cfg.Logger.With().Str("component", "adapter").Logger(), conn: conn, prefix: prefixOf(cfg)},
		cfg:       cfg, sharded: sharded, ctx: ctx, cancel: cancel, nodes: newNodeCounter(conn, sharded),
	}
	if sharded {
		b.shard = newShardSub(conn)
	} else {
		b.classic = newClassicSub(conn)
	}
	return b, nil
}

// Adapter implements Backend.
func (b *redisBackend) Adapter() socketio.AdapterFactory {
	if b.sharded {
		return b.newSharded
	}
	return b.newClassic
}

// Close implements Backend.
func (b *redisBackend) Close() error {
	b.cancel()
	b.nodes.close()
	if b.classic != nil {
		b.classic.close()
	}
	if b.shard != nil {
		b.shard.close()
	}
	return b.release()
}
