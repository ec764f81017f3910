package server

import (
	"encoding/json"
	"fmt"
	"net/http"
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
