package namespaces

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzDecodeDirect checks that every payload the direct path takes decodes exactly as
// encoding/json decodes it, for every request type that has a direct path.
func FuzzDecodeDirect(f *testing.F) {
	for _, seed := range []string{
		`{"rooms":["a","b"]}`, `{"rooms":[]}`, `{"rooms":null}`, `{"Rooms":["a"],"rooms":["b"]}`,
		`{"ROOMS":["a"]}`, `{"rooms":["a",1]}`, `{"room":"a","text":"hi"}`, `{"room":"a","text":null}`,
		`{"room":"a","typing":true}`, `{"room":"a","Typing":false,"typing":true}`, `{"room":1}`,
		`{"room":"\ud800"}`, `{"rooms":["\udfff"]}`, `{"roomſ":["a"]}`, `{"room":"a","x":[[[{}]]]}`,
	} {
		f.Add(seed)
	}
	types := []func() (mapDecoder, any){
		func() (mapDecoder, any) { return new(RoomsRequest), new(RoomsRequest) },
		func() (mapDecoder, any) { return new(RoomRequest), new(RoomRequest) },
		func() (mapDecoder, any) { return new(SendRequest), new(SendRequest) },
		func() (mapDecoder, any) { return new(TypingRequest), new(TypingRequest) },
	}
	f.Fuzz(func(t *testing.T, payload string) {
		var m map[string]any
		if json.Unmarshal([]byte(payload), &m) != nil || m == nil {
			return
		}
		for _, mk := range types {
			direct, viaJSON := mk()
			if !direct.decodeMap(m) {
				if !reflect.ValueOf(direct).Elem().IsZero() {
					t.Fatalf("%T.decodeMap(%s) refused the payload but set %+v", direct, payload, direct)
				}
				continue
			}
			if err := decodeJSON(m, viaJSON); err != nil {
				t.Fatalf("%T: direct took %s, encoding/json refused it: %v", direct, payload, err)
			}
			if !reflect.DeepEqual(direct, viaJSON) {
				t.Fatalf("%T from %s: direct %+v, encoding/json %+v", direct, payload, direct, viaJSON)
			}
		}
	})
}

func TestDecodeDirectTakesTheUsualPayloads(t *testing.T) {
	tests := []struct {
		into mapDecoder
		arg  map[string]any
	}{
		{new(RoomsRequest), map[string]any{"rooms": []any{"a", "b"}}},
		{new(RoomRequest), map[string]any{"room": "a", "extra": 1.0}},
		{new(SendRequest), map[string]any{"room": "a", "text": "hi"}},
		{new(TypingRequest), map[string]any{"room": "a", "typing": true}},
	}
	for _, tt := range tests {
		if !tt.into.decodeMap(tt.arg) {
			t.Errorf("%T.decodeMap(%v) fell back to encoding/json", tt.into, tt.arg)
		}
	}
}

// BenchmarkDecode compares the direct path with the JSON round trip on the echo payload
// (go test -run XXX -bench Decode -benchmem ./namespaces/).
func BenchmarkDecode(b *testing.B) {
	arg := map[string]any{"rooms": []any{"bench"}}
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r RoomsRequest
			if err := Decode(arg, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r RoomsRequest
			if err := decodeJSON(arg, &r); err != nil {
				b.Fatal(err)
			}
			if err := validate(&r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAckEncode compares the ack payload as a struct with the map it replaced.
func BenchmarkAckEncode(b *testing.B) {
	reply := RoomsReply{Rooms: []string{"bench", "user:anon"}}
	b.Run("struct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal([]any{dataReply[RoomsReply]{Data: reply}}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("map", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal([]any{map[string]any{"data": reply}}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestAckPayloadsEncodeAsTheMapsDid(t *testing.T) {
	for _, tt := range []struct{ got, want any }{
		{dataReply[RoomsReply]{Data: RoomsReply{Rooms: []string{"a"}}}, map[string]any{"data": RoomsReply{Rooms: []string{"a"}}}},
		{dataReply[*RoomsReply]{}, map[string]any{"data": (*RoomsReply)(nil)}},
		{errorReply{Error: Errorf(CodeBadRequest, "x")}, map[string]any{"error": Errorf(CodeBadRequest, "x")}},
	} {
		g, _ := json.Marshal(tt.got)
		w, _ := json.Marshal(tt.want)
		if string(g) != string(w) {
			t.Errorf("%s, want %s", g, w)
		}
	}
}
