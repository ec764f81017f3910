package adapters

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"
	sioadapter "github.com/zishang520/socket.io/adapters/adapter/v3"
	sioredis "github.com/zishang520/socket.io/adapters/redis/v3"
	"github.com/zishang520/socket.io/adapters/redis/v3/adapter"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

// relayBuilder builds the library's Redis pub/sub adapter for a namespace and relays what the
// library drops: a broadcast to no room or to several rooms is published, by Node's
// @socket.io/redis-adapter, its emitter and the library alike, on the bare channel
// "prefix#/nsp#", and the library's handler (zishang520 adapters/redis v3.0.2) ignores every
// channel that names no room after that prefix. Without the relay, io.emit, emitter.emit, or an
// API emit to the whole namespace or to two rooms would reach one node's clients only.
type relayBuilder struct {
	lib  *adapter.RedisAdapterBuilder
	conn *redisConn
}

// relayReady bounds the wait for Redis to confirm the relay's subscription when a namespace is
// made; past it the subscription still completes in the background.
const relayReady = redisIOTimeout

// New implements socket.AdapterConstructor.
func (b *relayBuilder) New(nsp socket.Namespace) socket.Adapter {
	a := b.lib.New(nsp)
	ra, ok := a.(adapter.RedisAdapter)
	if !ok {
		return a
	}
	channel := b.conn.prefix + "#" + nsp.Name() + "#"
	sub := b.conn.sub.Subscribe(b.conn.ctx, channel)
	// Wait for the confirmation, so that a broadcast published once this returns is relayed.
	ctx, cancel := context.WithTimeout(b.conn.ctx, relayReady)
	defer cancel()
	if _, err := sub.Receive(ctx); err != nil {
		b.conn.log.Warn().Err(err).Str("nsp", nsp.Name()).Msg("redis: namespace-wide broadcasts subscription not confirmed yet")
	}
	go b.relay(sub, ra, nsp.Name())
	return newAckedAdapter(ra, b.conn, nsp.Name())
}

// relay delivers to this node's sockets the broadcasts other servers published on the bare
// channel, as the library does for the channels of one room.
func (b *relayBuilder) relay(sub *redis.PubSub, a adapter.RedisAdapter, nsp string) {
	defer func() { _ = sub.Close() }()
	for {
		msg, err := sub.ReceiveMessage(b.conn.ctx)
		if err != nil {
			if errors.Is(err, redis.ErrClosed) || b.conn.ctx.Err() != nil {
				return
			}
			continue // go-redis redials and resubscribes; the outage is logged by the prober
		}
		var pkt *sioredis.RedisPacket
		if err := a.Parser().Decode([]byte(msg.Payload), &pkt); err != nil || pkt == nil || pkt.Packet == nil {
			b.conn.log.Debug().Str("nsp", nsp).Msg("redis: undecodable namespace-wide broadcast dropped")
			continue
		}
		if pkt.Uid == a.Uid() {
			continue // this node delivered its own broadcast already
		}
		if pkt.Packet.Nsp == "" {
			pkt.Packet.Nsp = "/"
		}
		if pkt.Packet.Nsp != nsp {
			continue
		}
		opts := sioadapter.DecodeOptions(pkt.Opts)
		flags := socket.BroadcastFlags{}
		if opts.Flags != nil {
			flags = *opts.Flags
		}
		flags.Local = true // deliver here only: do not publish it again
		opts.Flags = &flags
		a.Broadcast(pkt.Packet, opts)
	}
}
