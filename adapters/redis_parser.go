package adapters

import (
	"encoding/json"

	sioadapter "github.com/zishang520/socket.io/adapters/adapter/v3"
	sioredis "github.com/zishang520/socket.io/adapters/redis/v3"
	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/v3/pkg/utils"
)

// jsonShapedMsgPack is the Redis pub/sub adapter's message parser: MessagePack, as Node's
// @socket.io/redis-adapter speaks, but with every event argument and socket data first put in the
// shape its JSON has. The library's MessagePack encoder names a Go struct's fields after the
// struct (User, ID) and ignores json tags, so without this a struct emitted on one node (a chat
// message, a presence event, a socket's identity) would reach the clients of every other node,
// and Node servers, with other keys than the node's own clients see.
type jsonShapedMsgPack struct{}

var _ sioredis.Parser = jsonShapedMsgPack{}

// Encode implements sioredis.Parser.
func (jsonShapedMsgPack) Encode(v any) ([]byte, error) {
	switch m := v.(type) {
	case *sioredis.RedisPacket:
		if m != nil {
			c := *m
			c.Packet = jsonShapedPacket(m.Packet)
			v = &c
		}
	case *sioredis.RedisRequest:
		if m != nil {
			c := *m
			c.Packet = jsonShapedPacket(m.Packet)
			c.Data = jsonShapedList(m.Data)
			v = &c
		}
	case *sioredis.RedisResponse:
		if m != nil {
			c := *m
			c.Data = jsonShapedList(m.Data)
			c.Packet = jsonShapedList(m.Packet)
			if m.Sockets != nil {
				c.Sockets = make([]*sioadapter.SocketResponse, len(m.Sockets))
				for i, s := range m.Sockets {
					if s != nil {
						sc := *s
						sc.Data = jsonShaped(s.Data)
						s = &sc
					}
					c.Sockets[i] = s
				}
			}
			v = &c
		}
	}
	return utils.MsgPack().Encode(v)
}

// Decode implements sioredis.Parser.
func (jsonShapedMsgPack) Decode(data []byte, v any) error {
	return utils.MsgPack().Decode(data, v)
}

func jsonShapedPacket(p *parser.Packet) *parser.Packet {
	if p == nil || p.Data == nil {
		return p
	}
	c := *p
	c.Data = jsonShaped(p.Data)
	return &c
}

func jsonShapedList(l []any) []any {
	if l == nil {
		return nil
	}
	out := make([]any, len(l))
	for i, x := range l {
		out[i] = jsonShaped(x)
	}
	return out
}

// jsonShaped returns v as encoding/json would hand it back after a round trip: maps, lists,
// strings, float64 numbers, booleans and nil. Binary ([]byte) stays binary, as Socket.IO
// carries it as an attachment; a value JSON cannot encode is left as it is.
func jsonShaped(v any) any {
	switch x := v.(type) {
	case nil, string, bool, float64, float32, int, int8, int16, int32, int64,
		uint, uint8, uint16, uint32, uint64, []byte:
		return v
	case []any:
		return jsonShapedList(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonShaped(e)
		}
		return out
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		return v
	}
	return out
}
