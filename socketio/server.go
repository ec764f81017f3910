// Package socketio is Switchboard's Socket.IO v5 server, on the Engine.IO server of package
// engineio: namespaces, sockets, rooms, broadcasts (emit, to, except, volatile), acks (per
// socket, and broadcast acks with a timeout), binary attachments, connect and event
// middlewares, connection state recovery, both parsers (the default JSON one and
// socket.io-msgpack-parser's, chosen per connection), and the Adapter interface that cluster
// adapters (package adapters) implement.
//
// A socket's work runs on its own queue, served by a pool of warm goroutines (queue.go): events
// of one socket run in order, one at a time, and a handler may block without holding up other
// sockets. Namespaces keep their handlers once, not per socket: a socket costs its fields and
// its rooms, not a set of listeners.
//
// Lock order: Socket.mu is never held while taking another lock but for the engine's send;
// LocalAdapter.mu may be held while taking Namespace.mu; client.mu is taken alone.
//
// It is one package past 2,000 lines because a socket's state is shared by the types users know
// as one: the client decodes and routes, the socket queues and runs, the namespace connects and
// dispatches, the local adapter keeps the socket's rooms under its own lock and delivers, the
// recovery store keeps what a socket missed; splitting them would export their internals. Files
// split by concept: server, client, namespace, socket, broadcast, adapter (+ adapter_local),
// recovery, presence, queue, parser (+ msgpack), args, binary, packet.
package socketio

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/engineio"
)

// Config configures a Server. Zero values take the defaults in brackets.
type Config struct {
	// Engine configures the Engine.IO server (its Open is the Socket.IO server's).
	Engine engineio.Config
	// Parser selects the parsers spoken [auto].
	Parser ParserMode
	// ConnectTimeout closes a connection that joins no namespace in time [45s].
	ConnectTimeout time.Duration
	// RecoveryWindow is how long a dropped socket's session is kept for connection state
	// recovery; 0 turns recovery off.
	RecoveryWindow time.Duration
	// RecoveryMaxBytes bounds the events kept for recovery per namespace [256 MiB].
	RecoveryMaxBytes int64
	// Adapter builds each namespace's adapter [MemoryAdapter].
	Adapter AdapterFactory
	// Headers are the handshake headers sockets keep (lower-case names), e.g. "authorization".
	Headers []string
	// MaxNamespaces bounds the namespaces one connection joins at once [32].
	MaxNamespaces int
	// MaxRefusedConnects is how many refused CONNECTs a connection may make before it is
	// closed [32]. A refused CONNECT keeps nothing.
	MaxRefusedConnects int
	// MaxQueue bounds the events waiting on one socket's queue; more are refused
	// (Namespace.OnOverflow) [1024].
	MaxQueue int
	// Logger gets what the server cannot hand to anyone else (a panic in a handler, an encode
	// error).
	Logger zerolog.Logger
	// OnProtocolError and OnRefusedConnect are told of a connection closed for breaking the
	// protocol and of a refused CONNECT (for metrics); nil = not told.
	OnProtocolError  func()
	OnRefusedConnect func()
	// OnConnOpen and OnConnClose are told of every Engine.IO connection opened and closed (with
	// the engine's reason), and OnTraffic of every Socket.IO message a connection carries (in:
	// from the client; bytes: its payload's length), for the admin UI's aggregated events; nil =
	// not told. They run on the connection's goroutines and must not block.
	OnConnOpen  func(c *engineio.Conn)
	OnConnClose func(c *engineio.Conn, reason string)
	OnTraffic   func(in bool, bytes int)
}

func (c *Config) withDefaults() {
	if c.Parser == "" {
		c.Parser = ParserAuto
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 45 * time.Second
	}
	if c.RecoveryMaxBytes <= 0 {
		c.RecoveryMaxBytes = 256 << 20
	}
	if c.Adapter == nil {
		c.Adapter = MemoryAdapter
	}
	if c.MaxNamespaces <= 0 {
		c.MaxNamespaces = 32
	}
	if c.MaxRefusedConnects <= 0 {
		c.MaxRefusedConnects = 32
	}
	if c.MaxQueue <= 0 {
		c.MaxQueue = 1024
	}
	if c.OnProtocolError == nil {
		c.OnProtocolError = func() {}
	}
	if c.OnRefusedConnect == nil {
		c.OnRefusedConnect = func() {}
	}
	for i, h := range c.Headers {
		c.Headers[i] = strings.ToLower(h)
	}
}

// Server is a Socket.IO server. Build it with NewServer, add its namespaces with Of, then serve
// it (it is an http.Handler for the engine's path).
type Server struct {
	cfg     Config
	engine  *engineio.Server
	workers *workers
	ctx     context.Context
	cancel  context.CancelFunc

	closeOnce sync.Once

	mu      sync.RWMutex
	nsps    map[string]*Namespace
	dynamic []dynamicNamespace
	setups  map[string]chan struct{} // dynamic namespaces being set up, closed when they are
}

type dynamicNamespace struct {
	match func(name string) bool
	setup func(*Namespace)
}

// NewServer returns a server with no namespace yet.
func NewServer(cfg Config) (*Server, error) {
	cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	srv := &Server{cfg: cfg, workers: newWorkers(), nsps: map[string]*Namespace{}, ctx: ctx, cancel: cancel}
	ecfg := cfg.Engine
	ecfg.Open = srv.open
	engine, err := engineio.NewServer(ecfg)
	if err != nil {
		cancel()
		return nil, err
	}
	srv.engine = engine
	return srv, nil
}

// ServeHTTP serves the Engine.IO requests of every namespace.
func (srv *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { srv.engine.ServeHTTP(w, r) }

// Engine is the Engine.IO server underneath.
func (srv *Server) Engine() *engineio.Server { return srv.engine }

// Connections is the number of open Engine.IO connections.
func (srv *Server) Connections() int { return srv.engine.Count() }

// Of returns the namespace name, creating it (with its adapter) the first time.
func (srv *Server) Of(name string) (*Namespace, error) {
	if name == "" {
		name = "/"
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return srv.ofLocked(name)
}

func (srv *Server) ofLocked(name string) (*Namespace, error) {
	if n := srv.nsps[name]; n != nil {
		return n, nil
	}
	n := &Namespace{srv: srv, name: name, sockets: map[string]*Socket{}}
	a, err := srv.cfg.Adapter(n)
	if err != nil {
		return nil, fmt.Errorf("socketio: adapter of %s: %w", name, err)
	}
	n.adapter = a
	if l, ok := a.(interface{ Local() *LocalAdapter }); ok {
		n.local = l.Local()
	}
	if n.local == nil {
		return nil, fmt.Errorf("socketio: the adapter of %s has no LocalAdapter", name)
	}
	if r, ok := a.(Recoverer); ok && cfgRecovers(srv.cfg) {
		n.recovers = r.Recovers()
	}
	srv.nsps[name] = n
	return n, nil
}

func cfgRecovers(c Config) bool { return c.RecoveryWindow > 0 }

// Local implements the accessor Of looks for on adapters.
func (a *LocalAdapter) Local() *LocalAdapter { return a }

// OfFunc serves, beside the namespaces created with Of, every namespace whose name match accepts:
// the first client to connect to one creates it, and setup configures it then.
func (srv *Server) OfFunc(match func(name string) bool, setup func(*Namespace)) {
	srv.mu.Lock()
	srv.dynamic = append(srv.dynamic, dynamicNamespace{match, setup})
	srv.mu.Unlock()
}

// Namespace returns the namespace name if it exists, without creating it.
func (srv *Server) Namespace(name string) *Namespace {
	srv.mu.RLock()
	defer srv.mu.RUnlock()
	return srv.nsps[name]
}

// Namespaces lists the namespaces, by name.
func (srv *Server) Namespaces() []*Namespace {
	srv.mu.RLock()
	defer srv.mu.RUnlock()
	return slices.SortedFunc(maps.Values(srv.nsps), func(a, b *Namespace) int { return strings.Compare(a.name, b.name) })
}

// namespaceFor is the namespace a CONNECT asks for: an existing one, or a dynamic one created
// now; nil when there is none.
// A dynamic namespace is usable once its setup returned: a CONNECT that finds it being set up (by
// another client's CONNECT) waits, so that no socket connects before its middlewares are there.
func (srv *Server) namespaceFor(name string) *Namespace {
	srv.mu.RLock()
	n := srv.nsps[name]
	setup := srv.setups[name]
	dyn := srv.dynamic
	srv.mu.RUnlock()
	if setup != nil {
		<-setup
	}
	if n != nil || len(dyn) == 0 {
		return n
	}
	for _, d := range dyn {
		if !d.match(name) {
			continue
		}
		srv.mu.Lock()
		n, setup := srv.nsps[name], srv.setups[name]
		var done chan struct{}
		if n == nil {
			var err error
			if n, err = srv.ofLocked(name); err != nil {
				srv.mu.Unlock()
				srv.logf("create namespace", err)
				return nil
			}
			done = make(chan struct{})
			if srv.setups == nil {
				srv.setups = map[string]chan struct{}{}
			}
			srv.setups[name] = done
		}
		srv.mu.Unlock()
		switch {
		case done != nil:
			defer func() {
				srv.mu.Lock()
				delete(srv.setups, name)
				srv.mu.Unlock()
				close(done)
			}()
			d.setup(n)
		case setup != nil:
			<-setup
		}
		return n
	}
	return nil
}

// Close shuts the server down: every socket is disconnected with "server shutting down" (its
// session kept for recovery, so that its client recovers on another node or after a restart),
// the connections are closed (clients see their transport close and reconnect), and the
// adapters are closed. It waits for what clients are still owed until ctx ends. Calls after the
// first wait for it and do nothing more.
func (srv *Server) Close(ctx context.Context) {
	srv.closeOnce.Do(func() { srv.close(ctx) })
}

func (srv *Server) close(ctx context.Context) {
	for _, n := range srv.Namespaces() {
		for _, s := range n.localSockets() {
			s.onclose(ReasonServerShutdown)
		}
	}
	srv.engine.Shutdown(ctx)
	srv.workers.close()
	srv.cancel()
	for _, n := range srv.Namespaces() {
		if err := n.adapter.Close(); err != nil {
			srv.logf("close adapter", err)
		}
	}
}

func (srv *Server) logf(what string, err error) {
	srv.cfg.Logger.Error().Err(err).Str("component", "socketio").Msg(what)
}

func (srv *Server) logEncodeError(p *Packet, err error) {
	srv.cfg.Logger.Error().Err(err).Str("component", "socketio").Str("nsp", p.Nsp).Msg("encode packet")
}

func (srv *Server) logPanic(s *Socket, r any) {
	srv.cfg.Logger.Error().Str("component", "socketio").Str("nsp", s.nsp.name).Str("sid", s.id).
		Str("panic", fmt.Sprint(r)).Msg("handler panicked")
}

// newID is a socket or session id: 20 characters of URL-safe base64 from 15 random bytes, the
// shape of Node's (the sharded Redis adapter tells socket ids from room names by that length).
func newID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
