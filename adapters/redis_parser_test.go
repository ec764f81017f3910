package adapters

import (
	"encoding/json"
	"reflect"
	"testing"

	sioadapter "github.com/zishang520/socket.io/adapters/adapter/v3"
	sioredis "github.com/zishang520/socket.io/adapters/redis/v3"
	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/v3/pkg/utils"
)

type taggedEvent struct {
	Room string          `json:"room"`
	User map[string]any  `json:"user"`
	TS   int64           `json:"ts,omitempty"`
	Raw  json.RawMessage `json:"raw"`
}

// What another node decodes has the keys and values of the event's JSON, not the struct's field
// names, and the value handed in is left as it was.
func TestJSONShapedMsgPack(t *testing.T) {
	ev := taggedEvent{Room: "lobby", User: map[string]any{"id": "u1"}, Raw: json.RawMessage(`{"x":[1,true]}`)}
	pkt := &parser.Packet{Type: parser.EVENT, Nsp: "/chat", Data: []any{"chat:user-joined", ev, []byte{1, 2}}}
	want := []any{"chat:user-joined", map[string]any{"room": "lobby", "user": map[string]any{"id": "u1"}, "raw": map[string]any{"x": []any{float64(1), true}}}, []byte{1, 2}}

	var p jsonShapedMsgPack
	raw, err := p.Encode(&sioredis.RedisPacket{Uid: "n1", Packet: pkt})
	if err != nil {
		t.Fatal(err)
	}
	var got sioredis.RedisPacket
	if err := p.Decode(raw, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Packet.Data, want) {
		t.Fatalf("packet data = %#v, want %#v", got.Packet.Data, want)
	}
	if _, ok := pkt.Data.([]any)[1].(taggedEvent); !ok {
		t.Fatalf("Encode changed the packet it was given: %#v", pkt.Data)
	}

	raw, err = p.Encode(&sioredis.RedisResponse{Sockets: []*sioadapter.SocketResponse{{Id: "s1", Data: ev}}})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := utils.MsgPack().Decode(raw, &m); err != nil {
		t.Fatal(err)
	}
	data := m["sockets"].([]any)[0].(map[string]any)["data"].(map[string]any)
	if data["room"] != "lobby" || data["Room"] != nil {
		t.Fatalf("socket data = %#v, want the JSON keys", data)
	}
}
