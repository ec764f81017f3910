package adapters

import (
	"testing"

	sioadapter "github.com/zishang520/socket.io/adapters/adapter/v3"
	"github.com/zishang520/socket.io/v3/pkg/utils"
)

// What the library publishes comes back with its data in the type its kind carries, which is
// what the cluster adapter's handlers require.
func TestDecodeEphemeral(t *testing.T) {
	raw, err := utils.MsgPack().Encode(&sioadapter.ClusterMessage{
		Uid: "n1", Nsp: "/chat", Type: sioadapter.FETCH_SOCKETS_RESPONSE,
		Data: &sioadapter.FetchSocketsResponse{RequestId: "r1", Sockets: []*sioadapter.SocketResponse{{Id: "s1", Rooms: nil, Data: map[string]any{"k": "v"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	m, ok := decodeEphemeral(raw)
	if !ok || m.Uid != "n1" || m.Nsp != "/chat" || m.Type != sioadapter.FETCH_SOCKETS_RESPONSE {
		t.Fatalf("decodeEphemeral = %+v, %v", m, ok)
	}
	data, ok := m.Data.(*sioadapter.FetchSocketsResponse)
	if !ok || data.RequestId != "r1" || len(data.Sockets) != 1 || data.Sockets[0].Id != "s1" {
		t.Fatalf("data = %#v", m.Data)
	}

	// Stream kinds, a broadcast without a packet and garbage are not handed on.
	raw, _ = utils.MsgPack().Encode(&sioadapter.ClusterMessage{Uid: "n1", Type: sioadapter.SOCKETS_JOIN, Data: &sioadapter.SocketsJoinLeaveMessage{}})
	id := "r2"
	noPacket, _ := utils.MsgPack().Encode(&sioadapter.ClusterMessage{Uid: "n1", Type: sioadapter.BROADCAST, Data: &sioadapter.BroadcastMessage{RequestId: &id}})
	for _, payload := range [][]byte{raw, noPacket, []byte("not msgpack"), nil} {
		if m, ok := decodeEphemeral(payload); ok {
			t.Fatalf("decodeEphemeral(%q) = %+v, want not ok", payload, m)
		}
	}
}

func TestGlobQuote(t *testing.T) {
	if got := globQuote(`socket.io#/a*b?[c]\#`); got != `socket.io#/a\*b\?\[c\]\\#` {
		t.Fatalf("globQuote = %s", got)
	}
}
