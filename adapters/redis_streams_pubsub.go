package adapters

import (
	"context"
	"errors"
	"strings"

	"github.com/redis/go-redis/v9"
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
	return &sioadapter.ClusterMessage{Uid: w.Uid, Nsp: w.Nsp, Type: w.Type, Data: data}, true
}

// readPubSub subscribes to a's channels (confirmed before it returns, within relayReady) and
// hands every ephemeral message to a until ctx ends. It subscribes with patterns that match
// only those channels: the adapter counts servers with PUBSUB NUMSUB, which counts no pattern.
func readPubSub(ctx context.Context, sub *redis.Client, prefix, nsp string, a sioadapter.ClusterAdapter) error {
	public := prefix + "#" + nsp + "#"
	private := public + string(a.Uid()) + "#"
	ps := sub.PSubscribe(ctx, globQuote(public), globQuote(private))
	rctx, cancel := context.WithTimeout(ctx, relayReady)
	defer cancel()
	_, err := ps.Receive(rctx)
	go func() {
		defer func() { _ = ps.Close() }()
		for {
			msg, err := ps.ReceiveMessage(ctx)
			if err != nil {
				if errors.Is(err, redis.ErrClosed) || ctx.Err() != nil {
					return
				}
				continue // go-redis redials and resubscribes; the outage is logged by the prober
			}
			if m, ok := decodeEphemeral([]byte(msg.Payload)); ok {
				a.OnMessage(m, "")
			}
		}
	}()
	return err
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
