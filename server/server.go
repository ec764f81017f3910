// Package server is Switchboard's HTTP surface and lifecycle: configuration, the chi routes, the
// Socket.IO engine, authentication, the HTTP API, health and shutdown.
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
	"github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/switchboard/switchboard/adapters"
	"github.com/switchboard/switchboard/namespaces"
)

// Version is reported by the stats endpoint and the startup log.
const Version = "0.1.0"

// Server is one Switchboard node.
type Server struct {
	cfg     Config
	log     zerolog.Logger
	io      *socket.Server
	echo    engine.Server // the bare Engine.IO echo server at /engine.io/, in conformance mode only
	backend adapters.Backend
	auth    *Authenticator
	handler http.Handler
	web     *webPage
	// nsps holds the namespaces this node serves by name; the HTTP API looks them up here so that
	// it never creates one (Server.Of would).
	nsps    map[string]socket.Namespace
	started time.Time
	// ready is false while starting and while draining (/readyz answers 503).
	ready atomic.Bool

	metrics   *Metrics
	conns     *connTracker
	admission *admission
	guard     *eventGuard
	warm      *warmPool
	upgrades  *upgrades // polling→websocket upgrades in progress (upgrade.go)
	gates     connectGates
}

// New builds a node from cfg. It does not listen yet: Run or Serve does.
func New(cfg Config, log zerolog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Conformance {
		cfg = conformanceConfig(cfg)
	}
	s := &Server{cfg: cfg, log: log, started: time.Now(), metrics: NewMetrics()}
	auth, err := NewAuthenticator(cfg, log)
	if err != nil {
		return nil, err
	}
	s.auth = auth
	web, err := newWebPage(cfg.WebDir, log)
	if err != nil {
		return nil, err
	}
	s.web = web

	backend, err := adapters.New(adapters.Config{
		Name:     cfg.Adapter,
		RedisURL: cfg.RedisURL,
		Recovery: cfg.RecoveryWindow > 0,
		Logger:   log.With().Str("component", "adapter").Str("adapter", cfg.Adapter).Logger().Hook(s.metrics.adapterErrorHook(cfg.Adapter)),
		Direct:   directWriter,
	})
	if err != nil {
		return nil, fmt.Errorf("server: start adapter: %w", err)
	}
	s.backend = backend
	if r, ok := backend.(adapters.Reporter); ok {
		s.metrics.watchBackend(cfg.Adapter, r)
	}
	s.warm = newWarmPool()
	s.upgrades = newUpgrades()
	s.io = socket.NewServer(nil, s.socketOptions())
	s.setupLimits()

	s.nsps = map[string]socket.Namespace{}
	if cfg.Conformance {
		s.serveReference()
	} else {
		for _, ns := range s.namespaces() {
			nsp := s.of(ns.Name())
			s.nsps[ns.Name()] = nsp
			nsp.Use(s.auth.Middleware)
			s.warm.enter(nsp) // first and last socket middlewares (warm.go)
			s.instrument(nsp)
			ns.Register(nsp)
			s.warm.dispatch(nsp)
		}
	}
	s.web.landing = s.landing() // the page at "/" (landing.go)
	s.handler = s.routes()
	s.watchConnections()
	return s, nil
}

// namespaces is the explicit list of namespaces this node serves.
func (s *Server) namespaces() []namespaces.Namespace {
	nlog := s.log.With().Str("component", "namespace").Logger()
	return []namespaces.Namespace{
		namespaces.NewRoot(nlog),
		namespaces.NewChat(nlog, s.chatHistory()),
	}
}

// chatHistory is shared by every node through Redis when the backend offers it (the Redis
// adapters), and kept in this process otherwise.
func (s *Server) chatHistory() namespaces.History {
	if rb, ok := s.backend.(interface {
		History(perRoom int) *adapters.RedisHistory
	}); ok {
		return rb.History(s.cfg.ChatHistory)
	}
	return namespaces.NewMemoryHistory(s.cfg.ChatHistory, namespaces.DefaultHistoryRooms)
}

// Handler is the node's whole HTTP surface, for tests that mount it on httptest.
func (s *Server) Handler() http.Handler { return s.handler }

// IO is the library's Socket.IO server, for tests and the HTTP API.
func (s *Server) IO() *socket.Server { return s.io }

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
	// idleTimeout closes an HTTP keep-alive connection idle that long between requests.
	idleTimeout = 2 * time.Minute
)

// Serve serves on ln until ctx is cancelled, then shuts down: readiness goes 503 while the rest
// is still served for the drain delay, then new connections are refused, every socket is closed
// with the "server shutting down" reason (so clients reconnect, elsewhere, and recover their
// session), and HTTP drains within the grace period. It returns nil after a clean drain.
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
	door := newFrontDoor(ln, s.handler, base, headerTimeout, httpLog, s.warm.do) // frontdoor.go
	served := make(chan error, 1)
	go func() { served <- srv.Serve(door) }()
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
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownGrace)
	defer cancel()
	shutdown := make(chan error, 1)
	go func() { shutdown <- srv.Shutdown(drainCtx) }()
	s.closeSockets()

	err = <-shutdown
	if err != nil {
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

// closeSockets disconnects every socket with the "server shutting down" reason, closes the
// engine and then the adapter backend.
func (s *Server) closeSockets() {
	done := make(chan struct{})
	s.io.Close(func(error) { close(done) })
	<-done
	s.warm.close()
	if s.echo != nil {
		s.echo.Close()
	}
	if err := s.backend.Close(); err != nil {
		s.log.Error().Err(err).Msg("close adapter")
	}
}
