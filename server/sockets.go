package server

import (
	"fmt"

	"github.com/switchboard/switchboard/engineio"
	"github.com/switchboard/switchboard/namespaces"
	"github.com/switchboard/switchboard/socketio"
)

// socketConfig maps the configuration onto the Socket.IO and Engine.IO servers.
func (s *Server) socketConfig() socketio.Config {
	l := s.cfg.Limits
	headers := []string{"authorization", "origin", "user-agent"}
	for _, h := range s.cfg.HookHeaders {
		headers = append(headers, h)
	}
	cfg := socketio.Config{
		Engine: engineio.Config{
			PingInterval:   s.cfg.PingInterval,
			PingTimeout:    s.cfg.PingTimeout,
			MaxPayload:     s.cfg.MaxPayload,
			BodyTimeout:    s.cfg.bodyReadTimeout(),
			WriteTimeout:   l.WriteTimeout,
			MaxWriteBuffer: int(l.MaxWriteBuffer),
			CORSOrigins:    s.cfg.CORSOrigins,
			OnWriteTimeout: func() { s.metrics.Limited("write_timeout") },
			OnSlowClient:   func() { s.metrics.Limited("write_buffer") },
		},
		Parser:             socketio.ParserMode(s.cfg.Parser),
		ConnectTimeout:     s.connectTimeout(),
		RecoveryWindow:     s.cfg.RecoveryWindow,
		RecoveryMaxBytes:   s.cfg.RecoveryMaxMiB << 20,
		Adapter:            s.backend.Adapter(),
		Headers:            headers,
		MaxRefusedConnects: maxRefusedConnects,
		Logger:             s.log.With().Str("component", "socketio").Logger(),
		OnProtocolError:    func() { s.metrics.Limited("protocol_error") },
		OnRefusedConnect:   func() { s.metrics.Limited("refused_connect") },
	}
	s.admin.configure(&cfg) // the admin UI's counters, /admin's adapter (admin.go)
	return cfg
}

// maxRefusedConnects is how many refused namespace CONNECTs (unknown namespace, bad token) one
// connection may make before it is closed; a refusal keeps nothing.
const maxRefusedConnects = 32

// serveNamespaces registers the product namespaces, each behind the node's own middlewares:
// authentication first, then the connect hook (hooks.go), then (for events) metrics, limits and
// the token's lifetime, then the namespace's handlers.
func (s *Server) serveNamespaces(list []namespaces.Namespace) error {
	for _, ns := range list {
		nsp, err := s.io.Of(ns.Name())
		if err != nil {
			return fmt.Errorf("server: namespace %s: %w", ns.Name(), err)
		}
		s.nsps[ns.Name()] = nsp
		nsp.Use(s.auth.Middleware)
		s.hooks.install(nsp) // the connect hook, before the namespace's own middlewares
		s.instrument(nsp)
		s.guard.install(nsp, ns)
		s.auth.install(nsp)
		ns.Register(nsp)
		s.hooks.observe(nsp)
	}
	return nil
}

// instrument counts a namespace's sockets, events and acks.
func (s *Server) instrument(nsp *socketio.Namespace) {
	nm := s.metrics.namespace(nsp.Name())
	nsp.OnConnection(func(sock *socketio.Socket) { nm.connected(sock.Transport()) })
	nsp.OnDisconnect(func(_ *socketio.Socket, reason string) { nm.disconnected(reason) })
	nsp.UseEvents(func(_ *socketio.Socket, ev *socketio.Event) bool {
		nm.received.inc(ev.Name)
		return true
	})
	nsp.OnAck(func(_ *socketio.Socket, _ *socketio.Event, args []any) { nm.acks[ackResult(args)].Inc() })
	nsp.OnEmitted(nm.emitted)
	s.metrics.watchSockets(nsp)
}
