package server

import (
	"context"
	"errors"

	"github.com/switchboard/switchboard/socketio"
)

// The admin UI's commands, as @socket.io/admin-ui 0.5 sends them (none asks for an ack):
//
//	emit        (nsp, filter, event, ...args)
//	join        (nsp, room, filter)
//	leave       (nsp, room, filter)
//	_disconnect (nsp, close, filter)
//
// A filter is one room name, a socket id being the room of that socket; an empty or missing one
// selects every socket of the namespace. Each acts on the whole cluster through the adapter
// (broadcast, socketsJoin, socketsLeave, disconnectSockets), as in Node.

// errAdminCommand is a command whose arguments do not have the protocol's types.
var errAdminCommand = errors.New("admin: malformed command")

// command runs one command of an admin socket.
func (a *admin) command(sock *socketio.Socket, ev *socketio.Event) {
	args, err := ev.Values()
	if err != nil {
		a.log.Debug().Err(err).Str("sid", sock.ID()).Str("event", ev.Name).Msg("admin command not decoded")
		return
	}
	ctx, cancel := context.WithTimeout(sock.Context(), adminCommandTimeout)
	defer cancel()
	switch ev.Name {
	case "emit":
		err = a.emitCommand(args)
	case "join", "leave":
		err = a.roomCommand(ctx, ev.Name == "join", args)
	case "_disconnect":
		err = a.disconnectCommand(ctx, args)
	default:
		return // not a command of the protocol
	}
	if err != nil {
		a.log.Warn().Err(err).Str("sid", sock.ID()).Str("event", ev.Name).Msg("admin command failed")
	}
}

// selection is the sockets of the namespace named by args[0] that filter args[i] selects; nil
// when the namespace does not exist (or is /admin).
func (a *admin) selection(args []any, filterAt int) (*socketio.BroadcastOperator, error) {
	name, ok := argString(args, 0)
	if !ok {
		return nil, errAdminCommand
	}
	nsp := a.productNamespace(name)
	if nsp == nil {
		return nil, nil
	}
	var filter string
	if filterAt < len(args) && args[filterAt] != nil {
		if filter, ok = args[filterAt].(string); !ok {
			return nil, errAdminCommand
		}
	}
	if filter == "" {
		return nsp.All(), nil
	}
	return nsp.To(filter), nil
}

func (a *admin) emitCommand(args []any) error {
	sel, err := a.selection(args, 1)
	if err != nil || sel == nil {
		return err
	}
	event, ok := argString(args, 2)
	if !ok || event == "" {
		return errAdminCommand
	}
	return sel.Emit(event, args[3:]...)
}

func (a *admin) roomCommand(ctx context.Context, join bool, args []any) error {
	sel, err := a.selection(args, 2)
	if err != nil || sel == nil {
		return err
	}
	room, ok := argString(args, 1)
	if !ok || room == "" || len(room) > maxAdminRoom {
		return errAdminCommand
	}
	if join {
		return sel.SocketsJoin(ctx, room)
	}
	return sel.SocketsLeave(ctx, room)
}

func (a *admin) disconnectCommand(ctx context.Context, args []any) error {
	sel, err := a.selection(args, 2)
	if err != nil || sel == nil {
		return err
	}
	closeConn := false
	if len(args) > 1 && args[1] != nil {
		if closeConn, err = argBool(args[1]); err != nil {
			return err
		}
	}
	return sel.DisconnectSockets(ctx, closeConn)
}

// maxAdminRoom bounds a room name the admin UI asks sockets to join or leave.
const maxAdminRoom = 1024

func argString(args []any, i int) (string, bool) {
	if i >= len(args) {
		return "", false
	}
	s, ok := args[i].(string)
	return s, ok
}

func argBool(v any) (bool, error) {
	b, ok := v.(bool)
	if !ok {
		return false, errAdminCommand
	}
	return b, nil
}
