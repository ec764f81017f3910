package server

import (
	"reflect"
	"testing"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// libraryDecode decodes s with the library's decoder: the packet, or nil when it refuses s or
// waits for attachments.
func libraryDecode(s string) *parser.Packet {
	d := parser.NewParser().NewDecoder()
	var got *parser.Packet
	_ = d.On("decoded", func(args ...any) { got, _ = args[0].(*parser.Packet) })
	if err := d.Add(types.NewStringBufferString(s)); err != nil {
		return nil
	}
	return got
}

var decodeSeeds = []string{
	`2["hello"]`, `2["hello",1,{"a":[true,null]},"x"]`, `21["hello"]`, `2/chat,["chat:send",{"room":"r","text":"hi"}]`,
	`2/chat,7["chat:join",{"room":"r"}]`, `3/chat,7[{"data":{}}]`, `31[]`, `3["x"]`, `2[42]`, `2[]`, `2{}`,
	`2["connect"]`, `2["disconnecting"]`, `2[true]`, `2["a"]garbage`, `2["a"] `, ` 2["a"]`, `2 ["a"]`,
	`2/chat`, `2/chat,`, `2/,["a"]`, `299999999999999999999["a"]`, `218446744073709551616["a"]`,
	`2012345678901234567890["a"]`, `0`, `0/chat,`, `1`, `451-["a",{"_placeholder":true,"num":0}]`,
	`4{"message":"x"}`, `2`, `3`, `2["\ud800"]`, `2["é",1e400]`, `2["a",1.5e3,-0]`, "2[\"a\"]\n",
}

// decodeEvent returns exactly what the library's decoder returns, for whatever it takes.
func TestDecodeEventMatchesTheLibrary(t *testing.T) {
	taken := 0
	for _, s := range decodeSeeds {
		if p, ok := decodeEvent(types.NewStringBufferString(s)); ok {
			taken++
			if want := libraryDecode(s); !reflect.DeepEqual(p, want) {
				t.Errorf("%q: decodeEvent %+v, library %+v", s, p, want)
			}
		}
	}
	if taken < 10 {
		t.Fatalf("decodeEvent took only %d of the seeds", taken)
	}
}

func FuzzDecodeEvent(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, ok := decodeEvent(types.NewStringBufferString(s))
		if !ok {
			return
		}
		if want := libraryDecode(s); !reflect.DeepEqual(p, want) {
			t.Fatalf("%q: decodeEvent %+v, library %+v", s, p, want)
		}
	})
}
