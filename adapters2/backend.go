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

// redisBackend is the redis (classic pub/sub) and redis-sharded backends: one connection, one
// subscriber shared by every namespace, and the server counts it keeps to hold a recovery back
// until every node listens again.
type redisBackend struct {
	cfg     Config
	log     zerolog.Logger
	prefix  string
	sharded bool
	conn    *Conn
	classic *classicSub
	shard   *shardSub

	presence nodePresence

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	hold   func()

	mu      sync.Mutex
	counted map[string]int64 // the channel NUMSUB counts nodes by → last count seen while up
}

func newRedisBackend(cfg Config, sharded bool) (*redisBackend, error) {
	conn, err := DialRedis(ConnConfig{URL: cfg.RedisURL, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &redisBackend{
		cfg: cfg, log: cfg.Logger.With().Str("component", "adapter").Logger(), prefix: prefixOf(cfg),
		sharded: sharded, conn: conn, ctx: ctx, cancel: cancel, done: make(chan struct{}),
		counted: map[string]int64{},
	}
	if sharded {
		b.shard = newShardSub(conn)
	} else {
		b.classic = newClassicSub(conn)
	}
	b.hold = conn.HoldRecovery(b.everyNodeBack)
	go b.countNodes()
	return b, nil
}

// Adapter implements Backend.
func (b *redisBackend) Adapter() socketio.AdapterFactory {
	if b.sharded {
		return b.newSharded
	}
	return b.newClassic
}

// Presence implements Backend: presence on Redis, cluster-wide (presence_redis.go).
func (b *redisBackend) Presence(name string) socketio.Presence {
	return b.presence.get(b.conn, b.prefix, b.log, name)
}

// Redis implements Backend.
func (b *redisBackend) Redis() redis.UniversalClient { return b.conn.Client() }

// Status implements Backend.
func (b *redisBackend) Status() (Status, bool) { return b.conn.Status(), true }

// Close implements Backend.
func (b *redisBackend) Close() error {
	b.cancel()
	<-b.done
	b.hold()
	if b.classic != nil {
		b.classic.close()
	}
	if b.shard != nil {
		b.shard.close()
	}
	return errors.Join(b.presence.close(), b.conn.Close())
}

// countChannel registers (or, with add false, forgets) the channel by which NUMSUB counts the
// nodes of a namespace.
func (b *redisBackend) countChannel(channel string, add bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if add {
		if _, ok := b.counted[channel]; !ok {
			b.counted[channel] = 0
		}
	} else {
		delete(b.counted, channel)
	}
}

// countNodes keeps, every second while Redis is up, how many nodes listen on each namespace.
func (b *redisBackend) countNodes() {
	defer close(b.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
		if !b.conn.Ready() {
			continue
		}
		counts, err := b.numSub(b.ctx)
		if err != nil {
			continue
		}
		b.mu.Lock()
		for ch, n := range counts {
			if _, ok := b.counted[ch]; ok {
				b.counted[ch] = n
			}
		}
		b.mu.Unlock()
	}
}

func (b *redisBackend) numSub(ctx context.Context) (map[string]int64, error) {
	b.mu.Lock()
	channels := make([]string, 0, len(b.counted))
	for ch := range b.counted {
		channels = append(channels, ch)
	}
	b.mu.Unlock()
	return b.conn.NumSub(ctx, b.sharded, channels...)
}

// everyNodeBack is the recovery check: as many nodes listen on each namespace as before the
// outage. A node that died meanwhile holds the recovery back until the connection's bound (3 s).
func (b *redisBackend) everyNodeBack(ctx context.Context) bool {
	counts, err := b.numSub(ctx)
	if err != nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch, before := range b.counted {
		if counts[ch] < before {
			return false
		}
	}
	return true
}
