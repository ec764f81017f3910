package server

import (
	"sync/atomic"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/switchboard/switchboard/namespaces"
)

// socketHooks is what the node adds to every socket of a namespace: metrics, the event limits and
// the token session (auth:refresh and the expiry timer). It is installed before the namespace's
// own handlers, as one middleware, one "disconnect" listener and one outgoing listener (shared by
// the namespace's sockets), so that an idle socket holds one small struct for all of them: the
// library keeps every listener of an event in a concurrent map entry with its own slice, and
// listeners were the largest share of an idle connection's heap after the library's own.
type socketHooks struct {
	srv     *Server
	metrics *nspMetrics
	refresh *namespaces.Routes[*session]

	s       *socket.Socket
	session atomic.Pointer[session] // nil on an anonymous server; "disconnect" may read it from another goroutine
	limits  socketLimits
}

// instrument installs the hooks on every socket that connects to nsp (or recovers its session).
func (s *Server) instrument(nsp socket.Namespace) {
	metrics := s.metrics.namespace(nsp.Name())
	refresh := s.auth.refreshRoutes()
	_ = nsp.On("connection", func(args ...any) {
		sock, ok := namespaces.SocketArg(args)
		if !ok {
			return
		}
		h := &socketHooks{srv: s, metrics: metrics, refresh: refresh, s: sock}
		metrics.connected(s.conns.join(sock.Conn(), nsp.Name()))
		sock.Use(h.middleware)
		sock.OnAnyOutgoing(metrics.countEmitted)
		// Before the session is armed: see Authenticator.session.
		_ = sock.On("disconnect", h.disconnected)
		h.session.Store(s.auth.session(sock))
	})
}

// middleware counts the event (and its ack), applies the limits, and answers auth:refresh; the
// namespace's events go on to its own middleware.
func (h *socketHooks) middleware(event []any, next func(error)) {
	h.metrics.event(event)
	reserved, ok := h.srv.guard.admit(h.s, &h.limits, event)
	if !ok {
		return
	}
	if !h.refresh.Handle(h.s, h.session.Load(), event) {
		next(nil)
	}
	if reserved != nil {
		// The handler has run by now (namespaces.Routes.Handle and warmPool.dispatch run it in the
		// chain); where the library's own dispatch queued it instead, this task runs right after.
		h.s.Enqueue(func() { h.limits.rooms.release(reserved) })
	}
}

// disconnected is the socket's "disconnect" listener.
func (h *socketHooks) disconnected(args ...any) {
	var reason string
	if len(args) > 0 {
		reason, _ = args[0].(string)
	}
	h.metrics.disconnected(reason)
	h.srv.conns.leave(h.s.Conn(), h.metrics.name)
	h.session.Load().stop()
}
