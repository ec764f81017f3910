package adapters

// redis.go: the classic adapter, @socket.io/redis-adapter 8.3's createAdapter on the wire (see
// doc.go): broadcasts on P#NSP# and P#NSP#room#, requests and responses on P-request#NSP# and
// P-response#NSP#[uid#].

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/socketio"
)

// Request types of the classic adapter (lib/index.ts@8.3.0 RequestType).
const (
	reqSockets        = 0
	reqAllRooms       = 1
	reqRemoteJoin     = 2
	reqRemoteLeave    = 3
	reqRemoteDisconn  = 4
	reqRemoteFetch    = 5
	reqServerSideEmit = 6
	reqBroadcast      = 7
	reqBroadcastCount = 8
	reqBroadcastAck   = 9
	requestsTimeout   = 5 * time.Second // Node's requestsTimeout default
	answerTimeout     = redisReadTimeout
	defaultAckTimeout = 5 * time.Second // flags.timeout when the caller's context has no deadline
)

// classicAdapter is one namespace's adapter of the redis backend.
type classicAdapter struct {
	*socketio.LocalAdapter
	b   *redisBackend
	nsp *socketio.Namespace
	log zerolog.Logger
	uid string

	channel         string // P#NSP#: broadcasts (P#NSP#room# for one room)
	pattern         string // P#NSP#*, escaped
	requestChannel  string // P-request#NSP#
	responseChannel string // P-response#NSP#
	specificChannel string // P-response#NSP#uid#
	// specificResponses answers on the requester's own channel, as Node's
	// publishOnSpecificResponseChannel (off by default, as in Node).
	specificResponses bool

	pending pendingSet // our fetchSockets, serverSideEmit with ack: by request id
	acks    pendingSet // our broadcasts with ack
	out     serial     // answers to other nodes, in order
	sse     serial     // other nodes' serverSideEmits, handed to the namespace in order

	closeOnce sync.Once
}

var _ socketio.Adapter = (*classicAdapter)(nil)

// escapeGlob escapes what PSUBSCRIBE would read as a glob (Node does not; a namespace with * in
// its name would match too much there).
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (b *redisBackend) newClassic(nsp *socketio.Namespace) (socketio.Adapter, error) {
	name := nsp.Name()
	a := &classicAdapter{
		LocalAdapter:    socketio.NewLocalAdapter(nsp, socketio.LocalOptions{Recovery: false}),
		b:               b,
		nsp:             nsp,
		log:             b.log.With().Str("nsp", name).Logger(),
		uid:             randomID(6),
		channel:         b.prefix + "#" + name + "#",
		requestChannel:  b.prefix + "-request#" + name + "#",
		responseChannel: b.prefix + "-response#" + name + "#",
	}
	a.pattern = escapeGlob(a.channel) + "*"
	a.specificChannel = a.responseChannel + a.uid + "#"
	b.nodes.watch(a.requestChannel, true)
	ctx, cancel := context.WithTimeout(b.ctx, subWait)
	defer cancel()
	b.classic.subscribe(ctx,
		map[string]handler{a.pattern: a.onBroadcast},
		map[string]handler{a.requestChannel: a.onRequest, a.responseChannel: a.onResponse, a.specificChannel: a.onResponse})
	return a, nil
}

// Close implements socketio.Adapter: the namespace's subscriptions end (Node's close()).
func (a *classicAdapter) Close() error {
	a.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), answerTimeout)
		defer cancel()
		a.b.classic.unsubscribe(ctx, []string{a.pattern}, []string{a.requestChannel, a.responseChannel, a.specificChannel})
		a.b.nodes.watch(a.requestChannel, false)
		a.out.wait()
		a.sse.wait()
	})
	return a.LocalAdapter.Close()
}

// hasRoom reports whether a local socket is in room (a socket's id is its room).
func (a *classicAdapter) hasRoom(room string) bool {
	return a.RoomSize(room) > 0 || a.nsp.Socket(room) != nil
}

// publish sends one of our calls through the fenced publish; the route keeps the namespace's
// messages on one Redis Cluster master, hence in order.
func (a *classicAdapter) publish(ctx context.Context, channel string, msg []byte) error {
	_, err := a.b.conn.Publish(ctx, a.channel, channel, msg)
	return Unavailable(err)
}

// answer queues an answer to another node's request.
func (a *classicAdapter) answer(requester string, msg []byte) {
	channel := a.responseChannel
	if a.specificResponses && requester != "" {
		channel += requester + "#"
	}
	a.answerOn(channel, msg)
}

func (a *classicAdapter) answerOn(channel string, msg []byte) {
	a.out.do(func() {
		ctx, cancel := context.WithTimeout(a.b.ctx, answerTimeout)
		defer cancel()
		if err := a.b.conn.Client().Publish(ctx, channel, msg).Err(); err != nil {
			a.log.Debug().Err(err).Msg("answer another node")
		}
	})
}

// Broadcasts.

func (a *classicAdapter) encodeBroadcast(p *socketio.Packet, opts socketio.BroadcastOptions) ([]byte, error) {
	pkt := wirePacket{Type: int(socketio.PacketEvent), Data: wireData(p.Data), Nsp: a.nsp.Name()}
	if p.ID >= 0 {
		id := p.ID
		pkt.ID = &id
	}
	return socketio.EncodeMsgpack([]any{a.uid, pkt, encodeOpts(opts)})
}

// Broadcast implements socketio.Adapter: it returns once Redis took the message (then delivers
// locally), or fails with socketio.ErrUnavailable and delivers nothing.
func (a *classicAdapter) Broadcast(p *socketio.Packet, opts socketio.BroadcastOptions) error {
	if opts.Local {
		a.BroadcastLocal(p, opts)
		return nil
	}
	msg, err := a.encodeBroadcast(p, opts)
	if err != nil {
		return fmt.Errorf("adapters: encode broadcast: %w", err)
	}
	channel := a.channel
	if len(opts.Rooms) == 1 {
		channel += opts.Rooms[0] + "#"
	}
	if err := a.publish(a.b.ctx, channel, msg); err != nil {
		return err
	}
	a.BroadcastLocal(p, opts)
	return nil
}

// onBroadcast receives what any node (or the emitter) broadcast on the namespace.
func (a *classicAdapter) onBroadcast(channel, payload string) {
	rest, ok := strings.CutPrefix(channel, a.channel)
	if !ok {
		return
	}
	if rest != "" {
		// A room channel: a node without a local socket in the room does not even decode it
		// (the traffic of Node's socket.emit with recovery on, one room per socket).
		room := rest[:len(rest)-1]
		if room != "" && !a.hasRoom(room) {
			return
		}
	}
	v, err := socketio.DecodeMsgpack([]byte(payload))
	if err != nil {
		a.log.Debug().Err(err).Msg("ignore a malformed broadcast")
		return
	}
	arr, ok := v.([]any)
	if !ok || len(arr) < 3 {
		return
	}
	if uid, _ := arr[0].(string); uid == a.uid {
		return // our own, delivered locally already
	}
	pm, ok := arr[1].(map[string]any)
	if !ok {
		return
	}
	nsp, present := pm["nsp"]
	if !present {
		nsp = "/"
	}
	if nsp != a.nsp.Name() {
		return
	}
	p, ok := decodePacket(pm, a.nsp.Name())
	if !ok {
		return
	}
	a.BroadcastLocal(p, decodeOpts(arr[2]))
}

// Broadcasts with acks.

type classicAckRequest struct {
	UID       string     `json:"uid"`
	RequestID string     `json:"requestId"`
	Type      int        `json:"type"`
	Packet    wirePacket `json:"packet"`
	Opts      wireOpts   `json:"opts"`
}

// BroadcastWithAck implements socketio.Adapter: every node (Node servers and Go ones) reports
// its client count and forwards each client's ack; it ends when every node counted by NUMSUB
// reported and every counted client acked, or when ctx ends (timedOut).
func (a *classicAdapter) BroadcastWithAck(ctx context.Context, p *socketio.Packet, opts socketio.BroadcastOptions) ([]*socketio.Args, bool, error) {
	if opts.Local {
		return a.LocalAdapter.BroadcastWithAck(ctx, p, opts)
	}
	rid := randomID(6)
	g := newAckGather()
	remove := a.acks.add(rid, func(m map[string]any) {
		typ, _ := m["type"].(float64)
		switch typ {
		case reqBroadcastCount:
			n, _ := m["clientCount"].(float64)
			g.count(int(n))
		case reqBroadcastAck:
			if v, ok := m["packet"]; ok {
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
	msg, err := socketio.EncodeMsgpack(classicAckRequest{
		UID: a.uid, RequestID: rid, Type: reqBroadcast,
		Packet: wirePacket{Type: int(socketio.PacketEvent), Data: wireData(p.Data), Nsp: a.nsp.Name()},
		Opts:   wo,
	})
	if err != nil {
		return nil, false, fmt.Errorf("adapters: encode broadcast: %w", err)
	}
	if err := a.publish(ctx, a.requestChannel, msg); err != nil {
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

// Requests from this node.

type classicRequest struct {
	UID       string           `json:"uid"`
	RequestID string           `json:"requestId,omitempty"`
	Type      int              `json:"type"`
	Opts      *wireRequestOpts `json:"opts,omitempty"`
	Rooms     []string         `json:"rooms,omitempty"`
	Close     *bool            `json:"close,omitempty"`
	Data      json.RawMessage  `json:"data,omitempty"`
}

func (a *classicAdapter) request(ctx context.Context, r classicRequest) error {
	msg, err := socketio.MarshalJSON(r)
	if err != nil {
		return fmt.Errorf("adapters: encode request: %w", err)
	}
	return a.publish(ctx, a.requestChannel, msg)
}

// ServerCount implements socketio.Adapter: the subscribers of the namespace's request channel,
// as Node counts them (every node subscribes it once; the emitter does not).
func (a *classicAdapter) ServerCount(ctx context.Context) (int, error) {
	n, err := a.b.conn.NumSub(ctx, false, a.requestChannel)
	if err != nil {
		return 0, Unavailable(err)
	}
	return int(n[a.requestChannel]), nil
}

// FetchSockets implements socketio.Adapter. Every other node counted must answer within 5 s (as
// in Node); otherwise what arrived is returned with an error wrapping context.DeadlineExceeded.
func (a *classicAdapter) FetchSockets(ctx context.Context, opts socketio.BroadcastOptions) ([]socketio.RemoteSocket, error) {
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
	rid := randomID(6)
	g := newGather(n-1, local)
	remove := a.pending.add(rid, func(m map[string]any) { g.add(decodeSockets(m["sockets"])...) })
	defer remove()
	ro := encodeRequestOpts(opts)
	if err := a.request(ctx, classicRequest{UID: a.uid, RequestID: rid, Type: reqRemoteFetch, Opts: &ro}); err != nil {
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

func decodeSockets(v any) []socketio.RemoteSocket {
	arr, _ := v.([]any)
	out := make([]socketio.RemoteSocket, 0, len(arr))
	for _, e := range arr {
		if rs, ok := decodeSocket(e); ok {
			out = append(out, rs)
		}
	}
	return out
}

// AddSockets implements socketio.Adapter: once Redis took the request, the local sockets join
// (our own echo is ignored by uid).
func (a *classicAdapter) AddSockets(ctx context.Context, opts socketio.BroadcastOptions, rooms []string) error {
	if !opts.Local {
		ro := encodeRequestOpts(opts)
		if err := a.request(ctx, classicRequest{UID: a.uid, Type: reqRemoteJoin, Opts: &ro, Rooms: nonNil(rooms)}); err != nil {
			return err
		}
	}
	a.AddLocal(opts, rooms)
	return nil
}

// DelSockets implements socketio.Adapter.
func (a *classicAdapter) DelSockets(ctx context.Context, opts socketio.BroadcastOptions, rooms []string) error {
	if !opts.Local {
		ro := encodeRequestOpts(opts)
		if err := a.request(ctx, classicRequest{UID: a.uid, Type: reqRemoteLeave, Opts: &ro, Rooms: nonNil(rooms)}); err != nil {
			return err
		}
	}
	a.DelLocal(opts, rooms)
	return nil
}

// DisconnectSockets implements socketio.Adapter.
func (a *classicAdapter) DisconnectSockets(ctx context.Context, opts socketio.BroadcastOptions, close bool) error {
	if !opts.Local {
		ro := encodeRequestOpts(opts)
		if err := a.request(ctx, classicRequest{UID: a.uid, Type: reqRemoteDisconn, Opts: &ro, Close: &close}); err != nil {
			return err
		}
	}
	a.DisconnectLocal(opts, close)
	return nil
}

// ServerSideEmit implements socketio.Adapter (without ack, as Node's JSON: binary arrives as
// Node's Buffer JSON, {"type":"Buffer","data":[...]}, as between Node servers).
func (a *classicAdapter) ServerSideEmit(ctx context.Context, args []any) error {
	if err := checkSSE(args); err != nil {
		return err
	}
	data, err := socketio.MarshalJSON(args)
	if err != nil {
		return fmt.Errorf("adapters: encode serverSideEmit: %w", err)
	}
	return a.request(ctx, classicRequest{UID: a.uid, Type: reqServerSideEmit, Data: data})
}

// ServerSideEmitWithAck sends args to every other node's namespace and returns the first
// argument of each node's answer; every other node counted must answer within 5 s (a node whose
// handler does not call its ack never does, as in Node), otherwise what arrived is returned with
// an error wrapping context.DeadlineExceeded.
func (a *classicAdapter) ServerSideEmitWithAck(ctx context.Context, args []any) ([]any, error) {
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
	data, err := socketio.MarshalJSON(args)
	if err != nil {
		return nil, fmt.Errorf("adapters: encode serverSideEmit: %w", err)
	}
	rid := randomID(6)
	g := newGather[any](n-1, nil)
	remove := a.pending.add(rid, func(m map[string]any) { g.add(m["data"]) })
	defer remove()
	if err := a.request(ctx, classicRequest{UID: a.uid, RequestID: rid, Type: reqServerSideEmit, Data: data}); err != nil {
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
