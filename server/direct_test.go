package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
)

// countBroadcastPackets counts the broadcast packets the engine creates for a connection (the
// library's way to a recipient; the direct way creates none).
func countBroadcastPackets(ts *testServer, sid string) *atomic.Int64 {
	var n atomic.Int64
	_ = serverSocket(ts, sid).Conn().On("packetCreate", func(args ...any) {
		if p, ok := args[0].(*packet.Packet); ok && p.Options != nil && p.Options.WsPreEncodedFrame != nil {
			n.Add(1)
		}
	})
	return &n
}

// A broadcast reaches a websocket client whose engine buffer is empty without an engine packet
// (server/direct.go), and a long-polling client the library's way; both get every broadcast
// once, in order.
func TestBroadcastsGoDirectToIdleWebsockets(t *testing.T) {
	ts := startServer(t, exactConfig())
	wsc := mustRawDial(t, ts, "/")
	if got := wsc.call(t, "/", "subscribe", `{"rooms":["feed"]}`, 0); errorCode(got) != "" {
		t.Fatalf("subscribe: %v", got)
	}
	poller, _ := openPolling(t, ts.URL, "/socket.io/")
	var polled []string // Engine.IO packets polled and not read yet
	poll := func() string {
		for len(polled) == 0 {
			status, body := poller.get()
			if status != http.StatusOK {
				t.Fatalf("poll: HTTP %d %q", status, body)
			}
			for _, p := range strings.Split(body, "\x1e") {
				if p == "2" {
					poller.post("3")
					continue
				}
				polled = append(polled, p)
			}
		}
		p := polled[0]
		polled = polled[1:]
		return p
	}
	poller.post("40")
	var connected struct{ Sid string }
	if err := json.Unmarshal([]byte(strings.TrimPrefix(poll(), "40")), &connected); err != nil || connected.Sid == "" {
		t.Fatalf("polling CONNECT: %v", err)
	}
	if err := waitRegistered(ts, poller.sid, "/"); err != nil {
		t.Fatal(err)
	}
	poller.post(`420["subscribe",{"rooms":["feed"]}]`)
	if ack := poll(); !strings.HasPrefix(ack, `430[{"data"`) {
		t.Fatalf("polling subscribe: %q", ack)
	}
	wsPackets := countBroadcastPackets(ts, wsc.sid)
	pollPackets := countBroadcastPackets(ts, connected.Sid)

	const n = 50
	for i := range n {
		ts.IO().To("feed").Emit("tick", i)
	}
	for i := range n {
		if got := wsc.event(t, "tick"); len(got) != 1 || got[0] != float64(i) {
			t.Fatalf("websocket tick %d: args %v", i, got)
		}
		if got := poll(); got != fmt.Sprintf(`42["tick",%d]`, i) {
			t.Fatalf("polling tick %d: %q", i, got)
		}
	}
	if got := wsPackets.Load(); got != 0 {
		t.Fatalf("websocket: %d broadcasts took the engine's way, want 0", got)
	}
	if got := pollPackets.Load(); got != n {
		t.Fatalf("polling: %d broadcasts through the engine, want %d", got, n)
	}
}

// countPackets counts every packet the engine creates for the connection of socket sid.
func countPackets(ts *testServer, sid string) *atomic.Int64 {
	var n atomic.Int64
	_ = serverSocket(ts, sid).Conn().On("packetCreate", func(...any) { n.Add(1) })
	return &n
}

// An event's ack is written past the engine on an idle websocket (directAck), once, with the
// data the handler gave; the library's way is kept where the engine has packets waiting.
func TestAcksGoDirect(t *testing.T) {
	ts := startServer(t, exactConfig())
	c := mustRawDial(t, ts, "/")
	packets := countPackets(ts, c.sid)
	for i := range 20 {
		room := fmt.Sprint("r", i)
		reply := c.call(t, "/", "subscribe", fmt.Sprintf(`{"rooms":[%q]}`, room), i)
		data, _ := reply["data"].(map[string]any)
		if rooms, _ := data["rooms"].([]any); !slices.Contains(rooms, any(room)) {
			t.Fatalf("ack %d: %v", i, reply)
		}
	}
	if got := packets.Load(); got != 0 {
		t.Fatalf("%d acks went through the engine, want 0", got)
	}

	// With a packet waiting in the engine's buffer the ack queues behind it, in order.
	sock := serverSocket(ts, c.sid)
	st := ts.conns.stateByID(c.engine)
	st.buffered.Add(1) // as if a packet had been created and not flushed yet
	sock.Emit("before", 1)
	if err := c.emit("/", "subscribe", `{"rooms":["x"]}`, 99); err != nil {
		t.Fatal(err)
	}
	if got := c.event(t, "before"); len(got) != 1 || got[0] != 1.0 {
		t.Fatalf("before: %v", got)
	}
	if reply := c.ack(t, "/", 99); reply["data"] == nil {
		t.Fatalf("ack behind the engine's packet: %v", reply)
	}
	if got := packets.Load(); got != 2 {
		t.Fatalf("%d packets through the engine, want the event and the ack", got)
	}
	st.buffered.Add(-1)
}

// A client that leaves a namespace and joins it again on the same connection at once, and sends an
// event right away, is served by a new socket and gets its ack from it (the library would close
// the connection for a CONNECT while the old socket is still closing: gatedDecoder.leave; the
// decoder's binding to the namespace's socket is replaced, not left on the socket that left).
func TestAckAfterRejoiningANamespace(t *testing.T) {
	ts := startServer(t, exactConfig())
	c := mustRawDial(t, ts, "/")
	old := c.sid
	for _, msg := range []string{"41", "40", `420["subscribe",{"rooms":["again"]}]`} {
		if err := c.write(msg); err != nil {
			t.Fatal(err)
		}
	}
	answer, _, err := c.awaitConnect("/")
	if err != nil {
		t.Fatalf("waiting for the new CONNECT: %v", err)
	}
	if sid, _ := answer["sid"].(string); sid == "" || sid == old {
		t.Fatalf("CONNECT answer %v: want a new socket", answer)
	}
	if reply := c.ack(t, "/", 0); reply["data"] == nil {
		t.Fatalf("ack after rejoining: %v", reply)
	}
}

// Subscribing again to rooms a socket is in (and naming a room twice) changes nothing: the rooms
// are listed once and a broadcast arrives once.
func TestSubscribeAgain(t *testing.T) {
	ts := startServer(t, exactConfig())
	c := mustRawDial(t, ts, "/")
	for i, rooms := range []string{`["a","b"]`, `["a","a","b"]`, `["b","c","c"]`} {
		reply := c.call(t, "/", "subscribe", `{"rooms":`+rooms+`}`, i)
		data, _ := reply["data"].(map[string]any)
		got, _ := data["rooms"].([]any)
		var named []any
		for _, r := range got {
			if !strings.HasPrefix(r.(string), "user:") {
				named = append(named, r)
			}
		}
		want := []any{"a", "b"}
		if i == 2 {
			want = append(want, "c")
		}
		if !slices.Equal(named, want) {
			t.Fatalf("subscribe %s: rooms %v, want %v and the user room", rooms, got, want)
		}
	}
	ts.IO().To("a", "b", "c").Emit("once", 1)
	ts.IO().To("c").Emit("after", 2)
	if got := c.event(t, "once"); got[0] != 1.0 {
		t.Fatalf("once: %v", got)
	}
	if got := c.event(t, "after"); got[0] != 2.0 { // not a second "once"
		t.Fatalf("after: %v", got)
	}
}
