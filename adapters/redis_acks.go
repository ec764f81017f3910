package adapters

import (
	"encoding/json"
	"sync"
	"time"

	sioadapter "github.com/zishang520/socket.io/adapters/adapter/v3"
	sioredis "github.com/zishang520/socket.io/adapters/redis/v3"
	"github.com/zishang520/socket.io/adapters/redis/v3/adapter"
	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

// ackedAdapter is the library's Redis pub/sub adapter with a broadcast-with-acks that does not
// lose answers. The library (zishang520 adapters/redis v3.0.2) publishes the request and only
// then records it, so another node's client count, which comes back fast, is now and then
// dropped; the caller then waits for a count that never comes, until its timeout. Here the
// request is recorded first and the answers, this node's included, are read from the response
// channel by this type; the library's own reader finds no such request and ignores them. When
// Redis cannot take the request, this node's sockets alone get it. Everything else is the
// library's.
type ackedAdapter struct {
	adapter.RedisAdapter
	conn     *redisConn
	requests string // the request channel, prefix-request#nsp#

	pending sync.Map // request id → *ackRequest
}

type ackRequest struct {
	count func(uint64)
	ack   socket.Ack
}

// newAckedAdapter wraps a and listens to its response channel.
func newAckedAdapter(a adapter.RedisAdapter, conn *redisConn, nsp string) *ackedAdapter {
	aa := &ackedAdapter{RedisAdapter: a, conn: conn, requests: conn.prefix + "-request#" + nsp + "#"}
	conn.listen(conn.sub.Subscribe(conn.ctx, conn.prefix+"-response#"+nsp+"#"), "responses of "+nsp, aa.onResponse)
	return aa
}

// BroadcastWithAck implements socket.Adapter.
func (a *ackedAdapter) BroadcastWithAck(packet *parser.Packet, opts *socket.BroadcastOptions, clientCount func(uint64), ack socket.Ack) {
	packet.Nsp = a.Nsp().Name()
	if opts != nil && opts.Flags != nil && opts.Flags.Local {
		a.RedisAdapter.BroadcastWithAck(packet, opts, clientCount, ack)
		return
	}
	id := sioadapter.RandomId()
	a.pending.Store(id, &ackRequest{count: clientCount, ack: ack})
	timeout := sioadapter.DEFAULT_TIMEOUT
	if opts != nil && opts.Flags != nil && opts.Flags.Timeout != nil {
		timeout = *opts.Flags.Timeout
	}
	time.AfterFunc(timeout, func() { a.pending.Delete(id) })
	msg, err := a.Parser().Encode(&sioredis.RedisRequest{
		Uid:       a.Uid(),
		RequestId: id,
		Type:      sioredis.BROADCAST,
		Packet:    packet,
		Opts:      sioadapter.EncodeOptions(opts),
	})
	if err == nil {
		err = a.conn.cmd.Publish(a.conn.ctx, a.requests, msg).Err()
	}
	if err == nil {
		// This node's library reads the request too and, not knowing it, serves it like any
		// other node's: this node's sockets get the packet once, and its count and acks come
		// back on the response channel with everyone else's.
		return
	}
	a.pending.Delete(id)
	a.conn.log.Debug().Err(err).Str("nsp", packet.Nsp).Msg("redis: broadcast with acks reaches this node only")
	local := &socket.BroadcastOptions{Flags: &socket.BroadcastFlags{Local: true}}
	if opts != nil {
		local.Rooms, local.Except = opts.Rooms, opts.Except
		if opts.Flags != nil {
			flags := *opts.Flags
			flags.Local = true
			local.Flags = &flags
		}
	}
	a.RedisAdapter.BroadcastWithAck(packet, local, clientCount, ack)
}

// onResponse hands a client count or an ack of any node to the request waiting here.
func (a *ackedAdapter) onResponse(payload []byte) {
	var res sioredis.RedisResponse
	var err error
	if len(payload) > 0 && payload[0] == '{' {
		err = json.Unmarshal(payload, &res) // client counts come as JSON, as from Node
	} else {
		err = a.Parser().Decode(payload, &res)
	}
	if err != nil {
		return
	}
	v, ok := a.pending.Load(res.RequestId)
	if !ok {
		return // another node's request, or one this node gave up on
	}
	req := v.(*ackRequest)
	switch res.Type {
	case sioredis.BROADCAST_CLIENT_COUNT:
		req.count(res.ClientCount)
	case sioredis.BROADCAST_ACK:
		req.ack(res.Packet, nil)
	}
}
