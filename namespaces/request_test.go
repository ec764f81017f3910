package namespaces

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/socketio"
)

// args wraps one decoded value as event arguments.
func args(v any) *socketio.Args { return socketio.ValuesArgs([]any{v}) }

// deep returns a JSON object nested n levels deep: {"a":{"a":…}}.
func deep(n int) any {
	var v any = "x"
	for range n {
		v = map[string]any{"a": v}
	}
	return v
}

func strs(n int, s string) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestDecodeRejectsHostilePayloads(t *testing.T) {
	tests := []struct {
		name string
		arg  any
		into func() any
	}{
		{"not an object", "rooms", func() any { return new(RoomsRequest) }},
		{"array payload", []any{"a"}, func() any { return new(RoomsRequest) }},
		{"null payload", nil, func() any { return new(RoomsRequest) }},
		{"number payload", 5.0, func() any { return new(RoomRequest) }},
		{"rooms missing", map[string]any{}, func() any { return new(RoomsRequest) }},
		{"rooms null", map[string]any{"rooms": nil}, func() any { return new(RoomsRequest) }},
		{"rooms a string", map[string]any{"rooms": "news"}, func() any { return new(RoomsRequest) }},
		{"rooms empty", map[string]any{"rooms": []any{}}, func() any { return new(RoomsRequest) }},
		{"rooms with a number", map[string]any{"rooms": []any{"a", 1.0}}, func() any { return new(RoomsRequest) }},
		{"rooms with a null", map[string]any{"rooms": []any{nil}}, func() any { return new(RoomsRequest) }},
		{"rooms with an object", map[string]any{"rooms": []any{map[string]any{}}}, func() any { return new(RoomsRequest) }},
		{"51 rooms", map[string]any{"rooms": strs(51, "a")}, func() any { return new(RoomsRequest) }},
		{"huge array", map[string]any{"rooms": strs(100000, "a")}, func() any { return new(RoomsRequest) }},
		{"room too long", map[string]any{"rooms": []any{strings.Repeat("a", 129)}}, func() any { return new(RoomsRequest) }},
		{"room with a space", map[string]any{"rooms": []any{"a b"}}, func() any { return new(RoomsRequest) }},
		{"room with a slash", map[string]any{"room": "a/b"}, func() any { return new(RoomRequest) }},
		{"room non-ascii", map[string]any{"room": "café"}, func() any { return new(RoomRequest) }},
		{"room empty", map[string]any{"room": ""}, func() any { return new(RoomRequest) }},
		{"room null", map[string]any{"room": nil}, func() any { return new(RoomRequest) }},
		{"room a number", map[string]any{"room": 12.0}, func() any { return new(RoomRequest) }},
		{"room an array", map[string]any{"room": []any{"a"}}, func() any { return new(RoomRequest) }},
		{"room deeply nested", map[string]any{"room": deep(5000)}, func() any { return new(RoomRequest) }},
		{"deep unknown field", map[string]any{"room": "a", "x": deep(20000)}, func() any { return new(RoomRequest) }},
		{"binary room", map[string]any{"room": []byte("a")}, func() any { return new(RoomRequest) }},
		{"text missing", map[string]any{"room": "a"}, func() any { return new(SendRequest) }},
		{"text null", map[string]any{"room": "a", "text": nil}, func() any { return new(SendRequest) }},
		{"text empty", map[string]any{"room": "a", "text": ""}, func() any { return new(SendRequest) }},
		{"text a number", map[string]any{"room": "a", "text": 1.0}, func() any { return new(SendRequest) }},
		{"text an object", map[string]any{"room": "a", "text": map[string]any{"t": "x"}}, func() any { return new(SendRequest) }},
		{"text 4001 characters", map[string]any{"room": "a", "text": strings.Repeat("é", 4001)}, func() any { return new(SendRequest) }},
		{"typing missing", map[string]any{"room": "a"}, func() any { return new(TypingRequest) }},
		{"typing a string", map[string]any{"room": "a", "typing": "true"}, func() any { return new(TypingRequest) }},
		{"typing a number", map[string]any{"room": "a", "typing": 1.0}, func() any { return new(TypingRequest) }},
		{"limit 0", map[string]any{"room": "a", "limit": 0.0}, func() any { return new(HistoryRequest) }},
		{"limit 101", map[string]any{"room": "a", "limit": 101.0}, func() any { return new(HistoryRequest) }},
		{"limit negative", map[string]any{"room": "a", "limit": -1.0}, func() any { return new(HistoryRequest) }},
		{"limit fractional", map[string]any{"room": "a", "limit": 1.5}, func() any { return new(HistoryRequest) }},
		{"limit huge", map[string]any{"room": "a", "limit": 1e300}, func() any { return new(HistoryRequest) }},
		{"limit a string", map[string]any{"room": "a", "limit": "10"}, func() any { return new(HistoryRequest) }},
		{"before a number", map[string]any{"room": "a", "before": 10.0}, func() any { return new(HistoryRequest) }},
		{"before not digits", map[string]any{"room": "a", "before": "abc"}, func() any { return new(HistoryRequest) }},
		{"before negative", map[string]any{"room": "a", "before": "-1"}, func() any { return new(HistoryRequest) }},
		{"before too big", map[string]any{"room": "a", "before": "99999999999999999999999"}, func() any { return new(HistoryRequest) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Decode(args(tt.arg), tt.into())
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeBadRequest {
				t.Fatalf("Decode = %v, want a bad_request", err)
			}
		})
	}
}

func TestDecodeAcceptsValidPayloads(t *testing.T) {
	tests := []struct {
		name string
		arg  map[string]any
		into any
		want any
	}{
		{"rooms", map[string]any{"rooms": []any{"news", "a-b_c.d:e@f"}}, new(RoomsRequest), &RoomsRequest{Rooms: []string{"news", "a-b_c.d:e@f"}}},
		{"50 rooms", map[string]any{"rooms": strs(50, "r")}, new(RoomsRequest), &RoomsRequest{Rooms: toStrings(strs(50, "r"))}},
		{"128-character room", map[string]any{"room": strings.Repeat("r", 128)}, new(RoomRequest), &RoomRequest{Room: strings.Repeat("r", 128)}},
		{"unknown fields ignored", map[string]any{"room": "a", "extra": []any{1.0, nil}}, new(RoomRequest), &RoomRequest{Room: "a"}},
		{"4000 code points", map[string]any{"room": "a", "text": strings.Repeat("é", 4000)}, new(SendRequest), &SendRequest{Room: "a", Text: ptr(strings.Repeat("é", 4000))}},
		{"typing false", map[string]any{"room": "a", "typing": false}, new(TypingRequest), &TypingRequest{Room: "a", Typing: ptr(false)}},
		{"history defaults", map[string]any{"room": "a"}, new(HistoryRequest), &HistoryRequest{Room: "a"}},
		{"history null fields", map[string]any{"room": "a", "before": nil, "limit": nil}, new(HistoryRequest), &HistoryRequest{Room: "a"}},
		{"history full", map[string]any{"room": "a", "before": "42", "limit": 100.0}, new(HistoryRequest), &HistoryRequest{Room: "a", Before: ptr("42"), Limit: ptr(100)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Decode(args(tt.arg), tt.into); err != nil {
				t.Fatalf("Decode = %v", err)
			}
			got, _ := json.Marshal(tt.into)
			want, _ := json.Marshal(tt.want)
			if string(got) != string(want) {
				t.Fatalf("decoded %s, want %s", got, want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func toStrings(v []any) []string {
	out := make([]string, len(v))
	for i, s := range v {
		out[i] = s.(string)
	}
	return out
}

// TestRunValidatesAndRecovers checks the decode step of the ack helper without a connection.
func TestRunValidatesAndRecovers(t *testing.T) {
	event := func(v ...any) *socketio.Event { return &socketio.Event{Name: "x", Args: socketio.ValuesArgs(v)} }
	t.Run("payload is validated before the handler", func(t *testing.T) {
		called := false
		_, err := run(event(map[string]any{"rooms": []any{}}), func(RoomsRequest) (RoomsReply, error) {
			called = true
			return RoomsReply{}, nil
		})
		if called || asClientError(err).Code != CodeBadRequest {
			t.Fatalf("run = %v (handler called: %v), want bad_request before the handler", err, called)
		}
	})
	t.Run("no payload", func(t *testing.T) {
		_, err := run(event(), func(RoomRequest) (struct{}, error) { return struct{}{}, nil })
		if asClientError(err).Code != CodeBadRequest {
			t.Fatalf("run = %v, want bad_request", err)
		}
	})
	t.Run("a panic is internal", func(t *testing.T) {
		_, err := run(event(map[string]any{"room": "a"}), func(RoomRequest) (struct{}, error) { panic("boom") })
		ce := asClientError(err)
		if ce.Code != CodeInternal || strings.Contains(ce.Message, "boom") {
			t.Fatalf("client error = %+v, want internal without the panic text", ce)
		}
	})
	t.Run("the cluster being down is unavailable", func(t *testing.T) {
		_, err := run(event(map[string]any{"room": "a"}), func(RoomRequest) (struct{}, error) { return struct{}{}, socketio.ErrUnavailable })
		if ce := asClientError(err); ce.Code != CodeUnavailable {
			t.Fatalf("client error = %+v, want unavailable", ce)
		}
	})
}

// fuzzPayload runs check on each input that is JSON (data), decoded as a client's event
// argument (arg); seeds start the corpus.
func fuzzPayload(f *testing.F, seeds []string, check func(t *testing.T, data []byte, arg any)) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var arg any
		if json.Unmarshal(data, &arg) != nil {
			return
		}
		check(t, data, arg)
	})
}

// FuzzDecode feeds event payloads to every request type:
// nothing may panic, and a refusal is always a bad_request.
func FuzzDecode(f *testing.F) {
	seeds := []string{
		`{"rooms":["news","prices:EURUSD"]}`,
		`{"rooms":[]}`,
		`{"rooms":null}`,
		`{"rooms":[1,{"a":[]},null,true]}`,
		`{"room":"lobby"}`,
		`{"room":"lobby","text":"hello"}`,
		`{"room":"lobby","text":12}`,
		`{"room":"lobby","typing":true}`,
		`{"room":"lobby","typing":"yes"}`,
		`{"room":"lobby","before":"17","limit":10}`,
		`{"room":"lobby","before":17,"limit":1e309}`,
		`{"room":"lobby","limit":-0.5}`,
		`{"room":{"room":{"room":{"room":"x"}}}}`,
		`{"_placeholder":true,"num":0}`,
		`["subscribe",{"rooms":["a"]}]`,
		`"just a string"`,
		`null`,
	}
	fuzzPayload(f, seeds, func(t *testing.T, data []byte, arg any) {
		for _, into := range []any{new(RoomsRequest), new(RoomRequest), new(SendRequest), new(TypingRequest), new(HistoryRequest)} {
			err := Decode(args(arg), into)
			if err == nil {
				if v, ok := into.(Validator); ok && v.Validate() != nil {
					t.Fatalf("Decode accepted %s into %T, which does not validate", data, into)
				}
				continue
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeBadRequest {
				t.Fatalf("Decode(%s) into %T = %v, want nil or bad_request", data, into, err)
			}
		}
	})
}
