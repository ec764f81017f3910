package adapters

import (
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
//
// It is also where the library's adapter gets our local delivery (directBase), when the server
// gives one.
type relayBuilder struct {
	lib    *adapter.RedisAdapterBuilder
	conn   *redisConn
	direct Direct
}

// New implements socket.AdapterConstructor: what the library's builder does (NewRedisAdapter),
// with directBase put in before the adapter is constructed.
func (b *relayBuilder) New(nsp socket.Namespace) socket.Adapter {
	ra := adapter.MakeRedisAdapter()
	ra.SetRedis(b.lib.Redis)
	ra.SetOpts(b.lib.Opts)
	if b.direct != nil && !deliverDirectly(ra, b.direct) {
		b.conn.log.Warn().Str("nsp", nsp.Name()).Msg("the Redis adapter is not built as expected: broadcasts are delivered the library's way")
	}
	ra.Construct(nsp)
	channel := b.conn.prefix + "#" + nsp.Name() + "#"
	b.conn.listen(b.conn.sub.Subscribe(b.conn.ctx, channel), "namespace-wide broadcasts of "+nsp.Name(), func(payload []byte) {
		relay(ra, nsp.Name(), payload)
	})
	return newAckedAdapter(ra, b.conn, nsp.Name())
}

// relay delivers to this node's sockets a broadcast another server published on the bare
// channel, as the library does for the channels of one room.
func relay(a adapter.RedisAdapter, nsp string, payload []byte) {
	var pkt *sioredis.RedisPacket
	if err := a.Parser().Decode(payload, &pkt); err != nil || pkt == nil || pkt.Packet == nil {
		return
	}
	if pkt.Uid == a.Uid() {
		return // this node delivered its own broadcast already
	}
	if pkt.Packet.Nsp == "" {
		pkt.Packet.Nsp = "/"
	}
	if pkt.Packet.Nsp != nsp {
		return
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
