package adapters

// sharded.go: the redis-sharded adapter, @socket.io/redis-adapter 8.3's createShardedAdapter
// (subscriptionMode "dynamic") on the wire: socket.io-adapter 2.5's ClusterAdapter messages
// {type, data, uid, nsp} (JSON, or msgpack when the data holds binary) over SSUBSCRIBE/SPUBLISH,
// on P#NSP# (everything), P#NSP#uid# (answers to uid) and P#NSP#room# (a broadcast to exactly
// one public room without ack).

import (
	"context"
	"fmt"
	"sync"
	"unicode/utf16"

	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/socketio"
)

// ClusterAdapter message types (socket.io-adapter 2.5 MessageType).
const (
	msgBroadcast         = 3
	msgSocketsJoin       = 4
	msgSocketsLeave      = 5
	msgDisconnectSockets = 6
	msgFetchSockets      = 7
	msgFetchResponse     = 8
	msgServerSideEmit    = 9
	msgSSEResponse       = 10
	msgBroadcastCount    = 11
	msgBroadcastAck      = 12
)

// shardedAdapter is one namespace's adapter of the redis-sharded backend.
type shardedAdapter struct {
	*socketio.LocalAdapter
	b   *redisBackend
	nsp *socketio.Namespace
	log zerolog.Logger
	uid string

	channel         string // P#NSP#
	responseChannel string // P#NSP#uid#

	pending pendingSet // our fetchSockets, serverSideEmit with ack
	acks    pendingSet // our broadcasts with ack
	out     serial
	sse     serial

	rmu    sync.Mutex
	rooms  map[string]int // local public rooms → local sockets in them (their channels are subscribed)
	closed bool
}

var _ socketio.Adapter = (*shardedAdapter)(nil)

// shardMessage is a ClusterAdapter message; uid and nsp come last, as Node writes them.
type shardMessage struct {
	Type int    `json:"type"`
	Data any    `json:"data,omitempty"`
	UID  string `json:"uid"`
	Nsp  string `json:"nsp"`
}

// shardPacket is the packet of a ClusterAdapter broadcast: no nsp (the message carries it).
type shardPacket struct {
	Type int   `json:"type"`
	Data []any `json:"data"`
}

type shardBroadcast struct {
	Packet    shardPacket `json:"packet"`
	RequestID string      `json:"requestId,omitempty"`
	Opts      wireOpts    `json:"opts"`
}

type shardRooms struct {
	Opts  wireOpts `json:"opts"`
	Rooms []string `json:"rooms"`
}

type shardDisconnect struct {
	Opts  wireOpts `json:"opts"`
	Close bool     `json:"close"`
}

type shardFetch struct {
	Opts      wireOpts `json:"opts"`
	RequestID string   `json:"requestId"`
}

type shardSSE struct {
	RequestID string `json:"requestId,omitempty"`
	Packet    []any  `json:"packet"`
}

func (b *redisBackend) newSharded(nsp *socketio.Namespace) (socketio.Adapter, error) {
	name := nsp.Name()
	a := &shardedAdapter{
		LocalAdapter: socketio.NewLocalAdapter(nsp, socketio.LocalOptions{Recovery: false}),
		b:            b,
		nsp:          nsp,
		log:          b.log.With().Str("nsp", name).Logger(),
		uid:          randomID(8),
		channel:      b.prefix + "#" + name + "#",
		rooms:        map[string]int{},
	}
	a.responseChannel = a.channel + a.uid + "#"
	nsp.OnRoom(a.roomChanged)
	b.nodes.watch(a.channel, true)
	ctx, cancel := context.WithTimeout(b.ctx, subWait)
	defer cancel()
	b.shard.subscribe(ctx, map[string]shardWant{
		a.responseChannel: {h: a.onResponseMessage, order: 1},
		a.channel:         {h: a.onMessage, order: 2},
	}, true)
	return a, nil
}

// Close implements socketio.Adapter.
func (a *shardedAdapter) Close() error {
	a.rmu.Lock()
	first := !a.closed
	a.closed = true
	channels := []string{a.channel, a.responseChannel}
	for r := range a.rooms {
		channels = append(channels, a.roomChannel(r))
	}
	a.rmu.Unlock()
	if first {
		a.b.shard.unsubscribe(channels...)
		a.b.nodes.watch(a.channel, false)
		a.out.wait()
		a.sse.wait()
	}
	return a.LocalAdapter.Close()
}

func (a *shardedAdapter) roomChannel(room string) string { return a.channel + room + "#" }

// roomChanged keeps a subscription to the channel of every local public room (a room that is
// not a local socket's id), as Node's dynamic mode does on create-room and delete-room.
func (a *shardedAdapter) roomChanged(_ *socketio.Socket, room string, joined bool) {
	a.rmu.Lock()
	defer a.rmu.Unlock()
	if a.closed {
		return
	}
	n, counted := a.rooms[room]
	switch {
	case joined && counted:
		a.rooms[room] = n + 1
	case joined:
		if a.nsp.Socket(room) != nil {
			return // a socket's own room: Node's senders do not use its channel
		}
		a.rooms[room] = 1
		a.b.shard.subscribe(a.b.ctx, map[string]shardWant{a.roomChannel(room): {h: a.onMessage}}, false)
	case counted && n > 1:
		a.rooms[room] = n - 1
	case counted:
		delete(a.rooms, room)
		a.b.shard.unsubscribe(a.roomChannel(room))
	}
}

// jsLength is a string's length as JavaScript counts it (UTF-16 code units).
func jsLength(s string) int { return len(utf16.Encode([]rune(s))) }

// channelFor is where Node's dynamic mode sends a message: a broadcast without ack to exactly
// one room that does not look like a socket id (20 characters) goes to the room's channel.
func (a *shardedAdapter) channelFor(typ int, withAck bool, rooms []string) string {
	if typ == msgBroadcast && !withAck && len(rooms) == 1 && jsLength(rooms[0]) != 20 {
		return a.roomChannel(rooms[0])
	}
	return a.channel
}

// encode writes a message as Node's sharded adapter does: JSON, or msgpack when it holds binary.
func (a *shardedAdapter) encode(typ int, data any, binary bool) ([]byte, error) {
	m := shardMessage{Type: typ, Data: data, UID: a.uid, Nsp: a.nsp.Name()}
	if binary {
		m.Data = wireValue(toPlain(data))
		return socketio.EncodeMsgpack(m)
	}
	return socketio.MarshalJSON(m)
}

// toPlain turns the adapter's own data structs into maps, so that wireValue reaches the
// arguments inside them.
func toPlain(data any) any {
	switch d := data.(type) {
	case shardBroadcast:
		m := map[string]any{"packet": map[string]any{"type": d.Packet.Type, "data": wireData(d.Packet.Data)}, "opts": d.Opts}
		if d.RequestID != "" {
			m["requestId"] = d.RequestID
		}
		return m
	case shardSSE:
		m := map[string]any{"packet": wireData(d.Packet)}
		if d.RequestID != "" {
			m["requestId"] = d.RequestID
		}
		return m
	}
	return data
}

func hasBinary(vals ...any) bool { return socketio.ValuesArgs(vals).HasBinary() }

// publish sends one of our messages through the fenced SPUBLISH.
func (a *shardedAdapter) publish(ctx context.Context, typ int, data any, binary bool, channel string) error {
	msg, err := a.encode(typ, data, binary)
	if err != nil {
		return fmt.Errorf("adapters: encode message: %w", err)
	}
	_, err = a.b.conn.SPublish(ctx, channel, msg)
	return Unavailable(err)
}

// answer sends an answer to the requester's own channel.
func (a *shardedAdapter) answer(requester string, typ int, data any, binary bool) {
	msg, err := a.encode(typ, data, binary)
	if err != nil {
		a.log.Debug().Err(err).Msg("encode an answer")
		return
	}
	channel := a.channel + requester + "#"
	a.out.do(func() {
		ctx, cancel := context.WithTimeout(a.b.ctx, answerTimeout)
		defer cancel()
		if err := a.b.conn.Client().SPublish(ctx, channel, msg).Err(); err != nil {
			a.log.Debug().Err(err).Msg("answer another node")
		}
	})
}

// Broadcast implements socketio.Adapter: nil once Redis took it (then local delivery), or
// socketio.ErrUnavailable and nothing delivered.
func (a *shardedAdapter) Broadcast(p *socketio.Packet, opts socketio.BroadcastOptions) error {
	if opts.Local {
		a.BroadcastLocal(p, opts)
		return nil
	}
	data := shardBroadcast{Packet: shardPacket{Type: int(socketio.PacketEvent), Data: p.Data}, Opts: encodeOpts(opts)}
	if err := a.publish(a.b.ctx, msgBroadcast, data, hasBinary(p.Data...), a.channelFor(msgBroadcast, false, opts.Rooms)); err != nil {
		return err
	}
	a.BroadcastLocal(p, opts)
	return nil
}

// BroadcastWithAck implements socketio.Adapter (see classicAdapter.BroadcastWithAck).
func (a *shardedAdapter) BroadcastWithAck(ctx context.Context, p *socketio.Packet, opts socketio.BroadcastOptions) ([]*socketio.Args, bool, error) {
	if opts.Local {
		return a.LocalAdapter.BroadcastWithAck(ctx, p, opts)
	}
	rid := randomID(8)
	g := newAckGather()
	remove := a.acks.add(rid, func(m map[string]any) {
		typ, _ := m["type"].(float64)
		d, _ := m["data"].(map[string]any)
		switch typ {
		case msgBroadcastCount:
			n, _ := d["clientCount"].(float64)
			g.count(int(n))
		case msgBroadcastAck:
			if v, ok := d["packet"]; ok {
				g.ack(socketio.ValuesArgs([]any{v}))
			} else {
				g.ack(socketio.ValuesArgs([]any{}))
			}
		}
	})
	defer remove()
	deadline, hasDeadline := ctx.Deadline()
	wo := encodeOpts(opts)
	wo.Flags.Timeout = timeoutMS(deadline, hasDeadline, defaultAckTimeout)
	data := shardBroadcast{Packet: shardPacket{Type: int(socketio.PacketEvent), Data: p.Data}, RequestID: rid, Opts: wo}
	if err := a.publish(ctx, msgBroadcast, data, hasBinary(p.Data...), a.channel); err != nil {
		return nil, false, err
	}
	g.count(a.BroadcastWithAckLocal(p, opts, g.ack))
	go func() {
		if n, err := a.ServerCount(ctx); err == nil {
			g.expect(n)
		}
	}()
	acks, timedOut := g.wait(ctx)
	return acks, timedOut, nil
}

// ServerCount implements socketio.Adapter: SHARDNUMSUB of the namespace's main channel, summed
// over the masters, as Node counts.
func (a *shardedAdapter) ServerCount(ctx context.Context) (int, error) {
	n, err := a.b.conn.NumSub(ctx, true, a.channel)
	if err != nil {
		return 0, Unavailable(err)
	}
	return int(n[a.channel]), nil
}

// FetchSockets implements socketio.Adapter: every other node must answer within 5 s, otherwise
// what arrived is returned with an error wrapping context.DeadlineExceeded.
func (a *shardedAdapter) FetchSockets(ctx context.Context, opts socketio.BroadcastOptions) ([]socketio.RemoteSocket, error) {
	local := a.FetchLocal(opts)
	if opts.Local {
		return local, nil
	}
	n, err := a.ServerCount(ctx)
	if err != nil {
		return nil, err
	}
	if n <= 1 {
		return local, nil
	}
	rid := randomID(8)
	g := newGather(n-1, local)
	remove := a.pending.add(rid, func(m map[string]any) {
		d, _ := m["data"].(map[string]any)
		g.add(decodeSockets(d["sockets"])...)
	})
	defer remove()
	if err := a.publish(ctx, msgFetchSockets, shardFetch{Opts: encodeOpts(opts), RequestID: rid}, false, a.channel); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, requestsTimeout)
	defer cancel()
	out, got, complete := g.wait(wctx)
	if !complete {
		return out, fmt.Errorf("adapters: fetch sockets: %d of %d other nodes answered: %w", got, n-1, context.DeadlineExceeded)
	}
	return out, nil
}

// AddSockets implements socketio.Adapter.
func (a *shardedAdapter) AddSockets(ctx context.Context, opts socketio.BroadcastOptions, rooms []string) error {
	if !opts.Local {
		if err := a.publish(ctx, msgSocketsJoin, shardRooms{Opts: encodeOpts(opts), Rooms: nonNil(rooms)}, false, a.channel); err != nil {
			return err
		}
	}
	a.AddLocal(opts, rooms)
	return nil
}

// DelSockets implements socketio.Adapter.
func (a *shardedAdapter) DelSockets(ctx context.Context, opts socketio.BroadcastOptions, rooms []string) error {
	if !opts.Local {
		if err := a.publish(ctx, msgSocketsLeave, shardRooms{Opts: encodeOpts(opts), Rooms: nonNil(rooms)}, false, a.channel); err != nil {
			return err
		}
	}
	a.DelLocal(opts, rooms)
	return nil
}

// DisconnectSockets implements socketio.Adapter.
func (a *shardedAdapter) DisconnectSockets(ctx context.Context, opts socketio.BroadcastOptions, close bool) error {
	if !opts.Local {
		if err := a.publish(ctx, msgDisconnectSockets, shardDisconnect{Opts: encodeOpts(opts), Close: close}, false, a.channel); err != nil {
			return err
		}
	}
	a.DisconnectLocal(opts, close)
	return nil
}

// ServerSideEmit implements socketio.Adapter (binary survives here: it travels as msgpack).
func (a *shardedAdapter) ServerSideEmit(ctx context.Context, args []any) error {
	if err := checkSSE(args); err != nil {
		return err
	}
	return a.publish(ctx, msgServerSideEmit, shardSSE{Packet: args}, hasBinary(args...), a.channel)
}

// ServerSideEmitWithAck is classicAdapter.ServerSideEmitWithAck for this adapter.
func (a *shardedAdapter) ServerSideEmitWithAck(ctx context.Context, args []any) ([]any, error) {
	if err := checkSSE(args); err != nil {
		return nil, err
	}
	n, err := a.ServerCount(ctx)
	if err != nil {
		return nil, err
	}
	if n-1 <= 0 {
		return []any{}, nil
	}
	rid := randomID(8)
	g := newGather[any](n-1, nil)
	remove := a.pending.add(rid, func(m map[string]any) {
		d, _ := m["data"].(map[string]any)
		g.add(d["packet"])
	})
	defer remove()
	if err := a.publish(ctx, msgServerSideEmit, shardSSE{RequestID: rid, Packet: args}, hasBinary(args...), a.channel); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, requestsTimeout)
	defer cancel()
	out, got, complete := g.wait(wctx)
	if !complete {
		return out, fmt.Errorf("adapters: serverSideEmit: %d of %d other nodes answered: %w", got, n-1, context.DeadlineExceeded)
	}
	return out, nil
}

func decodeShardMessage(payload string) (map[string]any, bool) {
	v, err := decodeAny([]byte(payload))
	if err != nil {
		return nil, false
	}
	m, ok := v.(map[string]any)
	return m, ok
}

// onResponseMessage takes what arrives on our own channel: answers to our requests (Node does
// not check their uid or namespace).
func (a *shardedAdapter) onResponseMessage(_, payload string) {
	if m, ok := decodeShardMessage(payload); ok {
		a.onResponse(m)
	}
}

func (a *shardedAdapter) onResponse(m map[string]any) {
	d, _ := m["data"].(map[string]any)
	key := requestKey(d["requestId"])
	if key == "" {
		return
	}
	if !a.acks.answer(key, m) {
		a.pending.answer(key, m)
	}
}

// onMessage handles what another node published on the main channel or a room's channel, in
// the order it was published.
func (a *shardedAdapter) onMessage(_, payload string) {
	m, ok := decodeShardMessage(payload)
	if !ok {
		return
	}
	if uid, _ := m["uid"].(string); uid == a.uid {
		return
	}
	if nsp, _ := m["nsp"].(string); nsp != a.nsp.Name() {
		return
	}
	typ, ok := m["type"].(float64)
	if !ok {
		return
	}
	uid, _ := m["uid"].(string)
	d, _ := m["data"].(map[string]any)
	switch int(typ) {
	case msgBroadcast:
		p, ok := decodePacket(d["packet"], a.nsp.Name())
		if !ok {
			return
		}
		opts := decodeOpts(d["opts"])
		rid, withAck := d["requestId"]
		if !withAck {
			a.BroadcastLocal(p, opts)
			return
		}
		relay := &ackRelay{send: func(ack *socketio.Args) {
			r := map[string]any{"requestId": rid}
			v, ok := firstArg(ack)
			if ok {
				r["packet"] = v
			}
			a.answer(uid, msgBroadcastAck, r, ok && hasBinary(v))
		}}
		n := a.BroadcastWithAckLocal(p, opts, relay.onAck)
		a.answer(uid, msgBroadcastCount, map[string]any{"requestId": rid, "clientCount": n}, false)
		relay.counted()
	case msgSocketsJoin:
		a.AddLocal(decodeOpts(d["opts"]), roomList(d["rooms"]))
	case msgSocketsLeave:
		a.DelLocal(decodeOpts(d["opts"]), roomList(d["rooms"]))
	case msgDisconnectSockets:
		c, _ := d["close"].(bool)
		a.DisconnectLocal(decodeOpts(d["opts"]), c)
	case msgFetchSockets:
		local := a.FetchLocal(decodeOpts(d["opts"]))
		sockets := make([]any, 0, len(local))
		datas := make([]any, 0, len(local))
		for _, rs := range local {
			ws := encodeSocket(rs)
			sockets = append(sockets, ws)
			datas = append(datas, ws.Data)
		}
		a.answer(uid, msgFetchResponse, map[string]any{"requestId": d["requestId"], "sockets": sockets}, hasBinary(datas...))
	case msgServerSideEmit:
		args, ok := d["packet"].([]any)
		if !ok {
			return
		}
		if name, ok := sseName(args); !ok || reservedSSE[name] {
			return
		}
		var ack func(...any)
		if rid, withAck := d["requestId"]; withAck {
			var once sync.Once
			ack = func(vals ...any) {
				once.Do(func() {
					r := map[string]any{"requestId": rid}
					if len(vals) > 0 {
						r["packet"] = vals[0]
					}
					a.answer(uid, msgSSEResponse, r, len(vals) > 0 && hasBinary(vals[0]))
				})
			}
		}
		a.sse.do(func() { a.nsp.ServerSideEvent(args, ack) })
	case msgFetchResponse, msgSSEResponse, msgBroadcastCount, msgBroadcastAck:
		a.onResponse(m)
	}
}
