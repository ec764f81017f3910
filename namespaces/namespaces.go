// Package namespaces holds what each Socket.IO namespace does with the events its sockets send:
// "/" (rooms that backends publish to) and "/chat" (rooms whose members talk). It knows nothing of
// HTTP, flags or process lifecycle; the server registers the list it is given.
package namespaces

import (
	"github.com/zishang520/socket.io/servers/socket/v3"
)

// Namespace is the behaviour of one Socket.IO namespace.
type Namespace interface {
	// Name is the namespace path, e.g. "/chat".
	Name() string
	// Register attaches the namespace's connection handler to the library's namespace.
	Register(nsp socket.Namespace)
}

// onConnection calls fn for every socket that connects to nsp (or recovers), once it is in its
// user room. Every namespace registers through it, so the user-room rule holds everywhere.
//
// The socket joins its user room in a namespace middleware, before the library registers it and
// answers its CONNECT: in a "connection" listener the join would come after the client (and any
// backend it tells) already sees the socket, and an emit to user:<id> in between would miss it.
// The middleware runs after the node's authentication middleware, which sets the identity; if
// the connection fails after it, the library's cleanup leaves every room the socket joined.
func onConnection(nsp socket.Namespace, fn func(s *socket.Socket, id Identity)) {
	nsp.Use(func(s *socket.Socket, next func(*socket.ExtendedError)) {
		s.Join(socket.Room(UserRoom(IdentityOf(s).User.ID)))
		next(nil)
	})
	_ = nsp.On("connection", func(args ...any) {
		s, ok := SocketArg(args)
		if !ok {
			return
		}
		fn(s, IdentityOf(s))
	})
}

// SocketArg returns the socket a namespace's "connect" or "connection" event carries. Those
// names can also arrive as server-side events from other nodes (serverSideEmit over Redis), with
// any arguments or none: those are not sockets and are ignored.
func SocketArg(args []any) (*socket.Socket, bool) {
	if len(args) == 0 {
		return nil, false
	}
	s, ok := args[0].(*socket.Socket)
	return s, ok
}
