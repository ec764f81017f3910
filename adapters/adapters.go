// Package adapters builds the room/broadcast backend shared by every namespace of a server:
// memory (the default, one node) and, later, the Redis adapters for several nodes.
package adapters

import (
	"fmt"

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
	Logger   zerolog.Logger
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
	default:
		return nil, fmt.Errorf("adapters: unknown adapter %q", cfg.Name)
	}
}
