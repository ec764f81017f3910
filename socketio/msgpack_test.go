package socketio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// mp encodes a client packet with an encoder other than the server's.
func mp(t *testing.T, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mpPacket reads the next message as socket.io-msgpack-parser would, checking what its decoder
// checks (a map; an integer type 0–4; a string nsp; CONNECT data a map; DISCONNECT no data; EVENT
// and ACK data an array; CONNECT_ERROR data a map; an integer id when present) and that nothing
// else is in it.
func (c *rawClient) mpPacket() map[string]any {
	c.t.Helper()
	b := c.bin()
	var m map[string]any
	if err := msgpack.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("msgpack % x: %v", b, err)
	}
	typ, ok := mpInt(m["type"])
	if !ok || typ < 0 || typ > 4 {
		c.t.Fatalf("packet %v: type %T %v", m, m["type"], m["type"])
	}
	if _, ok := m["nsp"].(string); !ok {
		c.t.Fatalf("packet %v: nsp %T", m, m["nsp"])
	}
	data, hasData := m["data"]
	switch typ {
	case 0, 4:
		if _, ok := data.(map[string]any); !ok {
			c.t.Fatalf("packet %v: data %T, want a map", m, data)
		}
	case 1:
		if hasData {
			c.t.Fatalf("DISCONNECT %v has data", m)
		}
	case 2, 3:
		if _, ok := data.([]any); !ok {
			c.t.Fatalf("packet %v: data %T, want an array", m, data)
		}
	}
	if id, has := m["id"]; has {
		if _, ok := mpInt(id); !ok {
			c.t.Fatalf("packet %v: id %T, want an integer", m, id)
		}
	}
	for k := range m {
		switch k {
		case "type", "nsp", "data", "id":
		default:
			c.t.Fatalf("packet %v: key %q", m, k)
		}
	}
	m["type"] = typ
	if id, has := m["id"]; has {
		m["id"], _ = mpInt(id)
	}
	return m
}

// mpInt reads an integer the msgpack decoder gave (one of its sized integer types; a float is
// not an integer here, whatever its value).
func mpInt(v any) (int64, bool) {
	switch r := reflect.ValueOf(v); {
	case r.CanInt():
		return r.Int(), true
	case r.CanUint():
		return int64(r.Uint()), true
	}
	return 0, false
}

// Client packets from socket.io-client with socket.io-msgpack-parser (notepack.io), as captured
// in the research notes: notepack writes undefined as d4 00 00, and the client adds "options".
const (
	hexConnect          = "83a47479706500a464617461d40000a36e7370a12f"
	hexConnectAdminAuth = "83a47479706500a46461746182a8757365726e616d65a561646d696ea870617373776f7264a86368616e67656974a36e7370a62f61646d696e"
	hexEventHello       = "84a47479706502a46461746192a568656c6c6fa5776f726c64a76f7074696f6e7381a8636f6d7072657373c3a36e7370a12f"
	hexEventHelloAck0   = "85a47479706502a46461746192a568656c6c6fa5776f726c64a76f7074696f6e7381a8636f6d7072657373c3a2696400a36e7370a12f"
)

// mpConnect sends a CONNECT to nsp with auth (nil: notepack's undefined) and returns the reply.
func (c *rawClient) mpConnect(t *testing.T, nsp string, auth map[string]any) map[string]any {
	t.Helper()
	if nsp == "/" && auth == nil {
		c.sendBinary(mustHex(t, hexConnect))
	} else {
		p := map[string]any{"type": 0, "nsp": nsp}
		if auth != nil {
			p["data"] = auth
		}
		c.sendBinary(mp(t, p))
	}
	reply := c.mpPacket()
	if reply["type"] != int64(0) || reply["nsp"] != nsp {
		t.Fatalf("CONNECT reply %v", reply)
	}
	return reply
}

func TestMsgpackConnect(t *testing.T) {
	cases := []struct {
		name     string
		recovery bool
		packet   string
		nsp      string
		auth     map[string]any
	}{
		{"undefined data (socket.io-client without auth)", false, hexConnect, "/", map[string]any{}},
		{"undefined data, recovery on", true, hexConnect, "/", map[string]any{}},
		{"auth to a custom namespace", false, hexConnectAdminAuth, "/admin", map[string]any{"username": "admin", "password": "changeit"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var rec *recorder
			cfg := Config{}
			if tc.recovery {
				cfg.RecoveryWindow = 1 << 40
			}
			ts := startServer(t, cfg, func(srv *Server) { rec = record(of(t, srv, tc.nsp)) })
			c := ts.dial()
			c.sendBinary(mustHex(t, tc.packet))
			reply := c.mpPacket()
			data := reply["data"].(map[string]any)
			sid, _ := data["sid"].(string)
			pid, hasPid := data["pid"].(string)
			if reply["type"] != int64(0) || reply["nsp"] != tc.nsp || len(sid) != 20 || hasPid != tc.recovery || (hasPid && pid == "") {
				t.Fatalf("CONNECT reply %v", reply)
			}
			if _, has := reply["id"]; has {
				t.Fatalf("CONNECT reply with an id: %v", reply)
			}
			s := receive(t, "OnConnection", rec.connected)
			if s.ID() != sid || !reflect.DeepEqual(s.Handshake().Auth, tc.auth) {
				t.Fatalf("socket %s auth %v, want %v", s.ID(), s.Handshake().Auth, tc.auth)
			}
		})
	}
}

func TestMsgpackEvents(t *testing.T) {
	var rec *recorder
	ts := startServer(t, Config{}, func(srv *Server) {
		rec = record(of(t, srv, "/"))
		of(t, srv, "/guarded").Use(func(s *Socket) error {
			return &ConnectError{Message: "invalid credentials", Data: map[string]any{"code": 42}}
		})
		of(t, srv, "/plain").Use(func(s *Socket) error { return errors.New("nope") })
	})
	c := ts.dial()
	c.mpConnect(t, "/", nil)
	s := receive(t, "OnConnection", rec.connected)

	t.Run("client event (notepack's, with options)", func(t *testing.T) {
		c.sendBinary(mustHex(t, hexEventHello))
		ev := receive(t, "the event", rec.events)
		vals, _ := ev.Values()
		if ev.Name != "hello" || ev.HasAck() || fmt.Sprint(vals) != "[world]" {
			t.Fatalf("event %q %v ack %v", ev.Name, vals, ev.HasAck())
		}
	})
	t.Run("client event with ack id 0", func(t *testing.T) {
		c.sendBinary(mustHex(t, hexEventHelloAck0))
		ev := receive(t, "the event", rec.events)
		if !ev.HasAck() || !ev.Ack("ok") {
			t.Fatal("no ack")
		}
		got := c.mpPacket()
		if got["type"] != int64(3) || got["id"] != int64(0) || fmt.Sprint(got["data"]) != "[ok]" {
			t.Fatalf("ACK %v", got)
		}
	})
	t.Run("an ack without arguments is an empty array", func(t *testing.T) {
		c.sendBinary(mp(t, map[string]any{"type": 2, "nsp": "/", "id": 300, "data": []any{"q"}}))
		ev := receive(t, "the event", rec.events)
		ev.Ack()
		got := c.mpPacket()
		if got["type"] != int64(3) || got["id"] != int64(300) || len(got["data"].([]any)) != 0 {
			t.Fatalf("ACK %v", got)
		}
	})
	t.Run("numbers, binary, ArrayBuffer, Date, undefined from the client", func(t *testing.T) {
		// ["x", bin 010203, ext0 0405 (ArrayBuffer), Date(0), undefined, null, -1, 300, 70000, 2^40, 0.5, "é"]
		body := "9c a178 c403010203 c702000405 d7000000000000000000 d40000 c0 ff cd012c ce00011170 cf0000010000000000 cb3fe0000000000000 a2c3a9"
		pkt := "83 a474797065 02 a36e7370 a12f a464617461 " + body
		c.sendBinary(mustHex(t, pkt))
		ev := receive(t, "the event", rec.events)
		vals, err := ev.Values()
		want := []any{[]byte{1, 2, 3}, []byte{4, 5}, 0.0, nil, nil, -1.0, 300.0, 70000.0, float64(1 << 40), 0.5, "é"}
		if err != nil || ev.Name != "x" || !reflect.DeepEqual(vals, want) {
			t.Fatalf("event %q %#v %v", ev.Name, vals, err)
		}
		j, _ := ev.JSON(0)
		if string(j) != `{"type":"Buffer","data":[1,2,3]}` {
			t.Fatalf("JSON %s", j)
		}
	})
	t.Run("numeric event name", func(t *testing.T) {
		c.sendBinary(mp(t, map[string]any{"type": 2, "nsp": "/", "data": []any{7, "a"}}))
		if ev := receive(t, "the event", rec.events); ev.Name != "7" {
			t.Fatalf("name %q", ev.Name)
		}
		c.sendBinary(mp(t, map[string]any{"type": 2, "nsp": "/", "data": []any{2.5}}))
		if ev := receive(t, "the event", rec.events); ev.Name != "2.5" {
			t.Fatalf("name %q", ev.Name)
		}
	})
	t.Run("server event with binary", func(t *testing.T) {
		if err := s.Emit("bin", []byte{1, 2, 3}, 1.5, file{"f", []byte{9}}); err != nil {
			t.Fatal(err)
		}
		raw := c.bin()
		// Node's server writes ["bin", c403010203, cb3ff8...] for the first two: bin, float64.
		if !bytes.Contains(raw, mustHex(t, "a362696ec403010203cb3ff8000000000000")) {
			t.Fatalf("event % x", raw)
		}
		var m map[string]any
		_ = msgpack.Unmarshal(raw, &m)
		data := m["data"].([]any)
		if !reflect.DeepEqual(data[3], map[string]any{"name": "f", "blob": []byte{9}}) {
			t.Fatalf("struct %#v", data[3])
		}
	})
	t.Run("server EmitWithAck", func(t *testing.T) {
		ch := make(chan *Args, 1)
		go func() {
			a, _ := s.EmitWithAck(context.Background(), "ask", "q")
			ch <- a
		}()
		got := c.mpPacket()
		id, ok := got["id"].(int64)
		if got["type"] != int64(2) || !ok || fmt.Sprint(got["data"]) != "[ask q]" {
			t.Fatalf("event %v", got)
		}
		c.sendBinary(mp(t, map[string]any{"type": 3, "nsp": "/", "id": id, "data": []any{"yes", []byte{1}}}))
		a := receive(t, "the ack", ch)
		if vals, _ := a.Values(); !reflect.DeepEqual(vals, []any{"yes", []byte{1}}) {
			t.Fatalf("ack %#v", vals)
		}
	})
	t.Run("CONNECT_ERROR", func(t *testing.T) {
		cases := []struct {
			nsp  string
			want map[string]any
		}{
			{"/nope", map[string]any{"message": "Invalid namespace"}},
			{"/guarded", map[string]any{"message": "invalid credentials", "data": map[string]any{"code": int8(42)}}},
			{"/plain", map[string]any{"message": "nope"}},
		}
		for _, tc := range cases {
			c.sendBinary(mp(t, map[string]any{"type": 0, "nsp": tc.nsp}))
			got := c.mpPacket()
			if got["type"] != int64(4) || got["nsp"] != tc.nsp || fmt.Sprint(got["data"]) != fmt.Sprint(tc.want) {
				t.Fatalf("CONNECT_ERROR %v, want data %v", got, tc.want)
			}
		}
	})
	t.Run("DISCONNECT", func(t *testing.T) {
		s.Disconnect(false)
		// Node's server writes exactly this for DISCONNECT /: {type: 1, nsp: "/"}, no data.
		if raw := c.bin(); !bytes.Equal(raw, mustHex(t, "82a47479706501a36e7370a12f")) {
			t.Fatalf("DISCONNECT % x", raw)
		}
	})
}

func TestMsgpackAndJSONClientsShareARoom(t *testing.T) {
	var rec *recorder
	ts := startServer(t, Config{}, func(srv *Server) {
		// The join is added first: OnConnection functions run in order, so the recorder hears
		// of a socket once it is in the room.
		of(t, srv, "/").OnConnection(func(s *Socket) { s.Join("mix") })
		rec = record(of(t, srv, "/"))
		// A client of each kind sends to the other through the room (set before the server
		// serves, as a namespace's handlers are).
		of(t, srv, "/").OnEvent(func(s *Socket, ev *Event) {
			vals, _ := ev.Values()
			_ = s.To("mix").Emit(ev.Name, vals...)
		})
	})
	jc := ts.dial()
	jc.connect("/", "")
	mc := ts.dial()
	mc.mpConnect(t, "/", nil)
	for range 2 {
		receive(t, "OnConnection", rec.connected)
	}
	n := ts.srv.Namespace("/")
	if got := n.Local().RoomSize("mix"); got != 2 {
		t.Fatalf("room has %d", got)
	}
	if err := n.To("mix").Emit("hello", map[string]any{"a": 1}, []byte{1, 2}); err != nil {
		t.Fatal(err)
	}
	p := jc.msg()
	if !strings.HasPrefix(p, "51-") || !jsonEqual(t, p[3:], `["hello",{"a":1},{"_placeholder":true,"num":0}]`) {
		t.Fatalf("JSON client got %q", p)
	}
	if b := jc.bin(); !bytes.Equal(b, []byte{1, 2}) {
		t.Fatalf("attachment % x", b)
	}
	m := mc.mpPacket()
	if m["type"] != int64(2) || !reflect.DeepEqual(m["data"], []any{"hello", map[string]any{"a": int8(1)}, []byte{1, 2}}) {
		t.Fatalf("msgpack client got %#v", m)
	}
	jc.send(`2["from-json",1]`)
	if m := mc.mpPacket(); fmt.Sprint(m["data"]) != "[from-json 1]" {
		t.Fatalf("msgpack client got %#v", m)
	}
	mc.sendBinary(mp(t, map[string]any{"type": 2, "nsp": "/", "data": []any{"from-mp", "x"}}))
	jc.expect(`2["from-mp","x"]`)
}

func TestParserModes(t *testing.T) {
	cases := []struct {
		name   string
		mode   ParserMode
		msgpck bool // the client speaks msgpack
		ok     bool
	}{
		{"auto, JSON", ParserAuto, false, true},
		{"auto, msgpack", ParserAuto, true, true},
		{"default, JSON", ParserDefault, false, true},
		{"default refuses msgpack", ParserDefault, true, false},
		{"msgpack, msgpack", ParserMsgpack, true, true},
		{"msgpack refuses JSON", ParserMsgpack, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts, rec := startRecorded(t, Config{Parser: tc.mode}, nil)
			c := ts.dial()
			if tc.msgpck {
				c.sendBinary(mustHex(t, hexConnect))
			} else {
				c.send("0")
			}
			if !tc.ok {
				if got := c.waitClosed(); len(got) != 0 {
					t.Fatalf("got %q", got)
				}
				waitFor(t, "the connection to go", func() bool { return ts.srv.Connections() == 0 })
				if ts.socketsKept() != 0 || ts.srv.Namespace("/").Len() != 0 || len(rec.connected) != 0 {
					t.Fatal("a refused client left a socket")
				}
				return
			}
			if tc.msgpck {
				c.mpPacket()
			} else {
				c.connected("/")
			}
			// The parser stays the one the first packet chose.
			if tc.msgpck {
				c.send(`2["x"]`)
			} else {
				c.sendBinary(mustHex(t, hexEventHello))
			}
			c.waitClosed()
		})
	}
}

func TestBadMsgpackCloses(t *testing.T) {
	deep := strings.Repeat("91", 10000) + "c0"
	cases := []struct{ name, hex string }{
		{"empty", ""},
		{"truncated map", "83a474797065"},
		{"never used byte", "c1"},
		{"top-level nil", "c0"},
		{"top-level array", "92a17801"},
		{"top-level string", "a178"},
		{"trailing bytes", hexConnect + "00"},
		{"type missing", "81a36e7370a12f"},
		{"type 5", "82a47479706505a36e7370a12f"},
		{"type 6", "82a47479706506a36e7370a12f"},
		{"type a string", "82a474797065a132a36e7370a12f"},
		{"type 2.5", "82a474797065cb4004000000000000a36e7370a12f"},
		{"type negative", "82a474797065ffa36e7370a12f"},
		{"nsp missing", "81a47479706500"},
		{"nsp an integer", "82a47479706500a36e737001"},
		{"CONNECT with an array", "83a47479706500a36e7370a12fa46461746190"},
		{"CONNECT with a string", "83a47479706500a36e7370a12fa464617461a178"},
		{"DISCONNECT with data", "83a47479706501a36e7370a12fa46461746180"},
		{"EVENT with a map", "83a47479706502a36e7370a12fa46461746180"},
		{"EVENT with null", "83a47479706502a36e7370a12fa464617461c0"},
		{"EVENT without data", "82a47479706502a36e7370a12f"},
		{"EVENT empty", "83a47479706502a36e7370a12fa46461746190"},
		{"EVENT name a map", "83a47479706502a36e7370a12fa4646174619180"},
		{"EVENT name reserved", "83a47479706502a36e7370a12fa46461746191a7636f6e6e656374"},
		{"ACK with a map", "84a47479706503a36e7370a12fa2696401a46461746180"},
		{"id 1.5", "84a47479706502a36e7370a12fa269" + "64cb3ff8000000000000a46461746191a178"},
		{"id a string", "84a47479706502a36e7370a12fa26964a131a46461746191a178"},
		{"CONNECT_ERROR from a client", "83a47479706504a36e7370a12fa46461746180"},
		{"array32 claiming 4G elements", "83a47479706502a36e7370a12fa464617461ddffffffff"},
		{"str32 claiming 4 GB", "83a47479706502a36e7370a12fa46461746191dbffffffff"},
		{"map16 truncated", "de0010"},
		{"nesting 10,000 deep", "83a47479706502a36e7370a12fa464617461" + deep},
		{"ext32 truncated", "c9ffffffff00"},
		{"a text frame", "<text>"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts, rec := startRecorded(t, Config{}, nil)
			c := ts.dial()
			c.mpConnect(t, "/", nil)
			if tc.hex == "<text>" {
				c.send(`2["x"]`)
			} else {
				c.sendBinary(mustHex(t, tc.hex))
			}
			if got := c.waitClosed(); len(got) != 0 {
				t.Fatalf("got %q", got)
			}
			receive(t, "the disconnect", rec.disconnected)
			if len(rec.events) != 0 {
				t.Fatalf("the handler got %q", (<-rec.events).Name)
			}
		})
	}
}

// A whole number decoded from JSON (a float64) goes to a msgpack client as the smallest integer,
// as notepack encodes a JS number without a fraction; a fraction stays a float64.
func TestMsgpackWholeFloatsAreInts(t *testing.T) {
	m, err := encodeMsgpackPacket(&Packet{Type: PacketEvent, Nsp: "/", ID: -1, Data: []any{"n", 300.0, 1.5}})
	if err != nil {
		t.Fatal(err)
	}
	b := m.Payload()
	if !bytes.Contains(b, []byte{0xcd, 0x01, 0x2c}) {
		t.Fatalf("300.0 not encoded as uint16 300: % x", b)
	}
	if !bytes.Contains(b, []byte{0xcb, 0x3f, 0xf8}) {
		t.Fatalf("1.5 not encoded as a float64: % x", b)
	}
}
