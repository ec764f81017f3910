package adapters

import "github.com/zishang520/socket.io/servers/socket/v3"

// Memory keeps rooms in this process only. With recovery on it uses the library's session-aware
// adapter, which keeps disconnected sessions and the packets they missed for the recovery window.
type Memory struct {
	ctor socket.AdapterConstructor
}

var _ Backend = (*Memory)(nil)

// NewMemory returns the in-memory backend.
func NewMemory(cfg Config) *Memory {
	if cfg.Recovery {
		return &Memory{ctor: &socket.SessionAwareAdapterBuilder{}}
	}
	return &Memory{ctor: &socket.AdapterBuilder{}}
}

// Constructor implements Backend.
func (m *Memory) Constructor() socket.AdapterConstructor { return m.ctor }

// Close implements Backend; the library closes each namespace's adapter itself.
func (m *Memory) Close() error { return nil }
