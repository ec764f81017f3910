package server

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/socketio"
)

// Malformed msgpack reaching the product server (SPEC §2: nothing a client sends can crash the
// process or another client's connection; SPEC §1 --parser): over a raw websocket and over
// long-polling, as the first packet of a connection and after its CONNECT, with --parser auto
// and msgpack. Each bad connection is closed and keeps no socket; a msgpack and a JSON
// bystander keep their round trips.

// mpFrame is v encoded as socket.io-msgpack-parser sends it: one binary message.
func mpFrame(t *testing.T, v any) frame {
	t.Helper()
	b, err := socketio.EncodeMsgpack(v)
	if err != nil {
		t.Fatalf("encode %v: %v", v, err)
	}
	return frame{binary: true, data: string(b)}
}

// mpDecodeFrame decodes a binary frame from the server as a msgpack packet.
func mpDecodeFrame(t *testing.T, f frame) map[string]any {
	t.Helper()
	if !f.binary {
		t.Fatalf("got %v, want a binary msgpack packet", f)
	}
	v, err := socketio.DecodeMsgpack([]byte(f.data))
	if err != nil {
		t.Fatalf("decode %x: %v", f.data, err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("got %v, want a map", v)
	}
	return m
}

// connectRootMsgpack opens a raw websocket session and connects to "/" with the msgpack parser.
func connectRootMsgpack(t *testing.T, ts *testServer) *rawWS {
	t.Helper()
	w, _ := openSocketIO(t, ts.URL, true)
	w.send(mpFrame(t, map[string]any{"type": 0, "nsp": "/"}))
	p := mpDecodeFrame(t, w.next())
	if p["type"] != float64(socketio.PacketConnect) || p["nsp"] != "/" {
		t.Fatalf("got %v, want CONNECT", p)
	}
	return w
}

// mpRoundTrip checks that w's msgpack socket on "/" still answers a request.
func mpRoundTrip(t *testing.T, w *rawWS) {
	t.Helper()
	w.send(mpFrame(t, map[string]any{"type": 2, "nsp": "/", "id": 99, "data": []any{"subscribe", map[string]any{"rooms": []any{"ok"}}}}))
	p := mpDecodeFrame(t, w.next())
	data, _ := p["data"].([]any)
	reply, _ := func() (map[string]any, bool) {
		if len(data) != 1 {
			return nil, false
		}
		m, ok := data[0].(map[string]any)
		return m, ok
	}()
	if p["type"] != float64(socketio.PacketAck) || p["id"] != float64(99) || reply["data"] == nil {
		t.Fatalf("got %v, want the subscribe ack", p)
	}
}

// hexSubscribe is socket.io-msgpack-parser's EVENT ["subscribe",{"rooms":["a"]}] on "/".
const hexSubscribe = "83a47479706502a36e7370a12fa46461746192a973756273637269626581a5726f6f6d7391a161"

// badMsgpack are binary messages no msgpack packet decodes from (hex, or "<text>" for a text
// message on a msgpack connection).
var badMsgpack = []struct{ name, hex string }{
	{"empty", ""},
	{"never used byte", "c1"},
	{"top-level nil", "c0"},
	{"top-level array", "93010203"},
	{"truncated map", "83a474797065"},
	{"type 9", "82a47479706509a36e7370a12f"},
	{"type 5 (no BINARY_EVENT in msgpack)", "83a47479706505a36e7370a12fa46461746191a178"},
	{"nsp missing", "81a47479706500"},
	{"EVENT data a map", "83a47479706502a36e7370a12fa46461746180"},
	{"CONNECT data an array", "83a47479706500a36e7370a12fa46461746190"},
	{"id 1.5", "84a47479706502a36e7370a12fa26964cb3ff8000000000000a46461746191a178"},
	{"trailing bytes", hexSubscribe + "00"},
	{"str32 past the end", "83a47479706502a36e7370a12fa46461746191dbffffffff61"},
	{"array32 claiming 4G elements", "83a47479706502a36e7370a12fa464617461ddffffffff"},
	{"nesting 10,000 deep", "83a47479706500a36e7370a12fa46461746181a161" + strings.Repeat("91", 10000) + "c0"},
	{"ext32 truncated", "c9ffffffff00"},
	{"a text message", "<text>"},
}

func TestMalformedMsgpackFrames(t *testing.T) {
	for _, mode := range []string{ParserAuto, ParserMsgpack} {
		t.Run("parser "+mode, func(t *testing.T) {
			cfg := testConfig()
			cfg.Parser = mode
			ts := startServer(t, cfg)
			mpBystander := connectRootMsgpack(t, ts)
			var jsonBystander *rawWS
			if mode == ParserAuto {
				jsonBystander = connectRoot(t, ts)
			}
			bystanders := func(t *testing.T) {
				t.Helper()
				for _, w := range []*rawWS{mpBystander, jsonBystander} {
					if w == nil {
						continue
					}
					if w.isClosed() {
						t.Fatal("a bystander's connection closed")
					}
				}
				mpRoundTrip(t, mpBystander)
				if jsonBystander != nil {
					roundTrip(t, jsonBystander)
				}
			}
			root := ts.IO().Namespace("/")
			sockets, conns := root.Len(), ts.IO().Connections()
			for _, tc := range badMsgpack {
				bad := frame{binary: true, data: string(mustHex(t, tc.hex))}
				if tc.hex == "<text>" {
					bad = text(`42["subscribe",{"rooms":["a"]}]`)
				}
				t.Run(tc.name, func(t *testing.T) {
					if tc.hex != "<text>" || mode == ParserMsgpack { // under auto a first text message is JSON's
						t.Run("first packet over websocket", func(t *testing.T) {
							w, _ := openSocketIO(t, ts.URL, true)
							w.send(bad)
							w.expectClosed()
							bystanders(t)
						})
						t.Run("first packet over polling", func(t *testing.T) {
							p, _ := openPolling(t, ts.URL, "/socket.io/")
							p.post(pollingSegment(bad))
							p.waitGone()
							bystanders(t)
						})
					}
					t.Run("after CONNECT over websocket", func(t *testing.T) {
						w := connectRootMsgpack(t, ts)
						mpRoundTrip(t, w)
						w.send(bad)
						w.expectClosed()
						bystanders(t)
					})
					t.Run("after CONNECT over polling", func(t *testing.T) {
						p, _ := openPolling(t, ts.URL, "/socket.io/")
						connect := mpFrame(t, map[string]any{"type": 0, "nsp": "/"})
						if status, body := p.post(pollingSegment(connect)); status != 200 {
							t.Fatalf("POST CONNECT: HTTP %d %q", status, body)
						}
						if _, body := p.get(); !strings.HasPrefix(body, "b") {
							t.Fatalf("got %q, want the msgpack CONNECT answer", body)
						}
						p.post(pollingSegment(bad))
						p.waitGone()
						bystanders(t)
					})
					waitFor(t, "nothing kept of the bad connections", func() bool {
						return root.Len() == sockets && ts.IO().Connections() == conns
					})
				})
			}
		})
	}
}

// pollingSegment is f as a long-polling body carries it: text as is, binary as b + base64.
func pollingSegment(f frame) string {
	if f.binary {
		return "b" + base64.StdEncoding.EncodeToString([]byte(f.data))
	}
	return f.data
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	if s == "<text>" {
		return nil
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
