package loadgen

import (
	"encoding/json"
	"testing"
)

// A relay:publish payload is valid JSON of SPEC §9's shape, and the relay:message a server makes
// of it gives back the player and its stamp (socket ids and guest names hold no ':', so the user
// object cannot pass for a stamp).
func TestRelayStamps(t *testing.T) {
	tests := []struct {
		name          string
		keyed         bool
		player, seq   int
		sent          int64
		wantKey       bool
		wantFrameHead string
	}{
		{"keyed", true, 7, 123, 456789, true, `42/relay,["relay:message",`},
		{"unkeyed", false, 0, 0, 1, false, `42/relay,["relay:message",`},
		{"large numbers", true, 49, 599, 9_000_000_000, true, `42/relay,["relay:message",`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload := appendRelayPublish(nil, "bench", tt.keyed, tt.player, tt.seq, tt.sent)
			var req struct {
				Room, Event string
				Key         *string
				Data        map[string]any
			}
			if err := json.Unmarshal(payload, &req); err != nil {
				t.Fatalf("payload %s: %v", payload, err)
			}
			if req.Room != "bench" || req.Event != "move" || (req.Key != nil) != tt.wantKey || req.Data == nil {
				t.Fatalf("payload %s", payload)
			}
			msg, _ := json.Marshal(map[string]any{"room": "bench", "user": map[string]any{"id": "bply_Xy-1", "name": "guest-bply"}, "event": "move", "data": req.Data})
			frame := tt.wantFrameHead + string(msg) + "]"
			f, err := ParseFrame([]byte(frame))
			if err != nil {
				t.Fatal(err)
			}
			player, seq, sent, ok := findRelayStamp(f.Data)
			if !ok || player != tt.player || seq != tt.seq || sent != tt.sent {
				t.Fatalf("findRelayStamp(%s) = %d %d %d %v", f.Data, player, seq, sent, ok)
			}
		})
	}
	if _, _, _, ok := findRelayStamp([]byte(`["relay:user-joined",{"room":"bench"}]`)); ok {
		t.Fatal("a presence event has a stamp")
	}
}

func TestParseIOWritten(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int64
		ok   bool
	}{
		{"linux", "rchar: 100\nwchar: 4567\nsyscr: 3\nsyscw: 2\nread_bytes: 0\nwrite_bytes: 0\n", 4567, true},
		{"no wchar", "rchar: 100\n", 0, false},
		{"garbage", "wchar: many\n", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseIOWritten([]byte(tt.in))
			if (err == nil) != tt.ok || got != tt.want {
				t.Fatalf("parseIOWritten = %d, %v; want %d, ok %v", got, err, tt.want, tt.ok)
			}
		})
	}
}
