package server

import (
	"io"
	"time"

	"github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/engine/v3/config"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/switchboard/switchboard/namespaces"
)

// The settings the official protocol test suites hard-code (docs/engine.io-protocol/v4-current.md
// and docs/socket.io-protocol/v5-current.md, "Test suite").
const (
	conformancePingInterval   = 300 * time.Millisecond
	conformancePingTimeout    = 200 * time.Millisecond
	conformanceMaxPayload     = 1_000_000
	conformanceConnectTimeout = 1000 * time.Millisecond
)

// conformanceConfig forces what --conformance serves: the suites' heartbeat, payload limit and
// CORS, and no connection state recovery, whose private session id ("pid") in the CONNECT
// packet the Socket.IO suite rejects (it expects exactly {"sid"}).
func conformanceConfig(cfg Config) Config {
	cfg.PingInterval = conformancePingInterval
	cfg.PingTimeout = conformancePingTimeout
	cfg.MaxPayload = conformanceMaxPayload
	cfg.CORSOrigins = []string{"*"}
	cfg.RecoveryWindow = 0
	// The suites open connections and send events as fast as they can from one address.
	cfg.Limits = Limits{WriteTimeout: cfg.Limits.WriteTimeout}
	return cfg
}

// conformanceOptions adds the settings that only conformance mode changes.
func conformanceOptions(opts *socket.ServerOptions) {
	opts.SetConnectTimeout(conformanceConnectTimeout)
}

// referenceNamespaces are the handlers of the reference server both suites expect: "/" greets with
// the handshake auth and echoes "message" as "message-back" and "message-with-ack" through its
// ack; "/custom" only greets. They replace the product namespaces in conformance mode.
func referenceNamespaces() []namespaces.Namespace {
	return []namespaces.Namespace{referenceMain{}, referenceCustom{}}
}

type referenceMain struct{}

func (referenceMain) Name() string { return "/" }

func (referenceMain) Register(nsp socket.Namespace) {
	_ = nsp.On("connection", func(args ...any) {
		s, ok := namespaces.SocketArg(args)
		if !ok {
			return
		}
		greet(s)
		_ = s.On("message", func(args ...any) {
			_ = s.Emit("message-back", args...)
		})
		_ = s.On("message-with-ack", func(args ...any) {
			if len(args) == 0 {
				return
			}
			if ack, ok := args[len(args)-1].(socket.Ack); ok {
				ack(args[:len(args)-1], nil)
			}
		})
	})
}

type referenceCustom struct{}

func (referenceCustom) Name() string { return "/custom" }

func (referenceCustom) Register(nsp socket.Namespace) {
	_ = nsp.On("connection", func(args ...any) {
		if s, ok := namespaces.SocketArg(args); ok {
			greet(s)
		}
	})
}

// greet emits the handshake auth back, as the reference server does on every connection.
func greet(s *socket.Socket) {
	auth := s.Handshake().Auth
	if auth == nil {
		auth = map[string]any{}
	}
	_ = s.Emit("auth", auth)
}

// newEchoEngine is the bare Engine.IO server of the Engine.IO suite: every message goes back as
// it came, text as text and binary as binary. It has no namespaces, no rooms and no state.
func newEchoEngine(cfg Config) engine.Server {
	opts := config.DefaultServerOptions()
	opts.SetPingInterval(cfg.PingInterval)
	opts.SetPingTimeout(cfg.PingTimeout)
	opts.SetMaxHttpBufferSize(cfg.MaxPayload)
	opts.SetCors(corsOptions(cfg.CORSOrigins))
	opts.SetTransports(engineTransports(&websocketBuilder{
		timeout:  cfg.Limits.WriteTimeout,
		timedOut: func() {},
		frames:   newFrameCache(),
	}, newUpgrades()))
	eio := engine.New(opts)
	guardHeartbeat(eio, conformancePongReplayDelay, cfg.PingTimeout)
	_ = eio.On("connection", func(args ...any) {
		sock, ok := args[0].(engine.Socket)
		if !ok {
			return
		}
		_ = sock.On("data", func(args ...any) {
			if data, ok := args[0].(io.Reader); ok {
				sock.Send(data, nil, nil)
			}
		})
	})
	return eio
}

// serveReference registers the reference handlers instead of the product namespaces and starts
// the Engine.IO echo server that routes mounts at /engine.io/.
func (s *Server) serveReference() {
	for _, ns := range referenceNamespaces() {
		nsp := s.of(ns.Name())
		s.nsps[ns.Name()] = nsp // what the HTTP API serves, as for the product namespaces
		ns.Register(nsp)
	}
	s.echo = newEchoEngine(s.cfg)
	s.log.Warn().Msg("conformance mode: serving the protocol test suites' reference handlers, not the product namespaces")
}

// pongReplayDelay is the heartbeat guard's delay for this node's mode.
func (s *Server) pongReplayDelay() time.Duration {
	if s.cfg.Conformance {
		return conformancePongReplayDelay
	}
	return pongReplayDelay
}
