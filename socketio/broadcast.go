package socketio

import (
	"context"
	"fmt"
	"slices"
)

// BroadcastOperator is a selection of sockets (rooms, exceptions, flags) and what can be done to
// them across the cluster: emit, emit with acks, fetch, join, leave, disconnect. Each method that
// narrows the selection returns a new operator; an operator can be used more than once.
type BroadcastOperator struct {
	nsp  *Namespace
	opts BroadcastOptions
}

func (b *BroadcastOperator) with(f func(o *BroadcastOptions)) *BroadcastOperator {
	c := &BroadcastOperator{nsp: b.nsp, opts: b.opts}
	c.opts.Rooms = slices.Clip(c.opts.Rooms)
	c.opts.Except = slices.Clip(c.opts.Except)
	f(&c.opts)
	return c
}

// To adds rooms to the selection.
func (b *BroadcastOperator) To(rooms ...string) *BroadcastOperator {
	return b.with(func(o *BroadcastOptions) { o.Rooms = append(o.Rooms, rooms...) })
}

// Except leaves the sockets in rooms out.
func (b *BroadcastOperator) Except(rooms ...string) *BroadcastOperator {
	return b.with(func(o *BroadcastOptions) { o.Except = append(o.Except, rooms...) })
}

// Volatile makes the emit droppable for clients that cannot take it at once.
func (b *BroadcastOperator) Volatile() *BroadcastOperator {
	return b.with(func(o *BroadcastOptions) { o.Volatile = true })
}

// Local keeps the operation on this node.
func (b *BroadcastOperator) Local() *BroadcastOperator {
	return b.with(func(o *BroadcastOptions) { o.Local = true })
}

// Options is the selection.
func (b *BroadcastOperator) Options() BroadcastOptions { return b.opts }

// Emit sends an event to the selected sockets. An error means the cluster did not take it
// (ErrUnavailable while Redis is down); this node's sockets got it anyway.
func (b *BroadcastOperator) Emit(event string, args ...any) error {
	if ReservedEvents[event] {
		return fmt.Errorf("socketio: %q is a reserved event name", event)
	}
	p := &Packet{Type: PacketEvent, Nsp: b.nsp.name, ID: -1, Data: eventData(event, args)}
	if b.opts.Local {
		b.nsp.local.BroadcastLocal(p, b.opts)
		return nil
	}
	return b.nsp.adapter.Broadcast(p, b.opts)
}

// EmitWithAck sends an event to the selected sockets and collects their acks until every one
// answered or ctx ends (timedOut).
func (b *BroadcastOperator) EmitWithAck(ctx context.Context, event string, args ...any) (acks []*Args, timedOut bool, err error) {
	if ReservedEvents[event] {
		return nil, false, fmt.Errorf("socketio: %q is a reserved event name", event)
	}
	p := &Packet{Type: PacketEvent, Nsp: b.nsp.name, ID: -1, Data: eventData(event, args)}
	if b.opts.Local {
		return b.nsp.local.BroadcastWithAck(ctx, p, b.opts)
	}
	return b.nsp.adapter.BroadcastWithAck(ctx, p, b.opts)
}

// FetchSockets lists the selected sockets.
func (b *BroadcastOperator) FetchSockets(ctx context.Context) ([]RemoteSocket, error) {
	if b.opts.Local {
		return b.nsp.local.FetchLocal(b.opts), nil
	}
	return b.nsp.adapter.FetchSockets(ctx, b.opts)
}

// SocketsJoin makes the selected sockets join rooms.
func (b *BroadcastOperator) SocketsJoin(ctx context.Context, rooms ...string) error {
	if b.opts.Local {
		b.nsp.local.AddLocal(b.opts, rooms)
		return nil
	}
	return b.nsp.adapter.AddSockets(ctx, b.opts, rooms)
}

// SocketsLeave makes the selected sockets leave rooms.
func (b *BroadcastOperator) SocketsLeave(ctx context.Context, rooms ...string) error {
	if b.opts.Local {
		b.nsp.local.DelLocal(b.opts, rooms)
		return nil
	}
	return b.nsp.adapter.DelSockets(ctx, b.opts, rooms)
}

// DisconnectSockets disconnects the selected sockets (close: their whole connections).
func (b *BroadcastOperator) DisconnectSockets(ctx context.Context, close bool) error {
	if b.opts.Local {
		b.nsp.local.DisconnectLocal(b.opts, close)
		return nil
	}
	return b.nsp.adapter.DisconnectSockets(ctx, b.opts, close)
}
