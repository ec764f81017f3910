package namespaces

import (
	"encoding/json"
	"testing"

	"github.com/switchboard/switchboard/socketio"
)

// TestIdentityFromDataRoundTrips: an identity stored as socket data comes back whole from the
// forms it travels in: as it was stored, and through msgpack (a session kept in Redis for
// recovery, another node's FetchSockets answer) and JSON, the connect hook's data included.
func TestIdentityFromDataRoundTrips(t *testing.T) {
	want := Identity{User: User{ID: "u-1", Name: "Ann"}, Rooms: []string{"team:*"}, Exp: 1900000000, Data: json.RawMessage(`{"team":"red","n":[1,2]}`)}
	viaMsgpack := func(t *testing.T) any {
		b, err := socketio.EncodeMsgpack(&want)
		if err != nil {
			t.Fatal(err)
		}
		v, err := socketio.DecodeMsgpack(b)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	viaJSON := func(t *testing.T) any {
		b, _ := json.Marshal(&want)
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name string
		data func(t *testing.T) any
	}{
		{"stored", func(*testing.T) any { return &want }},
		{"msgpack", viaMsgpack},
		{"json", viaJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := IdentityFromData(tt.data(t))
			if !ok || got.User != want.User || got.Exp != want.Exp || len(got.Rooms) != 1 || got.Rooms[0] != "team:*" {
				t.Fatalf("IdentityFromData = %+v, %v; want %+v", got, ok, want)
			}
			var gotData, wantData any
			if json.Unmarshal(got.Data, &gotData) != nil || json.Unmarshal(want.Data, &wantData) != nil || !jsonEqual(gotData, wantData) {
				t.Errorf("data = %s, want %s", got.Data, want.Data)
			}
		})
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
