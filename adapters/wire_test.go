package adapters

import (
	"encoding/hex"
	"testing"

	"github.com/switchboard/switchboard/socketio"
)

// Whatever arrives on a subscribed channel (from a Node server, the emitter, another Go node or
// anyone who can PUBLISH) is handled without a panic by both pub/sub adapters. The seeds are
// Node's real messages (redis-wire notes) and broken ones.
func FuzzPubSubMessages(f *testing.F) {
	seeds := [][]byte{
		mustHex("93a63853755f665883a474797065 02a46461746192a568656c6c6fa178a36e7370a12f83a5726f6f6d7391a27231a6657863657074 90a5666c61677380"),
		[]byte(`{"uid":"8Su_fX","requestId":"DnKZf-","type":5,"opts":{"rooms":["r1"],"except":[]}}`),
		[]byte(`{"uid":"8Su_fX","type":2,"opts":{"rooms":["r1"],"except":[]},"rooms":["r2","r3"]}`),
		[]byte(`{"uid":"8Su_fX","type":4,"opts":{"rooms":["nobody"],"except":[]},"close":true}`),
		[]byte(`{"uid":"8Su_fX","requestId":"QZ3tfo","type":6,"data":["sse-ack",42]}`),
		[]byte(`{"type":6,"data":["connection",1]}`),
		[]byte(`{"requestId":"DnKZf-","sockets":[{"id":"x","handshake":{"issued":1},"rooms":["x"],"data":{}}]}`),
		[]byte(`{"type":8,"requestId":"_IFUZB","clientCount":1}`),
		[]byte(`{"type":3,"data":{"packet":{"type":2,"data":["hello","x"]},"opts":{"rooms":["r1"],"except":[],"flags":{}}},"uid":"0ca360f20765ad50","nsp":"/"}`),
		[]byte(`{"type":7,"data":{"opts":{"rooms":["r1"],"except":[],"flags":{}},"requestId":"5dca91675e4fe641"},"uid":"0ca360f20765ad50","nsp":"/"}`),
		[]byte(`{"type":3,"data":{"packet":{"type":2,"data":["ackme","q"]},"requestId":"71df","opts":{"rooms":["r1"],"except":[],"flags":{"timeout":2000}}},"uid":"u","nsp":"/"}`),
		[]byte(`{"type":9,"data":{"packet":["sse",{"x":1}]},"uid":"u","nsp":"/"}`),
		[]byte(`{"type":12,"data":{"requestId":"71df","packet":"client-ack"},"uid":"u","nsp":"/"}`),
		[]byte(`{"type":3,"data":null,"uid":"u","nsp":"/"}`),
		[]byte(`{"type":3}`),
		[]byte(`[1,2,3]`),
		{0x93, 0xc0, 0xc0, 0xc0},
		{0x91},
		{},
		{0xde, 0xff, 0xff},
	}
	for _, s := range seeds {
		f.Add(s)
	}
	classic := startNode(f, Config{Name: "redis", RedisURL: localRedis, Prefix: uniquePrefix(f)}, nil)
	sharded := startNode(f, Config{Name: "redis-sharded", RedisURL: localRedis, Prefix: uniquePrefix(f)}, nil)
	for _, n := range []*node{classic, sharded} {
		n.nsp.OnServerSideEmit(func(args []any, ack func(...any)) {
			if ack != nil {
				ack(1)
			}
		})
		cl := dial(f, n.url, "fuzz")
		n.socket(cl.sid).Join("r1")
	}
	ca := classic.nsp.Adapter().(*classicAdapter)
	sa := sharded.nsp.Adapter().(*shardedAdapter)
	f.Fuzz(func(t *testing.T, msg []byte) {
		p := string(msg)
		for _, ch := range []string{ca.channel, ca.channel + "r1#", ca.channel + "x", ca.channel + "#"} {
			ca.onBroadcast(ch, p)
		}
		ca.onRequest(ca.requestChannel, p)
		ca.onResponse(ca.responseChannel, p)
		sa.onMessage(sa.channel, p)
		sa.onResponseMessage(sa.responseChannel, p)
		_, _ = decodeAny(msg)
		v, err := socketio.DecodeMsgpack(msg)
		if err == nil {
			decodeOpts(v)
			decodePacket(v, "/")
			decodeSocket(v)
		}
	})
}

func mustHex(s string) []byte {
	out := make([]byte, 0, len(s)/2)
	clean := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != ' ' {
			clean = append(clean, s[i])
		}
	}
	b, err := hex.DecodeString(string(clean))
	if err != nil {
		panic(err)
	}
	return append(out, b...)
}
