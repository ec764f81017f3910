package adapters

// streams_adapter.go: one namespace's adapter of the redis-streams backend (streams.go): its
// calls to the cluster and what it does with the other nodes' messages.

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/socketio"
)

// streamsAdapter is one namespace's adapter of the redis-streams backend.
type streamsAdapter struct {
	*socketio.LocalAdapter
	b       *streamsBackend
	nsp     *socketio.Namespace
	log     zerolog.Logger
	public  string // P#NSP#: requests from every node
	private string // P#NSP#uid#: answers to this node

	pending pendingSet // our fetchSockets, serverSideEmit with ack, broadcasts with ack
	out     serial     // answers to other nodes, in order
	sse     serial     // other nodes' serverSideEmits, handed to the namespace in order

	closeOnce sync.Once
}

var (
	_ socketio.Adapter   = (*streamsAdapter)(nil)
	_ socketio.Recoverer = (*streamsAdapter)(nil)
)

func (b *streamsBackend) newAdapter(nsp *socketio.Namespace) (socketio.Adapter, error) {
	name := nsp.Name()
	a := &streamsAdapter{
		LocalAdapter: socketio.NewLocalAdapter(nsp, socketio.LocalOptions{Recovery: false}),
		b:            b,
		nsp:          nsp,
		log:          b.log.With().Str("nsp", name).Logger(),
		public:       b.prefix + "#" + name + "#",
	}
	a.private = a.public + b.uid + "#"
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
		a.out.wait()
		a.sse.wait()
	})
	return a.LocalAdapter.Close()
}

// Recovers implements socketio.Recoverer: sessions are kept in Redis when the backend was given
// a recovery window.
func (a *streamsAdapter) Recovers() bool { return a.b.window > 0 }

// The wire.

// clusterMessage is a pub/sub message: one msgpack map {type, data, uid, nsp}, in Node's order.
type clusterMessage struct {
	Type int    `json:"type"`
	Data any    `json:"data"`
	UID  string `json:"uid"`
	Nsp  string `json:"nsp"`
}

type broadcastData struct {
	Packet    wirePacket `json:"packet"`
	RequestID string     `json:"requestId,omitempty"`
	Opts      wireOpts   `json:"opts"`
}

type roomsData struct {
	Opts  wireOpts `json:"opts"`
	Rooms []string `json:"rooms"`
}

type disconnectData struct {
	Opts  wireOpts `json:"opts"`
	Close bool     `json:"close"`
}

type fetchData struct {
	Opts      wireOpts `json:"opts"`
	RequestID string   `json:"requestId"`
}

type fetchAnswer struct {
	RequestID string       `json:"requestId"`
	Sockets   []wireSocket `json:"sockets"`
}

type sseData struct {
	RequestID string `json:"requestId,omitempty"`
	Packet    []any  `json:"packet"`
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
	channel := a.public + requester + "#"
	a.out.do(func() {
		ctx, cancel := context.WithTimeout(a.b.ctx, streamsAnswerTimeout)
		defer cancel()
		if err := a.b.conn.Client().Publish(ctx, channel, msg).Err(); err != nil {
			a.log.Debug().Err(err).Msg("answer another node")
		}
	})
}

// Calls of this node.

// Broadcast implements socketio.Adapter: the event goes into the stream first (nil means Redis
// took it); then, with its entry id appended as its offset when recovery is on, to the local
// sockets. While Redis is down it fails at once with socketio.ErrUnavailable and delivers nothing.
func (a *streamsAdapter) Broadcast(p *socketio.Packet, opts socketio.BroadcastOptions) error {
	if opts.Local {
		a.BroadcastLocal(p, opts)
		return nil
	}
	binary := socketio.ValuesArgs(p.Data).HasBinary()
	id, err := a.append(a.b.ctx, msgBroadcast, broadcastData{Packet: wireEvent(p), Opts: encodeOpts(opts)}, binary)
	if err != nil {
		return err
	}
	a.BroadcastLocal(a.withOffset(p, opts, id), opts)
	return nil
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

// BroadcastWithAck implements socketio.Adapter: the request goes through pub/sub (Node keeps
// broadcasts with acks out of the stream); every node counted by NUMSUB reports its client count
// and forwards each client's ack (its first argument), until all came or ctx ends (timedOut).
func (a *streamsAdapter) BroadcastWithAck(ctx context.Context, p *socketio.Packet, opts socketio.BroadcastOptions) ([]*socketio.Args, bool, error) {
	if opts.Local {
		return a.LocalAdapter.BroadcastWithAck(ctx, p, opts)
	}
	rid := randomID(8)
	g := newAckGather()
	remove := a.pending.add(rid, func(m map[string]any) {
		typ, _ := m["type"].(float64)
		data, _ := m["data"].(map[string]any)
		switch typ {
		case msgBroadcastCount:
			n, _ := data["clientCount"].(float64)
			g.count(int(n))
		case msgBroadcastAck:
			if v, ok := data["packet"]; ok {
				g.ack(socketio.ValuesArgs([]any{v}))
			} else {
				g.ack(socketio.ValuesArgs([]any{}))
			}
		}
	})
	defer remove()
	deadline, hasDeadline := ctx.Deadline()
	wo := encodeOpts(opts)
	wo.Flags.Timeout = timeoutMS(deadline, hasDeadline, streamsAckTimeout)
	if err := a.publish(ctx, a.public, msgBroadcast, broadcastData{Packet: wireEvent(p), RequestID: rid, Opts: wo}); err != nil {
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

// ServerCount implements socketio.Adapter: the subscribers of the namespace's public channel, as
// Node 0.3.1 counts them (every node subscribes it once).
func (a *streamsAdapter) ServerCount(ctx context.Context) (int, error) {
	n, err := a.b.conn.NumSub(ctx, false, a.public)
	if err != nil {
		return 0, Unavailable(err)
	}
	return int(n[a.public]), nil
}

// FetchSockets implements socketio.Adapter. Every other node counted must answer within 5 s (as
// in Node); otherwise what arrived is returned with an error wrapping context.DeadlineExceeded.
func (a *streamsAdapter) FetchSockets(ctx context.Context, opts socketio.BroadcastOptions) ([]socketio.RemoteSocket, error) {
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
		data, _ := m["data"].(map[string]any)
		g.add(decodeSockets(data["sockets"])...)
	})
	defer remove()
	if err := a.publish(ctx, a.public, msgFetchSockets, fetchData{Opts: encodeOpts(opts), RequestID: rid}); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, streamsRequestsTimeout)
	defer cancel()
	out, got, complete := g.wait(wctx)
	if !complete {
		return out, fmt.Errorf("adapters: fetch sockets: %d of %d other nodes answered: %w", got, n-1, context.DeadlineExceeded)
	}
	return out, nil
}

// AddSockets implements socketio.Adapter: once the stream took the request, the local sockets
// join.
func (a *streamsAdapter) AddSockets(ctx context.Context, opts socketio.BroadcastOptions, rooms []string) error {
	if !opts.Local {
		if _, err := a.append(ctx, msgSocketsJoin, roomsData{Opts: encodeOpts(opts), Rooms: nonNil(rooms)}, false); err != nil {
			return err
		}
	}
	a.AddLocal(opts, rooms)
	return nil
}

// DelSockets implements socketio.Adapter.
func (a *streamsAdapter) DelSockets(ctx context.Context, opts socketio.BroadcastOptions, rooms []string) error {
	if !opts.Local {
		if _, err := a.append(ctx, msgSocketsLeave, roomsData{Opts: encodeOpts(opts), Rooms: nonNil(rooms)}, false); err != nil {
			return err
		}
	}
	a.DelLocal(opts, rooms)
	return nil
}

// DisconnectSockets implements socketio.Adapter.
func (a *streamsAdapter) DisconnectSockets(ctx context.Context, opts socketio.BroadcastOptions, close bool) error {
	if !opts.Local {
		if _, err := a.append(ctx, msgDisconnectSockets, disconnectData{Opts: encodeOpts(opts), Close: close}, false); err != nil {
			return err
		}
	}
	a.DisconnectLocal(opts, close)
	return nil
}

// ServerSideEmit implements socketio.Adapter (msgpack through pub/sub: binary arrives as binary).
func (a *streamsAdapter) ServerSideEmit(ctx context.Context, args []any) error {
	if err := checkSSE(args); err != nil {
		return err
	}
	return a.publish(ctx, a.public, msgServerSideEmit, sseData{Packet: wireData(args)})
}

// ServerSideEmitWithAck sends args to every other node's namespace and returns the first
// argument of each node's answer; every other node counted must answer within 5 s (a node whose
// handler does not call its ack never does, as in Node), otherwise what arrived is returned with
// an error wrapping context.DeadlineExceeded.
func (a *streamsAdapter) ServerSideEmitWithAck(ctx context.Context, args []any) ([]any, error) {
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
		data, _ := m["data"].(map[string]any)
		g.add(data["packet"])
	})
	defer remove()
	if err := a.publish(ctx, a.public, msgServerSideEmit, sseData{RequestID: rid, Packet: wireData(args)}); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, streamsRequestsTimeout)
	defer cancel()
	out, got, complete := g.wait(wctx)
	if !complete {
		return out, fmt.Errorf("adapters: serverSideEmit: %d of %d other nodes answered: %w", got, n-1, context.DeadlineExceeded)
	}
	return out, nil
}

// Messages from other nodes.

// onPubSub takes a message of the namespace's public or private channel: msgpack only, as Node
// 0.3.1 reads them.
func (a *streamsAdapter) onPubSub(_, payload string) {
	v, err := socketio.DecodeMsgpack([]byte(payload))
	if err != nil {
		a.log.Debug().Err(err).Msg("ignore a malformed message")
		return
	}
	m, ok := v.(map[string]any)
	if !ok {
		return
	}
	uid, _ := m["uid"].(string)
	nsp, _ := m["nsp"].(string)
	typ, ok := m["type"].(float64)
	if !ok || uid == a.b.uid || nsp != a.nsp.Name() {
		return
	}
	switch int(typ) {
	case msgFetchResponse, msgSSEResponse, msgBroadcastCount, msgBroadcastAck:
		data, _ := m["data"].(map[string]any)
		if rid, ok := data["requestId"].(string); ok {
			a.pending.answer(rid, m)
		}
		return
	}
	data, _ := m["data"].(map[string]any)
	a.onMessage(uid, int(typ), data, "")
}

// onMessage applies another node's message (ClusterAdapter.onMessage); offset is its stream
// entry id (empty for pub/sub).
func (a *streamsAdapter) onMessage(uid string, typ int, data map[string]any, offset string) {
	if data == nil {
		return
	}
	switch typ {
	case msgBroadcast:
		p, ok := decodePacket(data["packet"], a.nsp.Name())
		if !ok {
			return
		}
		opts := decodeOpts(data["opts"])
		if rid, ok := data["requestId"]; ok && rid != nil {
			a.relayAcks(uid, requestKey(rid), p, opts)
			return
		}
		a.BroadcastLocal(a.withOffset(p, opts, offset), opts)
	case msgSocketsJoin:
		a.AddLocal(decodeOpts(data["opts"]), roomList(data["rooms"]))
	case msgSocketsLeave:
		a.DelLocal(decodeOpts(data["opts"]), roomList(data["rooms"]))
	case msgDisconnectSockets:
		c, _ := data["close"].(bool)
		a.DisconnectLocal(decodeOpts(data["opts"]), c)
	case msgFetchSockets:
		rid := requestKey(data["requestId"])
		local := a.FetchLocal(decodeOpts(data["opts"]))
		sockets := make([]wireSocket, 0, len(local))
		for _, rs := range local {
			s := encodeSocket(rs)
			s.Data = wireValue(s.Data)
			sockets = append(sockets, s)
		}
		a.answer(uid, msgFetchResponse, fetchAnswer{RequestID: rid, Sockets: sockets})
	case msgServerSideEmit:
		args, ok := data["packet"].([]any)
		if !ok {
			return
		}
		if name, ok := sseName(args); !ok || reservedSSE[name] {
			return
		}
		var ack func(...any)
		if rid, ok := data["requestId"]; ok && rid != nil {
			ack = a.sseAck(uid, requestKey(rid))
		}
		a.sse.do(func() { a.nsp.ServerSideEvent(args, ack) })
	}
}

// relayAcks runs another node's broadcast with acks here: its client count goes back first, then
// each client's ack.
func (a *streamsAdapter) relayAcks(requester, rid string, p *socketio.Packet, opts socketio.BroadcastOptions) {
	relay := &ackRelay{send: func(ack *socketio.Args) {
		v, _ := firstArg(ack)
		a.answer(requester, msgBroadcastAck, packetAnswer{RequestID: rid, Packet: v})
	}}
	n := a.BroadcastWithAckLocal(p, socketio.BroadcastOptions{Rooms: opts.Rooms, Except: opts.Except}, relay.onAck)
	a.answer(requester, msgBroadcastCount, countAnswer{RequestID: rid, ClientCount: n})
	relay.counted()
}

// sseAck answers a serverSideEmit once, with the first argument.
func (a *streamsAdapter) sseAck(requester, rid string) func(...any) {
	var once sync.Once
	return func(args ...any) {
		once.Do(func() {
			var v any
			if len(args) > 0 {
				v = wireValue(args[0])
			}
			a.answer(requester, msgSSEResponse, packetAnswer{RequestID: rid, Packet: v})
		})
	}
}
