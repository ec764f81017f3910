// Package namespaces holds what each of Switchboard's Socket.IO namespaces does with the events
// its sockets send: "/" (rooms that backends publish to), "/chat" (rooms whose members talk,
// with history and presence), "/relay" (members messaging each other, with state and per-tick
// coalescing) and the app's own namespaces (App: every event goes to the app backend through a
// Fallback). It knows nothing of HTTP, flags or process lifecycle, and speaks only package
// socketio's API; the server registers the list it is given, after its own middlewares
// (authentication, limits).
//
// It is one package past 2,000 lines because the namespaces share their contract's rules and
// helpers: the typed decode+ack helper (request.go), identity and the user rooms, room names and
// claims, presence conventions. /relay is the largest part (relay*.go); each namespace's files
// stand on their own.
package namespaces

import (
	"github.com/switchboard/switchboard/socketio"
)

// Namespace is the behaviour of one Socket.IO namespace.
type Namespace interface {
	// Name is the namespace path, e.g. "/chat".
	Name() string
	// Register attaches the namespace's middlewares and handlers to nsp.
	Register(nsp *socketio.Namespace)
}

// Fallback receives the events no built-in handler takes (SPEC §8.2 forwards them to the app
// backend); nil ignores them (SPEC §2).
type Fallback func(s *socketio.Socket, ev *socketio.Event)

// joinUserRoom puts a connecting socket in its user room, before the CONNECT answer: a backend
// emitting to user:<id> reaches the socket as soon as the client knows it is connected. It runs
// after the server's authentication middleware, which set the identity.
func joinUserRoom(s *socketio.Socket) error {
	s.Join(UserRoom(IdentityOf(s).User.ID))
	return nil
}
