package adapters

import (
	"strings"

	"github.com/vmihailenco/msgpack/v5"
	sioadapter "github.com/zishang520/socket.io/adapters/adapter/v3"
	"github.com/zishang520/socket.io/v3/pkg/utils"
)

// The Redis Streams adapter sends its ephemeral messages (fetchSockets, serverSideEmit,
// broadcasts with acks, and the answers to them) over pub/sub, on prefix#nsp# and on
// prefix#nsp#uid# for the answers meant for one server. The library (zishang520 adapters/redis
// v3.0.2) decodes them into a ClusterMessage whose data stays a generic map, which every
// handler of the cluster adapter then rejects: no server ever answers another. pubsubReader reads
// the same channels and hands the cluster adapter each message with its data decoded into the
// type its kind carries, as the library does for what it reads from the stream. The library's
// own reader still sees every message and drops it as before, so nothing is handled twice.

// wireMessage is a ClusterMessage with its data left encoded.
type wireMessage struct {
	Uid  sioadapter.ServerId    `msgpack:"uid,omitempty"`
	Nsp  string                 `msgpack:"nsp,omitempty"`
	Type sioadapter.MessageType `msgpack:"type,omitempty"`
	Data msgpack.RawMessage     `msgpack:"data,omitempty"`
}

// ephemeralData returns what the data of an ephemeral message of kind t decodes into; nil for
// the kinds that travel on the stream.
func ephemeralData(t sioadapter.MessageType) any {
	switch t {
	case sioadapter.BROADCAST:
		return &sioadapter.BroadcastMessage{}
	case sioadapter.FETCH_SOCKETS:
		return &sioadapter.FetchSocketsMessage{}
	case sioadapter.FETCH_SOCKETS_RESPONSE:
		return &sioadapter.FetchSocketsResponse{}
	case sioadapter.SERVER_SIDE_EMIT:
		return &sioadapter.ServerSideEmitMessage{}
	case sioadapter.SERVER_SIDE_EMIT_RESPONSE:
		return &sioadapter.ServerSideEmitResponse{}
	case sioadapter.BROADCAST_CLIENT_COUNT:
		return &sioadapter.BroadcastClientCount{}
	case sioadapter.BROADCAST_ACK:
		return &sioadapter.BroadcastAck{}
	}
	return nil
}

// decodeEphemeral decodes one pub/sub payload of the Streams adapter; ok is false for what is
// not an ephemeral message.
func decodeEphemeral(payload []byte) (*sioadapter.ClusterMessage, bool) {
	var w wireMessage
	if err := utils.MsgPack().Decode(payload, &w); err != nil {
		return nil, false
	}
	data := ephemeralData(w.Type)
	if data == nil || len(w.Data) == 0 {
		return nil, false
	}
	if err := utils.MsgPack().Decode(w.Data, data); err != nil {
		return nil, false
	}
	if b, ok := data.(*sioadapter.BroadcastMessage); ok && b.Packet == nil {
		return nil, false // the cluster adapter would hand a nil packet to the sockets
	}
	return &sioadapter.ClusterMessage{Uid: w.Uid, Nsp: w.Nsp, Type: w.Type, Data: data}, true
}

// listenPubSub hands every ephemeral message on a's channels to a. It subscribes with patterns
// that match only those channels: the adapter counts servers with PUBSUB NUMSUB, which counts no
// pattern.
func (c *redisConn) listenPubSub(nsp string, a sioadapter.ClusterAdapter) {
	public := c.prefix + "#" + nsp + "#"
	private := public + string(a.Uid()) + "#"
	c.listen(c.sub.PSubscribe(c.ctx, globQuote(public), globQuote(private)), "cluster requests of "+nsp, func(payload []byte) {
		if m, ok := decodeEphemeral(payload); ok {
			a.OnMessage(m, "")
		}
	})
}

// globQuote is a Redis glob pattern that matches s alone.
func globQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\', '^', '-':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
