package adapters

// streams_adapter.go: one namespace's adapter of the redis-streams backend (streams.go): its
// wire, and what it does with the other nodes' messages.

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/switchboard/switchboard/socketio"
)

// streamsAdapter is one namespace's adapter of the redis-streams backend.
type streamsAdapter struct {
	*clusterAdapter
	b       *streamsBackend
	public  string // P#NSP#: requests from every node
	private string // P#NSP#uid#: answers to this node

	closeOnce sync.Once
}

var (
	_ socketio.Adapter   = (*streamsAdapter)(nil)
	_ socketio.Recoverer = (*streamsAdapter)(nil)
	_ clusterWire        = (*streamsAdapter)(nil)
)

func (b *streamsBackend) newAdapter(nsp *socketio.Namespace) (socketio.Adapter, error) {
	name := nsp.Name()
	a := &streamsAdapter{b: b, public: b.prefix + "#" + name + "#"}
	a.private = a.public + b.uid + "#"
	// Nodes are counted by NUMSUB of the public channel, as Node 0.3.1 counts them.
	a.clusterAdapter = newClusterAdapter(nsp, b.log, b.conn, b.ctx, a, clusterSpec{
		form:    answerForm{count: msgBroadcastCount, ack: msgBroadcastAck, sseValue: "packet"},
		idBytes: 8, counted: a.public, answerTimeout: streamsAnswerTimeout,
	})
	b.mu.Lock()
	b.adapters[name] = a
	b.mu.Unlock()
	b.nodes.watch(a.public, true)
	ctx, cancel := context.WithTimeout(b.ctx, subWait)
	defer cancel()
	b.sub.subscribe(ctx, nil, map[string]handler{a.public: a.onPubSub, a.private: a.onPubSub})
	return a, nil
}

// Close implements socketio.Adapter: the namespace stops reading the stream and its channels.
func (a *streamsAdapter) Close() error {
	a.closeOnce.Do(func() {
		b := a.b
		b.mu.Lock()
		mine := b.adapters[a.nsp.Name()] == a
		if mine {
			delete(b.adapters, a.nsp.Name())
		}
		b.mu.Unlock()
		if mine {
			b.nodes.watch(a.public, false)
		}
		ctx, cancel := context.WithTimeout(context.Background(), streamsAnswerTimeout)
		defer cancel()
		b.sub.unsubscribe(ctx, nil, []string{a.public, a.private})
		a.drain()
	})
	return a.LocalAdapter.Close()
}

// Recovers implements socketio.Recoverer: sessions are kept in Redis when the backend was given
// a recovery window.
func (a *streamsAdapter) Recovers() bool { return a.b.window > 0 }

// The wire.

// fetchAnswer, packetAnswer and countAnswer are the answers to another node (msgpack only).
type fetchAnswer struct {
	RequestID string       `json:"requestId"`
	Sockets   []wireSocket `json:"sockets"`
}

// packetAnswer answers a serverSideEmit (10) or carries a client's ack (12): packet is the first
// argument, nil when there was none (Node's undefined, which @msgpack/msgpack writes as nil).
type packetAnswer struct {
	RequestID string `json:"requestId"`
	Packet    any    `json:"packet"`
}

type countAnswer struct {
	RequestID   string `json:"requestId"`
	ClientCount int    `json:"clientCount"`
}

// wireEvent is p on the wire (the cluster adapters' packets carry no nsp).
func wireEvent(p *socketio.Packet) wirePacket {
	pkt := wirePacket{Type: int(socketio.PacketEvent), Data: wireData(p.Data)}
	if p.ID >= 0 {
		id := p.ID
		pkt.ID = &id
	}
	return pkt
}

// append adds one of our messages to the stream, JSON (or msgpack with binary) as Node writes
// it.
func (a *streamsAdapter) append(ctx context.Context, typ int, data any, binary bool) (string, error) {
	s, err := encodeStreamData(data, binary)
	if err != nil {
		return "", fmt.Errorf("adapters: encode stream entry: %w", err)
	}
	return a.b.xadd(ctx, a.nsp.Name(), typ, s)
}

// publish sends one of our messages on channel (fenced).
func (a *streamsAdapter) publish(ctx context.Context, channel string, typ int, data any) error {
	msg, err := socketio.EncodeMsgpack(clusterMessage{Type: typ, Data: data, UID: a.b.uid, Nsp: a.nsp.Name()})
	if err != nil {
		return fmt.Errorf("adapters: encode message: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, streamsCallTimeout)
	defer cancel()
	_, err = a.b.conn.Publish(ctx, a.b.stream, channel, msg)
	return Unavailable(err)
}

// answer queues an answer to another node on its private channel.
func (a *streamsAdapter) answer(requester string, typ int, data any) {
	msg, err := socketio.EncodeMsgpack(clusterMessage{Type: typ, Data: data, UID: a.b.uid, Nsp: a.nsp.Name()})
	if err != nil {
		a.log.Debug().Err(err).Msg("encode an answer")
		return
	}
	a.queueAnswer(a.public+requester+"#", msg)
}

// Calls of this node (clusterWire): broadcasts without ack, joins, leaves and disconnects go
// into the stream, the rest through pub/sub (Node keeps them out of the stream).

// sendBroadcast implements clusterWire: the event goes into the stream first; this node then
// delivers it with its entry id appended as its offset when recovery is on.
func (a *streamsAdapter) sendBroadcast(p *socketio.Packet, opts socketio.BroadcastOptions) (*socketio.Packet, error) {
	binary := socketio.ValuesArgs(p.Data).HasBinary()
	id, err := a.append(a.b.ctx, msgBroadcast, broadcastData{Packet: wireEvent(p), Opts: encodeOpts(opts)}, binary)
	if err != nil {
		return nil, err
	}
	return a.withOffset(p, opts, id), nil
}

// withOffset is p with offset appended to its data when recovery is on and p is an event
// without ack that is not volatile (Node's addOffsetIfNecessary).
func (a *streamsAdapter) withOffset(p *socketio.Packet, opts socketio.BroadcastOptions, offset string) *socketio.Packet {
	if a.b.window <= 0 || p.Type != socketio.PacketEvent || p.ID >= 0 || opts.Volatile || offset == "" {
		return p
	}
	q := *p
	q.Data = append(slices.Clip(p.Data), offset)
	return &q
}

func (a *streamsAdapter) sendBroadcastWithAck(ctx context.Context, rid string, p *socketio.Packet, opts wireOpts) error {
	return a.publish(ctx, a.public, msgBroadcast, broadcastData{Packet: wireEvent(p), RequestID: rid, Opts: opts})
}

func (a *streamsAdapter) sendFetch(ctx context.Context, rid string, opts socketio.BroadcastOptions) error {
	return a.publish(ctx, a.public, msgFetchSockets, fetchData{Opts: encodeOpts(opts), RequestID: rid})
}

func (a *streamsAdapter) sendRemote(ctx context.Context, op remoteOp, opts socketio.BroadcastOptions, rooms []string, close bool) error {
	typ, data := remoteData(op, opts, rooms, close)
	_, err := a.append(ctx, typ, data, false)
	return err
}

// sendServerSideEmit implements clusterWire (msgpack through pub/sub: binary arrives as binary).
func (a *streamsAdapter) sendServerSideEmit(ctx context.Context, rid string, args []any) error {
	return a.publish(ctx, a.public, msgServerSideEmit, sseData{RequestID: rid, Packet: wireData(args)})
}

// Answers to other nodes (clusterWire), on the requester's private channel.

func (a *streamsAdapter) answerCount(requester string, rid any, clients int) {
	a.answer(requester, msgBroadcastCount, countAnswer{RequestID: requestKey(rid), ClientCount: clients})
}

func (a *streamsAdapter) answerAck(requester string, rid any, v any, _ bool) {
	a.answer(requester, msgBroadcastAck, packetAnswer{RequestID: requestKey(rid), Packet: v})
}

func (a *streamsAdapter) answerSSE(requester string, rid any, v any, ok bool) {
	var w any
	if ok {
		w = wireValue(v)
	}
	a.answer(requester, msgSSEResponse, packetAnswer{RequestID: requestKey(rid), Packet: w})
}

func (a *streamsAdapter) answerSockets(requester string, rid any, sockets []wireSocket) {
	for i := range sockets {
		sockets[i].Data = wireValue(sockets[i].Data)
	}
	a.answer(requester, msgFetchResponse, fetchAnswer{RequestID: requestKey(rid), Sockets: sockets})
}

// Messages from other nodes.

// onPubSub takes a message of the namespace's public or private channel: msgpack only, as Node
// 0.3.1 reads them.
func (a *streamsAdapter) onPubSub(_, payload string) {
	m := a.object(payload, socketio.DecodeMsgpack, "message")
	if m == nil {
		return
	}
	uid, _ := m["uid"].(string)
	nsp, _ := m["nsp"].(string)
	typ, ok := m["type"].(float64)
	if !ok || uid == a.b.uid || nsp != a.nsp.Name() {
		return
	}
	data, _ := m["data"].(map[string]any)
	switch int(typ) {
	case msgFetchResponse, msgSSEResponse, msgBroadcastCount, msgBroadcastAck:
		if rid, ok := data["requestId"].(string); ok {
			a.pending.answer(rid, typ, data)
		}
		return
	}
	a.onMessage(uid, int(typ), data, "")
}

// onMessage applies another node's message (ClusterAdapter.onMessage); offset is its stream
// entry id (empty for pub/sub).
func (a *streamsAdapter) onMessage(uid string, typ int, data map[string]any, offset string) {
	if data == nil {
		return
	}
	rid, withID := data["requestId"]
	withID = withID && rid != nil // @msgpack/msgpack writes an undefined requestId as nil
	if typ != msgBroadcast {
		a.onClusterRequest(uid, typ, data, rid, withID)
		return
	}
	p, ok := decodePacket(data["packet"], a.nsp.Name())
	if !ok {
		return
	}
	opts := decodeOpts(data["opts"])
	if withID {
		a.onBroadcastWithAck(uid, rid, p, opts) // flags kept, as ClusterAdapter's decodeOptions does
		return
	}
	a.BroadcastLocal(a.withOffset(p, opts, offset), opts)
}
