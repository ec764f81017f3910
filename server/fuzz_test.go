package server

import (
	"encoding/json"
	"testing"

	"github.com/switchboard/switchboard/socketio"
)

// The decoders of untrusted input this package adds: the rooms a join event asks for (read by
// the room limit before any handler) and the result of an ack (read by the metrics). The seeds
// run in plain go test.

func FuzzAskedRooms(f *testing.F) {
	for _, seed := range []string{
		`{"rooms":["a","b"]}`, `{"rooms":[]}`, `{"rooms":"a"}`, `{"rooms":[1,null,{},["x"]]}`,
		`{"room":"r"}`, `{"room":1}`, `null`, `[]`, `"x"`, `{"rooms":[` + deep(200) + `]}`,
	} {
		f.Add("subscribe", seed)
		f.Add("chat:join", seed)
	}
	f.Fuzz(func(t *testing.T, event, payload string) {
		var v any
		if json.Unmarshal([]byte(payload), &v) != nil {
			return
		}
		rooms := askedRooms(&socketio.Event{Name: event, Args: socketio.ValuesArgs([]any{v})})
		if event != eventSubscribe && event != eventChatJoin && rooms != nil {
			t.Fatalf("askedRooms(%q) = %v for an event that joins nothing", event, rooms)
		}
		m, _ := v.(map[string]any)
		for _, r := range rooms {
			if !containsString(m, r) {
				t.Fatalf("askedRooms returned %q, not in the payload %s", r, payload)
			}
		}
	})
}

func FuzzAckResult(f *testing.F) {
	for _, seed := range []string{
		`{"data":{}}`, `{"error":{"code":"forbidden","message":"x"}}`, `{"error":{"code":5}}`,
		`{"error":"x"}`, `null`, `[]`, `{"data":null,"error":{"code":"internal"}}`,
	} {
		f.Add(seed)
	}
	allowed := append([]string{otherLabel}, ackResults...)
	f.Fuzz(func(t *testing.T, payload string) {
		var v any
		if json.Unmarshal([]byte(payload), &v) != nil {
			return
		}
		if got := ackResult([]any{v}); closedLabel(got, allowed) != got {
			t.Fatalf("ackResult(%s) = %q, outside the closed set", payload, got)
		}
	})
}

// containsString reports whether s occurs as a string anywhere in v.
func containsString(v any, s string) bool {
	switch x := v.(type) {
	case string:
		return x == s
	case []any:
		for _, e := range x {
			if containsString(e, s) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if containsString(e, s) {
				return true
			}
		}
	}
	return false
}

func deep(n int) string {
	b := make([]byte, 0, 2*n)
	for range n {
		b = append(b, '[')
	}
	for range n {
		b = append(b, ']')
	}
	return string(b)
}
