package server

import (
	"encoding/json"
	"testing"

	"github.com/zishang520/socket.io/servers/socket/v3"
)

// The decoders of untrusted input this package adds: the rooms a join event asks for (read by
// the room limit before any handler), the result of an ack (read by the metrics) and the event
// name and ack of a raw event (read by both). The seeds run in plain go test.

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
		rooms := askedRooms(event, v)
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

func FuzzEventCounting(f *testing.F) {
	for _, seed := range []string{`["subscribe",{}]`, `["x"]`, `[1,2]`, `[]`, `[null]`, `[{"a":1}]`} {
		f.Add(seed, true)
		f.Add(seed, false)
	}
	m := NewMetrics()
	received := newEventCounters(m.received, "/", contractReceived)
	f.Fuzz(func(t *testing.T, payload string, withAck bool) {
		var event []any
		if json.Unmarshal([]byte(payload), &event) != nil {
			return
		}
		if withAck {
			event = append(event, socket.Ack(func([]any, error) {}))
		}
		if len(event) > 0 {
			received.inc(event[0])
		}
		ack, i := trailingAck(event)
		if (ack != nil) != (withAck && len(event) >= 2) || (ack != nil && i != len(event)-1) {
			t.Fatalf("trailingAck(%s, ack=%v) = %v, %d", payload, withAck, ack != nil, i)
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
