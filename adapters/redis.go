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

	"github.com/switchboard/switchboard/socketio"
)

// Request types of the classic adapter (lib/index.ts@8.3.0 RequestType).
const (
	reqSockets        = 0
	reqAllRooms       = 1
	reqRemoteJoin     = 2 // join, leave, disconnect: in remoteOp's order
	reqRemoteLeave    = 3
	reqRemoteDisconn  = 4
	reqRemoteFetch    = 5
	reqServerSideEmit = 6
	reqBroadcast      = 7
	reqBroadcastCount = 8
	reqBroadcastAck   = 9
	answerTimeout     = redisReadTimeout
)

// classicAdapter is one namespace's adapter of the redis backend.
type classicAdapter struct {
	*clusterAdapter
	b   *redisBackend
	uid string

	channel         string // P#NSP#: broadcasts (P#NSP#room# for one room)
	pattern         string // P#NSP#*, escaped
	requestChannel  string // P-request#NSP#
	responseChannel string // P-response#NSP#
	specificChannel string // P-response#NSP#uid#
	// specificResponses answers on the requester's own channel, as Node's
	// publishOnSpecificResponseChannel (off by default, as in Node).
	specificResponses bool

	closeOnce sync.Once
}

var (
	_ socketio.Adapter = (*classicAdapter)(nil)
	_ clusterWire      = (*classicAdapter)(nil)
)

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
		b:               b,
		uid:             randomID(6),
		channel:         b.prefix + "#" + name + "#",
		requestChannel:  b.prefix + "-request#" + name + "#",
		responseChannel: b.prefix + "-response#" + name + "#",
	}
	a.pattern = escapeGlob(a.channel) + "*"
	a.specificChannel = a.responseChannel + a.uid + "#"
	// Nodes are counted on the request channel, as Node counts them (the emitter does not
	// subscribe it).
	a.clusterAdapter = newClusterAdapter(nsp, b.log, b.conn, b.ctx, a, clusterSpec{
		form:    answerForm{count: reqBroadcastCount, ack: reqBroadcastAck, sseValue: "data"},
		idBytes: 6, counted: a.requestChannel, answerTimeout: answerTimeout,
	})
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
		a.drain()
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

// responseTo is the channel of the answers to requester.
func (a *classicAdapter) responseTo(requester string) string {
	if a.specificResponses && requester != "" {
		return a.responseChannel + requester + "#"
	}
	return a.responseChannel
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

// sendBroadcast implements clusterWire: msgpack on P#NSP#room# for exactly one room, P#NSP#
// otherwise.
func (a *classicAdapter) sendBroadcast(p *socketio.Packet, opts socketio.BroadcastOptions) (*socketio.Packet, error) {
	msg, err := a.encodeBroadcast(p, opts)
	if err != nil {
		return nil, fmt.Errorf("adapters: encode broadcast: %w", err)
	}
	channel := a.channel
	if len(opts.Rooms) == 1 {
		channel += opts.Rooms[0] + "#"
	}
	return p, a.publish(a.b.ctx, channel, msg)
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

// Requests from this node: JSON on P-request#NSP# (a broadcast with ack: msgpack).

type classicAckRequest struct {
	UID       string     `json:"uid"`
	RequestID string     `json:"requestId"`
	Type      int        `json:"type"`
	Packet    wirePacket `json:"packet"`
	Opts      wireOpts   `json:"opts"`
}

// sendBroadcastWithAck implements clusterWire: type 7, answered by one type-8 client count per
// node and one type-9 message per client ack.
func (a *classicAdapter) sendBroadcastWithAck(ctx context.Context, rid string, p *socketio.Packet, opts wireOpts) error {
	msg, err := socketio.EncodeMsgpack(classicAckRequest{
		UID: a.uid, RequestID: rid, Type: reqBroadcast,
		Packet: wirePacket{Type: int(socketio.PacketEvent), Data: wireData(p.Data), Nsp: a.nsp.Name()},
		Opts:   opts,
	})
	if err != nil {
		return fmt.Errorf("adapters: encode broadcast: %w", err)
	}
	return a.publish(ctx, a.requestChannel, msg)
}

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

// sendFetch implements clusterWire (type 5).
func (a *classicAdapter) sendFetch(ctx context.Context, rid string, opts socketio.BroadcastOptions) error {
	ro := encodeRequestOpts(opts)
	return a.request(ctx, classicRequest{UID: a.uid, RequestID: rid, Type: reqRemoteFetch, Opts: &ro})
}

// sendRemote implements clusterWire (types 2, 3, 4; our own echo is skipped by uid).
func (a *classicAdapter) sendRemote(ctx context.Context, op remoteOp, opts socketio.BroadcastOptions, rooms []string, close bool) error {
	ro := encodeRequestOpts(opts)
	r := classicRequest{UID: a.uid, Type: reqRemoteJoin + int(op), Opts: &ro}
	if op == remoteDisconnect {
		r.Close = &close
	} else {
		r.Rooms = nonNil(rooms)
	}
	return a.request(ctx, r)
}

// sendServerSideEmit implements clusterWire (type 6, as Node's JSON: binary arrives as Node's
// Buffer JSON, {"type":"Buffer","data":[...]}, as between Node servers).
func (a *classicAdapter) sendServerSideEmit(ctx context.Context, rid string, args []any) error {
	data, err := socketio.MarshalJSON(args)
	if err != nil {
		return fmt.Errorf("adapters: encode serverSideEmit: %w", err)
	}
	return a.request(ctx, classicRequest{UID: a.uid, RequestID: rid, Type: reqServerSideEmit, Data: data})
}
