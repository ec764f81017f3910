package namespaces

import (
	"github.com/rs/zerolog"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

// Routes is a namespace's table of request events, built once per namespace. Each socket is then
// served by one middleware that looks its events up here (Serve), rather than by a listener per
// event: the library's emitter stores every listener in a concurrent map entry with its own
// slice, which was a tenth of the heap an idle connection holds.
//
// T is the per-socket state the handlers get (the socket itself, or a struct around it).
type Routes[T any] struct {
	log    zerolog.Logger
	fields func(st T, e *zerolog.Event) *zerolog.Event
	events map[string]func(st T, s *socket.Socket, args []any)
}

// NewRoutes returns an empty table whose failed requests are logged to log with the socket's
// nsp and sid, and with what fields adds (nil adds nothing).
func NewRoutes[T any](log zerolog.Logger, fields func(st T, e *zerolog.Event) *zerolog.Event) *Routes[T] {
	return &Routes[T]{log: log, fields: fields, events: map[string]func(T, *socket.Socket, []any){}}
}

// Route adds a request event to r. It is the one place where the library's ...any arguments
// become a typed payload: the first argument is decoded into Req and validated, the handler runs
// with the socket's state, and the ack (when the client sent one) is called exactly once with
// {"data": …} or {"error": {"code", "message"}}.
func Route[T, Req, Res any](r *Routes[T], event string, h func(st T, req Req) (Res, error)) {
	r.events[event] = func(st T, s *socket.Socket, args []any) {
		ack, args := splitAck(args)
		res, err := run(args, func(req Req) (Res, error) { return h(st, req) })
		if err != nil {
			ce := asClientError(err)
			if ce.Code == CodeInternal {
				r.logFailure(st, s, event, err)
			}
			if ack != nil {
				ack([]any{errorReply{Error: ce}}, nil)
			}
			return
		}
		if ack != nil {
			ack([]any{dataReply[Res]{Data: res}}, nil)
		}
	}
}

// logFailure logs a request that failed for a reason the client is not told. The socket's
// fields are added here, not kept in a logger per socket: a zerolog context costs 500 bytes.
func (r *Routes[T]) logFailure(st T, s *socket.Socket, event string, err error) {
	e := r.log.Error()
	if !e.Enabled() {
		return
	}
	e = e.Str("nsp", s.Nsp().Name()).Str("sid", string(s.Id()))
	if r.fields != nil {
		e = r.fields(st, e)
	}
	e.Err(err).Str("event", event).Msg("request failed")
}

// Serve makes s answer r's events with st: one middleware, which must come after the other
// middlewares (rate limits, metrics), calling Handle.
func (r *Routes[T]) Serve(s *socket.Socket, st T) {
	s.Use(func(event []any, next func(error)) {
		if !r.Handle(s, st, event) {
			next(nil)
		}
	})
}

// Handle answers event when it is one of r's, for a socket middleware that has let it through:
// the handler runs right there, in the middleware chain, if the socket is still connected (the
// library would have emitted the event to its listeners after every middleware, on the socket's
// task queue; the chain runs on that queue too, so a socket's events still run one at a time and
// in order, and the node's first middleware may lend the chain a goroutine with a grown stack:
// server/warm.go). It reports false for other events, which the middleware passes on down the
// chain.
func (r *Routes[T]) Handle(s *socket.Socket, st T, event []any) bool {
	var name string
	if len(event) > 0 {
		name, _ = event[0].(string)
	}
	h, ok := r.events[name]
	if !ok {
		return false
	}
	if s.Connected() {
		h(st, s, event[1:])
	}
	return true
}
