// Package server is Switchboard the product: its configuration, HTTP routes, authentication, the
// HTTP API for backends, metrics, health, limits and lifecycle, around the Socket.IO server of
// package socketio and the namespaces of package namespaces. Start reading at New (what a node
// is made of) and routes (what it serves).
//
// The files come in groups by their prefix: config* (flags and their checks), auth* (JWT and the
// token's lifetime on a socket), api* (the HTTP API: routes, bodies, emit, sockets, stats, the
// OpenAPI document), admin* (the @socket.io/admin-ui namespace, its sessions, stats, development
// streams and the UI's files), hooks* (the app backend's hooks wired to the namespaces), and one
// file each for metrics, limits, health, the landing page and runtime settings.
//
// At ~5,800 lines it is past the ~2,000 the other packages keep to, on purpose: every group reads
// and changes the same node (its namespaces, backend, metrics, limits and lifecycle), so packages
// of their own would export that node's insides to each other for no gain in what depends on
// what; the parts that stand alone are packages already (socketio, namespaces, adapters, hooks).
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/adapters"
	"github.com/switchboard/switchboard/namespaces"
	"github.com/switchboard/switchboard/socketio"
)

// Version is reported by the stats endpoint and the startup log.
const Version = "0.2.0"

// Server is one Switchboard node.
type Server struct {
	cfg     Config
	log     zerolog.Logger
	io      *socketio.Server
	echo    http.Handler // the bare Engine.IO echo server at /engine.io/, in conformance mode only
	backend adapters.Backend
	auth    *Authenticator
	handler http.Handler
	web     *webPage
	// nsps holds the namespaces this node serves by name; the HTTP API looks them up here so that
	// it never creates one.
	nsps    map[string]*socketio.Namespace
	started time.Time
	// ready is false while starting and while draining (/readyz answers 503).
	ready atomic.Bool

	metrics   *Metrics
	admission *admission
	guard     *eventGuard
	relay     *namespaces.Relay
	admin     *admin        // nil without --admin-password-hash (admin.go)
	hooks     *backendHooks // nil without --hook-url (hooks.go)
}

// New builds a node from cfg. It does not listen yet: Run or Serve does.
func New(cfg Config, log zerolog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Conformance {
		cfg = conformanceConfig(cfg)
	}
	s := &Server{cfg: cfg, log: log, started: time.Now(), metrics: NewMetrics(), nsps: map[string]*socketio.Namespace{}}
	auth, err := NewAuthenticator(cfg, log)
	if err != nil {
		return nil, err
	}
	s.auth = auth
	if s.web, err = newWebPage(cfg.WebDir, log); err != nil {
		return nil, err
	}
	s.backend, err = adapters.New(adapters.Config{
		Name:           cfg.Adapter,
		RedisURL:       cfg.RedisURL,
		RecoveryWindow: cfg.RecoveryWindow,
		Logger:         log.With().Str("component", "adapter").Str("adapter", cfg.Adapter).Logger().Hook(s.metrics.adapterErrorHook(cfg.Adapter)),
	})
	if err != nil {
		return nil, fmt.Errorf("server: start adapter: %w", err)
	}
	s.metrics.watchBackend(cfg.Adapter, s.backend)
	s.admin = s.newAdmin() // before the Socket.IO server, which it hands its traffic hooks
	if s.io, err = socketio.NewServer(s.socketConfig()); err != nil {
		_ = s.backend.Close()
		return nil, fmt.Errorf("server: start Socket.IO: %w", err)
	}
	s.setupLimits()
	if s.hooks, err = s.newBackendHooks(); err != nil {
		_ = s.backend.Close()
		return nil, err
	}
	if cfg.Conformance {
		err = s.serveReference()
	} else {
		err = s.serveNamespaces(s.namespaces())
	}
	if err == nil {
		err = s.admin.serve() // /admin, once the namespaces it shows are there (admin.go)
	}
	if err != nil {
		s.hooks.close(context.Background())
		_ = s.backend.Close()
		return nil, err
	}
	s.web.landing = s.landing() // the page at "/" (landing.go)
	s.handler = s.routes()
	return s, nil
}

// namespaces is the explicit list of namespaces this node serves.
func (s *Server) namespaces() []namespaces.Namespace {
	nlog := s.log.With().Str("component", "namespace").Logger()
	fallback := s.hooks.fallback() // nil without hooks: unknown events are ignored
	s.relay = namespaces.NewRelay(nlog, namespaces.RelayConfig{Tick: s.cfg.RelayTick, Observer: s.metrics.relay()},
		s.relayState(), s.backend.Presence("/relay"), fallback)
	chat := namespaces.NewChat(nlog, s.chatHistory(), s.backend.Presence("/chat"), fallback)
	s.hooks.watchChat(chat)
	list := []namespaces.Namespace{namespaces.NewRoot(nlog, fallback), chat, s.relay}
	for _, name := range s.cfg.Namespaces { // validated: they need --hook-url
		list = append(list, namespaces.NewApp(name, fallback))
	}
	return list
}

// relayState keeps /relay's room state in Redis with a Redis adapter, in this process otherwise.
func (s *Server) relayState() namespaces.RelayState {
	if rdb := s.backend.Redis(); rdb != nil {
		return namespaces.NewRedisRelayState(rdb, "switchboard:relay", 0)
	}
	return namespaces.NewMemoryRelayState()
}

// chatHistory is shared by every node through Redis with a Redis adapter, and kept in this
// process otherwise.
func (s *Server) chatHistory() namespaces.History {
	if rdb := s.backend.Redis(); rdb != nil {
		return namespaces.NewRedisHistory(rdb, "switchboard:chat", s.cfg.ChatHistory)
	}
	return namespaces.NewMemoryHistory(s.cfg.ChatHistory, namespaces.DefaultHistoryRooms)
}

// Handler is the node's whole HTTP surface, for tests that mount it on httptest.
func (s *Server) Handler() http.Handler { return s.handler }

// IO is the node's Socket.IO server, for tests.
func (s *Server) IO() *socketio.Server { return s.io }

// Run listens on the configured address and serves until ctx is cancelled, then drains.
func (s *Server) Run(ctx context.Context) error {
	// No TCP keepalive on accepted connections (Go's listener turns it on, four setsockopt calls
	// per connection): sessions have Engine.IO's heartbeat, and an idle HTTP keep-alive
	// connection is closed after idleTimeout.
	ln, err := (&net.ListenConfig{KeepAlive: -1}).Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("server: listen on %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

const (
	// headerTimeout bounds the wait for a request's head, as net/http's ReadHeaderTimeout.
	headerTimeout = 10 * time.Second
	// idleTimeout closes an HTTP keep-alive connection idle that long between requests. A
	// long-polling client's connection is used at least every ping interval; an API client's
	// pool keeps its connections warm; an idle one costs its goroutine and buffers (~12 KiB).
	idleTimeout = 30 * time.Second
	// lingerShutdown bounds the wait, at shutdown, for long-polling clients to collect their
	// close packet (so that they see "transport close" and reconnect elsewhere).
	lingerShutdown = time.Second
)

// Serve serves on ln until ctx is cancelled, then shuts down: readiness goes 503 while the rest
// is still served for the drain delay, then every socket is closed with the "server shutting
// down" reason (so clients reconnect, elsewhere, and recover their session), and HTTP drains
// within the grace period. It returns nil after a clean drain.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stopPprof, err := s.startPprof()
	if err != nil {
		_ = ln.Close()
		s.closeSockets()
		return err
	}
	defer stopPprof()
	base := context.WithoutCancel(ctx)
	httpLog := s.log.With().Str("component", "http").Logger()
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: headerTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          newStdLogger(httpLog),
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	s.ready.Store(true)
	s.log.Info().Str("addr", ln.Addr().String()).Str("url", listenURL(ln.Addr())).Str("adapter", s.cfg.Adapter).Str("version", Version).Msg("listening")

	select {
	case err := <-served:
		s.ready.Store(false)
		s.closeSockets()
		return fmt.Errorf("server: serve: %w", err)
	case <-ctx.Done():
	}

	s.ready.Store(false)
	if err := s.drainDelay(served); err != nil {
		return err
	}
	s.log.Info().Dur("grace", s.cfg.ShutdownGrace).Msg("shutting down: draining")
	s.closeSockets()
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(drainCtx); err != nil {
		s.log.Warn().Err(err).Msg("grace period over: closing the remaining connections")
		_ = srv.Close()
	}
	if serr := <-served; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("server: serve: %w", serr)
	}
	s.log.Info().Msg("stopped")
	return nil
}

// drainDelay keeps serving everything but readiness for the drain delay, so that a load balancer
// polling /readyz sees the node leave before its sockets are closed (they would reconnect through
// the balancer, maybe to this node again). It returns serve's error if serving ends first.
func (s *Server) drainDelay(served <-chan error) error {
	if s.cfg.DrainDelay <= 0 {
		return nil
	}
	s.log.Info().Dur("delay", s.cfg.DrainDelay).Msg("shutting down: not ready, still serving")
	t := time.NewTimer(s.cfg.DrainDelay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case err := <-served:
		s.closeSockets()
		return fmt.Errorf("server: serve: %w", err)
	}
}

// closeSockets disconnects every socket with the "server shutting down" reason (websockets get
// a close frame, pending polls a close packet), then closes the adapter backend.
func (s *Server) closeSockets() {
	ctx, cancel := context.WithTimeout(context.Background(), min(lingerShutdown, s.cfg.ShutdownGrace))
	defer cancel()
	s.admin.close() // its loops broadcast through the adapters closed below
	s.io.Close(ctx)
	if s.relay != nil {
		s.relay.Close()
	}
	hctx, hcancel := context.WithTimeout(context.Background(), s.cfg.ShutdownGrace)
	s.hooks.close(hctx) // after the sockets, before the backend their presence is counted in
	hcancel()
	if e, ok := s.echo.(interface {
		Shutdown(ctx interface{ Done() <-chan struct{} })
	}); ok {
		e.Shutdown(ctx)
	}
	if err := s.backend.Close(); err != nil {
		s.log.Error().Err(err).Msg("close adapter")
	}
}
