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

	"github.com/switchboard/switchboard/socketio"
)

// shardedAdapter is one namespace's adapter of the redis-sharded backend.
type shardedAdapter struct {
	*clusterAdapter
	b   *redisBackend
	uid string

	channel         string // P#NSP#
	responseChannel string // P#NSP#uid#

	rmu    sync.Mutex
	rooms  map[string]int // local public rooms → local sockets in them (their channels are subscribed)
	closed bool
}

var (
	_ socketio.Adapter = (*shardedAdapter)(nil)
	_ clusterWire      = (*shardedAdapter)(nil)
)

func (b *redisBackend) newSharded(nsp *socketio.Namespace) (socketio.Adapter, error) {
	name := nsp.Name()
	a := &shardedAdapter{
		b:       b,
		uid:     randomID(8),
		channel: b.prefix + "#" + name + "#",
		rooms:   map[string]int{},
	}
	a.responseChannel = a.channel + a.uid + "#"
	// Nodes are counted by SHARDNUMSUB of the main channel, as Node counts them.
	a.clusterAdapter = newClusterAdapter(nsp, b.log, b.conn, b.ctx, a, clusterSpec{
		form:    answerForm{count: msgBroadcastCount, ack: msgBroadcastAck, sseValue: "packet"},
		idBytes: 8, counted: a.channel, sharded: true, answerTimeout: answerTimeout,
	})
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
		a.drain()
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
	m := clusterMessage{Type: typ, Data: data, UID: a.uid, Nsp: a.nsp.Name()}
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
	case broadcastData:
		m := map[string]any{"packet": map[string]any{"type": d.Packet.Type, "data": wireData(d.Packet.Data)}, "opts": d.Opts}
		if d.RequestID != "" {
			m["requestId"] = d.RequestID
		}
		return m
	case sseData:
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

// answer queues an answer to the requester's own channel.
func (a *shardedAdapter) answer(requester string, typ int, data any, binary bool) {
	msg, err := a.encode(typ, data, binary)
	if err != nil {
		a.log.Debug().Err(err).Msg("encode an answer")
		return
	}
	a.queueAnswer(a.channel+requester+"#", msg)
}

// Calls of this node (clusterWire).

func (a *shardedAdapter) sendBroadcast(p *socketio.Packet, opts socketio.BroadcastOptions) (*socketio.Packet, error) {
	data := broadcastData{Packet: wirePacket{Type: int(socketio.PacketEvent), Data: p.Data}, Opts: encodeOpts(opts)}
	return p, a.publish(a.b.ctx, msgBroadcast, data, hasBinary(p.Data...), a.channelFor(msgBroadcast, false, opts.Rooms))
}

func (a *shardedAdapter) sendBroadcastWithAck(ctx context.Context, rid string, p *socketio.Packet, opts wireOpts) error {
	data := broadcastData{Packet: wirePacket{Type: int(socketio.PacketEvent), Data: p.Data}, RequestID: rid, Opts: opts}
	return a.publish(ctx, msgBroadcast, data, hasBinary(p.Data...), a.channel)
}

func (a *shardedAdapter) sendFetch(ctx context.Context, rid string, opts socketio.BroadcastOptions) error {
	return a.publish(ctx, msgFetchSockets, fetchData{Opts: encodeOpts(opts), RequestID: rid}, false, a.channel)
}

func (a *shardedAdapter) sendRemote(ctx context.Context, op remoteOp, opts socketio.BroadcastOptions, rooms []string, close bool) error {
	typ, data := remoteData(op, opts, rooms, close)
	return a.publish(ctx, typ, data, false, a.channel)
}

// sendServerSideEmit implements clusterWire (binary survives here: it travels as msgpack).
func (a *shardedAdapter) sendServerSideEmit(ctx context.Context, rid string, args []any) error {
	return a.publish(ctx, msgServerSideEmit, sseData{RequestID: rid, Packet: args}, hasBinary(args...), a.channel)
}

// Answers to other nodes (clusterWire): msgpack when they hold binary, JSON otherwise.

func (a *shardedAdapter) answerCount(requester string, rid any, clients int) {
	a.answer(requester, msgBroadcastCount, map[string]any{"requestId": rid, "clientCount": clients}, false)
}

func (a *shardedAdapter) answerAck(requester string, rid any, v any, ok bool) {
	a.answerPacket(requester, msgBroadcastAck, rid, v, ok)
}

func (a *shardedAdapter) answerSSE(requester string, rid any, v any, ok bool) {
	a.answerPacket(requester, msgSSEResponse, rid, v, ok)
}

// answerPacket answers with {requestId, packet: v}, packet left out when there is no v (Node's
// undefined).
func (a *shardedAdapter) answerPacket(requester string, typ int, rid any, v any, ok bool) {
	r := map[string]any{"requestId": rid}
	if ok {
		r["packet"] = v
	}
	a.answer(requester, typ, r, ok && hasBinary(v))
}

func (a *shardedAdapter) answerSockets(requester string, rid any, sockets []wireSocket) {
	list := make([]any, 0, len(sockets))
	datas := make([]any, 0, len(sockets))
	for _, ws := range sockets {
		list = append(list, ws)
		datas = append(datas, ws.Data)
	}
	a.answer(requester, msgFetchResponse, map[string]any{"requestId": rid, "sockets": list}, hasBinary(datas...))
}

// Messages from other nodes.

// onResponseMessage takes what arrives on our own channel: answers to our requests (Node does
// not check their uid or namespace).
func (a *shardedAdapter) onResponseMessage(_, payload string) {
	if m := a.object(payload, decodeAny, ""); m != nil {
		a.onResponse(m)
	}
}

func (a *shardedAdapter) onResponse(m map[string]any) {
	d, _ := m["data"].(map[string]any)
	if key := requestKey(d["requestId"]); key != "" {
		typ, _ := m["type"].(float64)
		a.pending.answer(key, typ, d)
	}
}

// onMessage handles what another node published on the main channel or a room's channel, in
// the order it was published.
func (a *shardedAdapter) onMessage(_, payload string) {
	m := a.object(payload, decodeAny, "")
	if m == nil {
		return
	}
	uid, _ := m["uid"].(string)
	if nsp, _ := m["nsp"].(string); uid == a.uid || nsp != a.nsp.Name() {
		return
	}
	typ, ok := m["type"].(float64)
	if !ok {
		return
	}
	d, _ := m["data"].(map[string]any)
	rid, withID := d["requestId"]
	switch int(typ) {
	case msgBroadcast:
		p, ok := decodePacket(d["packet"], a.nsp.Name())
		switch {
		case !ok:
		case withID:
			a.onBroadcastWithAck(uid, rid, p, decodeOpts(d["opts"]))
		default:
			a.BroadcastLocal(p, decodeOpts(d["opts"]))
		}
	case msgFetchResponse, msgSSEResponse, msgBroadcastCount, msgBroadcastAck:
		a.onResponse(m)
	default:
		a.onClusterRequest(uid, int(typ), d, rid, withID)
	}
}
