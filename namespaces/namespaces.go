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
func onConnection(nsp socket.Namespace, fn func(s *socket.Socket, id Identity)) {
	_ = nsp.On("connection", func(args ...any) {
		s, ok := SocketArg(args)
		if !ok {
			return
		}
		id := IdentityOf(s)
		s.Join(socket.Room(UserRoom(id.User.ID)))
		fn(s, id)
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
