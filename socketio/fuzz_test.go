package socketio

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math"
	"reflect"
	"testing"
)

// The fuzz targets of the decoders of what clients send. Their seeds run in plain go test.

var jsonSeeds = []string{
	"0", "0/custom,", `0{"token":"abc"}`, `0/admin,{"pid":"x","offset":"y"}`, "0/random",
	"1", "1/custom,", `2["hello","world",1,{"3":[true]}]`, `2/custom,99["x"]`, `212["a"]`,
	`2[42]`, `2[-1.5e3,"x"]`, `3[]`, `3/custom,7["ok",{"a":null}]`,
	`51-["up",{"_placeholder":true,"num":0}]`, `52-9["m",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`,
	`61-3[{"_placeholder":true,"num":0}]`, `50-["x"]`, `511-["x"]`, `5-["x"]`, "abc", "2{}",
	`2abc["message-with-ack",1]`, `2["connect"]`, `2[ "a" , [1,[2,{"b":"]"}]] , "\"\\" ]`, "2[", "4{}", "7",
	`2/a,b,["x"]`, `29999999999999999999["x"]`, "",
}

func FuzzDecodeJSONPacket(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, attachments, err := decodeJSONPacket(data)
		if err != nil {
			if p != nil {
				t.Fatal("a packet with an error")
			}
			return
		}
		if attachments < 0 || attachments > maxAttachments {
			t.Fatalf("%d attachments", attachments)
		}
		switch p.typ {
		case PacketConnect, PacketDisconnect:
		case PacketEvent, PacketAck:
			if p.typ == PacketEvent && ReservedEvents[p.event] { // "" is a name, as in Node
				t.Fatalf("event name %q", p.event)
			}
			for i := range p.args.Len() {
				raw, err := p.args.JSON(i)
				if err != nil || !json.Valid(raw) {
					t.Fatalf("argument %d: %q %v", i, raw, err)
				}
			}
			if attachments == 0 {
				if _, err := p.args.Values(); err != nil {
					t.Fatalf("values: %v", err)
				}
			}
		default:
			t.Fatalf("packet type %d", p.typ)
		}
	})
}

// FuzzJSONDecoder feeds a connection's decoder a sequence of messages: the input is split at
// 0x1e, and a part starting with 'b' is a binary message of the bytes after it.
func FuzzJSONDecoder(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte("51-[\"up\",{\"_placeholder\":true,\"num\":0}]\x1eb\x01\x02\x03\x1e2[\"next\"]"))
	f.Add([]byte("52-[\"up\",{\"_placeholder\":true,\"num\":1}]\x1eb\x01\x1eb\x02"))
	f.Add([]byte("51-[\"up\",{\"_placeholder\":true,\"num\":3}]\x1ebxx"))
	f.Add([]byte("bxyz\x1e2[\"a\"]"))
	f.Add([]byte("52-[\"a\",{\"_placeholder\":true,\"num\":0}]\x1eb1\x1e2[\"text while waiting\"]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := &jsonDecoder{}
		for _, part := range bytes.Split(data, []byte{0x1e}) {
			binary := len(part) > 0 && part[0] == 'b'
			if binary {
				part = part[1:]
			}
			msg := append([]byte(nil), part...)
			p, err := d.add(msg, binary)
			for i := range msg {
				msg[i] = 0xff // the decoder must not keep what it was handed
			}
			if err != nil {
				return // the connection would close
			}
			if p == nil {
				continue
			}
			if p.args != nil {
				vals, err := p.args.Values()
				if err != nil {
					t.Fatalf("a decoded packet whose values fail: %v", err)
				}
				for i := range p.args.Len() {
					if _, err := p.args.JSON(i); err != nil {
						t.Fatalf("JSON(%d): %v", i, err)
					}
				}
				if p.args.HasBinary() {
					walkBytes(vals, func(b []byte) {
						for _, c := range b {
							if c == 0xff && !bytes.Contains(data, []byte{0xff}) {
								t.Fatal("an attachment aliases the message it came in")
							}
						}
					})
				}
			}
		}
	})
}

func walkBytes(v any, fn func([]byte)) {
	switch t := v.(type) {
	case []byte:
		fn(t)
	case []any:
		for _, e := range t {
			walkBytes(e, fn)
		}
	case map[string]any:
		for _, e := range t {
			walkBytes(e, fn)
		}
	}
}

var msgpackSeeds = []string{
	hexConnect, hexConnectAdminAuth, hexEventHello, hexEventHelloAck0,
	"84a2696400a47479706503a46461746191a26f6ba36e7370a12f",
	"83a47479706502a46461746193a362696ec403010203cb3ff8000000000000a36e7370a12f",
	"82a47479706501a36e7370a52f63686174",
	"83a474797065 02 a36e7370 a12f a464617461 9c a178 c403010203 c702000405 d7000000000000000000 d40000 c0 ff cd012c ce00011170 cf0000010000000000 cb3fe0000000000000 a2c3a9",
	"c1", "c0", "dcffff", "ddffffffff", "de0001a0c0", "d6ff00000001", "d7ff0000000100000002", "c70c ff 000000010000000000000002",
	"83a474797065cb4000000000000000a36e7370a12fa46461746191a178", "93939393939393939393c0",
	"81c0c0", "81c3c2", "81cb3ff0000000000000c0", "8191c0c0",
}

func FuzzMsgpackDecoder(f *testing.F) {
	for _, s := range msgpackSeeds {
		b, _ := hex.DecodeString(stripSpaces(s))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := msgpackDecoder{}.add(data, true)
		if err != nil {
			return
		}
		if p.typ > PacketAck {
			t.Fatalf("packet type %d", p.typ)
		}
		if p.args != nil {
			if _, err := p.args.Values(); err != nil {
				t.Fatal(err)
			}
			for i := range p.args.Len() {
				if _, err := p.args.JSON(i); err != nil && !hasNaNOrInf(p.args.vals[i]) {
					t.Fatalf("JSON(%d) of %#v: %v", i, p.args.vals[i], err)
				}
			}
		}
		if _, err := (msgpackDecoder{}).add(data, false); err == nil {
			t.Fatal("a text message decoded as msgpack")
		}
	})
}

func stripSpaces(s string) string { return string(bytes.ReplaceAll([]byte(s), []byte(" "), nil)) }

// FuzzMpDecode: mpDecode never panics, and what decodes re-encodes with EncodeMsgpack into a
// document that decodes to the same value (NaN aside, which equals nothing).
func FuzzMpDecode(f *testing.F) {
	for _, s := range msgpackSeeds {
		b, _ := hex.DecodeString(stripSpaces(s))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, rest, err := mpDecode(data)
		if err != nil {
			return
		}
		if len(rest) > len(data) {
			t.Fatal("rest longer than the input")
		}
		if n, err := mpSkip(data); err != nil || n != len(data)-len(rest) {
			t.Fatalf("mpSkip %d %v, decoded %d bytes", n, err, len(data)-len(rest))
		}
		if hasNaNOrInf(v) {
			return
		}
		enc, err := EncodeMsgpack(v)
		if err != nil {
			t.Fatalf("re-encode %#v: %v", v, err)
		}
		w, err := DecodeMsgpack(enc)
		if err != nil {
			t.Fatalf("decode the re-encoding % x of %#v: %v", enc, v, err)
		}
		if !reflect.DeepEqual(v, w) {
			t.Fatalf("%#v re-encoded as % x decodes to %#v", v, enc, w)
		}
	})
}

func hasNaNOrInf(v any) bool {
	switch t := v.(type) {
	case float64:
		return math.IsNaN(t) || math.IsInf(t, 0)
	case []any:
		for _, e := range t {
			if hasNaNOrInf(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range t {
			if hasNaNOrInf(e) {
				return true
			}
		}
	}
	return false
}

// FuzzSplitJSONArray: for every valid JSON array, splitJSONArray finds the elements
// encoding/json finds, byte for byte.
func FuzzSplitJSONArray(f *testing.F) {
	for _, s := range []string{
		`[]`, `[ ]`, `[1]`, `[1,2,3]`, ` [ "a" , "b" ] `, `["a,b","c]d","e\"f",{"g":[1,2]}]`,
		`[[],{},[[]],{"a":{}}]`, `["\\",1]`, `["\\\"",true,false,null]`, "[\n1,\t2\r]", `[-1.5e+3,0]`,
		`["é","\u00e9",""]`, `[{"]":"["}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var want []json.RawMessage
		if err := json.Unmarshal(data, &want); err != nil || want == nil {
			return // not an array (null decodes to nil)
		}
		got := splitJSONArray(append([]byte(nil), data...))
		if len(got) != len(want) {
			t.Fatalf("%q: %d elements, want %d", data, len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("%q: element %d is %q, want %q", data, i, got[i], want[i])
			}
		}
	})
}
