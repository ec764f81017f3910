// Package adapters builds the room/broadcast backend shared by every namespace of a server:
// memory (the default, one node), redis (Redis pub/sub) and redis-streams (Redis Streams, which
// also recovers sessions across nodes), both wire-compatible with Node's Socket.IO adapters.
package adapters

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

// Config selects and configures a backend.
type Config struct {
	// Name is memory, redis or redis-streams.
	Name string
	// RedisURL is used by the Redis backends.
	RedisURL string
	// Recovery says whether connection state recovery is on; the backend must then keep sessions
	// and missed packets.
	Recovery bool
	// Prefix names the Redis channels, streams and keys; empty is "socket.io", the default of
	// Node's adapters, which a cluster shared with Node servers must keep.
	Prefix string
	Logger zerolog.Logger
	// Direct, when set, is how the memory and redis backends write broadcasts to connections the
	// server writes to itself (see Direct). The redis-streams backend delivers the library's way
	// (its in-memory part also keeps the packets sessions recover).
	Direct Direct
}

// Backend is a room/broadcast backend: the library's adapter constructor plus what it holds open.
type Backend interface {
	// Constructor is handed to the Socket.IO server's options.
	Constructor() socket.AdapterConstructor
	// Close releases connections the backend holds; the server calls it after its sockets closed.
	Close() error
}

// New returns the backend named in cfg.
func New(cfg Config) (Backend, error) {
	switch cfg.Name {
	case "", "memory":
		return NewMemory(cfg), nil
	case "redis":
		return NewRedis(cfg)
	case "redis-streams":
		return NewRedisStreams(cfg)
	default:
		return nil, fmt.Errorf("adapters: unknown adapter %q", cfg.Name)
	}
}

// Status is the health of what a backend depends on, for /healthz and metrics.
type Status struct {
	// Redis is "up" or "down".
	Redis string `json:"redis"`
	// DownSince is when the current outage began; zero while Redis is up.
	DownSince time.Time `json:"downSince,omitzero"`
	// Outages counts the outages since the start.
	Outages uint64 `json:"outages"`
	// Failures counts the Redis commands and dials that failed.
	Failures uint64 `json:"failures"`
}

// Reporter is implemented by backends that depend on an outside service (the Redis ones).
type Reporter interface {
	Status() Status
}
