package loadgen

import (
	"encoding/hex"
	"fmt"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMsgpackEncode decodes what the load generator sends as the server would: one map.
func TestMsgpackEncode(t *testing.T) {
	ev := NewMsgpackEvent("/chat", "chat:send", []byte(`{"room":"r","text":"bseq:1:2","n":3,"f":0.5}`))
	data := []any{"chat:send", map[string]any{"room": "r", "text": "bseq:1:2", "n": int8(3), "f": 0.5}}
	connect, _ := appendMsgpackPacket(nil, mpConnect, "/chat", []byte(`{"name":"b"}`))
	disconnect, _ := appendMsgpackPacket(nil, mpDisconnect, "/", nil)
	tests := []struct {
		name string
		got  []byte
		want map[string]any
	}{
		{"event without ack", ev.Append(nil, -1), map[string]any{"type": int8(2), "nsp": "/chat", "data": data}},
		{"ack id 0", ev.Append(nil, 0), map[string]any{"type": int8(2), "nsp": "/chat", "data": data, "id": int8(0)}},
		{"ack id 127", ev.Append(nil, 127), map[string]any{"type": int8(2), "nsp": "/chat", "data": data, "id": int8(127)}},
		{"ack id 128", ev.Append(nil, 128), map[string]any{"type": int8(2), "nsp": "/chat", "data": data, "id": uint8(128)}},
		{"ack id 65536", ev.Append(nil, 65536), map[string]any{"type": int8(2), "nsp": "/chat", "data": data, "id": uint32(65536)}},
		{"ack id 2^32", ev.Append(nil, 1<<32), map[string]any{"type": int8(2), "nsp": "/chat", "data": data, "id": uint64(1 << 32)}},
		{"event without payload", NewMsgpackEvent("/", "ping", nil).Append(nil, -1), map[string]any{"type": int8(2), "nsp": "/", "data": []any{"ping"}}},
		{"connect with auth", connect, map[string]any{"type": int8(0), "nsp": "/chat", "data": map[string]any{"name": "b"}}},
		{"disconnect", disconnect, map[string]any{"type": int8(1), "nsp": "/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got map[string]any
			if err := msgpack.Unmarshal(tt.got, &got); err != nil {
				t.Fatalf("decode %x: %v", tt.got, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

// TestMsgpackParse reads packets as a Node server with socket.io-msgpack-parser writes them
// (hex captured from it) and as Switchboard does.
func TestMsgpackParse(t *testing.T) {
	tests := []struct {
		name, in string
		sio      byte
		nsp      string
		id       int64
		data     string // hex
		isErr    bool
	}{
		{name: "Node CONNECT answer, pid undefined", in: "83a47479706500a46461746182a3736964b44141414141414141414141414141414141414141a3706964d40000a36e7370a12f",
			sio: '0', nsp: "/", id: -1, data: "82a3736964b44141414141414141414141414141414141414141a3706964d40000"},
		{name: "Node ACK id 0", in: "84a2696400a47479706503a46461746191a26f6ba36e7370a12f", sio: '3', nsp: "/", id: 0, data: "91a26f6b"},
		{name: "Node EVENT with binary", in: "83a47479706502a46461746193a362696ec403010203cb3ff8000000000000a36e7370a12f",
			sio: '2', nsp: "/", id: -1, data: "93a362696ec403010203cb3ff8000000000000"},
		{name: "DISCONNECT /chat", in: "82a47479706501a36e7370a52f63686174", sio: '1', nsp: "/chat", id: -1},
		{name: "not a map", in: "93010203", isErr: true},
		{name: "truncated", in: "83a474797065", isErr: true},
		{name: "type 9", in: "82a47479706509a36e7370a12f", isErr: true},
		{name: "trailing bytes", in: "82a47479706501a36e7370a12f00", isErr: true},
	}
	r := newMPReader()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := r.parse(mustHex(t, tt.in))
			want := Frame{EIO: eioMessage, SIO: tt.sio, Nsp: tt.nsp, AckID: tt.id, Data: mustHex(t, tt.data)}
			checkParsed(t, fmt.Sprintf("parse(%s)", tt.in), f, err, want, tt.isErr)
		})
	}
	if sid := msgpackSID(mustHex(t, tests[0].data)); sid != "AAAAAAAAAAAAAAAAAAAA" {
		t.Fatalf("sid %q", sid)
	}
}

func TestMsgpackAckAndStamp(t *testing.T) {
	ok, _ := msgpack.Marshal([]any{map[string]any{"data": map[string]any{"rooms": []string{"bench"}}}})
	failed, _ := msgpack.Marshal([]any{map[string]any{"error": map[string]any{"code": "forbidden"}}})
	if !AckOK(ok) || AckOK(failed) || AckOK([]byte{0x90}) {
		t.Fatalf("AckOK: %x %v, %x %v", ok, AckOK(ok), failed, AckOK(failed))
	}
	frame, _ := msgpack.Marshal([]any{"tick", map[string]any{"m": string(AppendStamp(nil, 123, 456789))}, "offset-1"})
	if seq, sent, found := FindStamp(frame); !found || seq != 123 || sent != 456789 {
		t.Fatalf("FindStamp(%x) = %d %d %v", frame, seq, sent, found)
	}
}
