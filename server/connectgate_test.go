package server

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

// TestEmitRightAfterConnect sends an event the moment the CONNECT answer arrives, as
// socket.io-client does with its buffered events. Without the connect gate the library closed
// such connections now and then (a few in a few hundred on this machine); every one must be
// answered.
func TestEmitRightAfterConnect(t *testing.T) {
	ts := startServer(t, testConfig())
	wsURL := "ws" + strings.TrimPrefix(ts.URL, "http") + "/socket.io/?EIO=4&transport=websocket"
	for _, nsp := range []struct{ connect, event, ack string }{
		{"40", `421["subscribe",{"rooms":["a"]}]`, "431"},
		{"40/chat,", `42/chat,1["chat:join",{"room":"a"}]`, "43/chat,1"},
	} {
		for i := range 200 {
			c, _, err := websocket.DefaultDialer.Dial(wsURL, nil)
			if err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
			if _, open, err := c.ReadMessage(); err != nil || open[0] != '0' {
				t.Fatalf("open: %q %v", open, err)
			}
			_ = c.WriteMessage(websocket.TextMessage, []byte(nsp.connect))
			if _, msg, err := c.ReadMessage(); err != nil || !strings.HasPrefix(string(msg), nsp.connect+"{") {
				t.Fatalf("connect %d: %q %v", i, msg, err)
			}
			_ = c.WriteMessage(websocket.TextMessage, []byte(nsp.event))
			for {
				_, msg, err := c.ReadMessage()
				if err != nil {
					t.Fatalf("%s: attempt %d: connection closed before the ack: %v", nsp.event, i, err)
				}
				if strings.HasPrefix(string(msg), nsp.ack) {
					break
				}
				// Room events (presence of earlier attempts' sockets) may come first.
			}
			_ = c.Close()
		}
	}
}

func TestConnectGateHiddenFromHandshake(t *testing.T) {
	ts := startServer(t, testConfig())
	seen := make(chan map[string]any, 1)
	// Listeners run on the socket's goroutine, after the gate opened: copy what they see there.
	_ = ts.IO().Sockets().On("connection", func(args ...any) {
		auth := map[string]any{}
		for k, v := range args[0].(*socket.Socket).Handshake().Auth {
			auth[k] = v
		}
		seen <- auth
	})
	dial(t, ts.URL, dialOptions{auth: map[string]any{"name": "ada"}})
	auth := receive(t, "the connection handler", seen)
	if _, ok := auth[connectGateKey]; ok {
		t.Errorf("handshake auth still carries the gate: %v", auth)
	}
	if auth["name"] != "ada" || len(auth) != 1 {
		t.Errorf("handshake auth = %v, want the client's own {name: ada}", auth)
	}
}

// TestServerSideConnectionEvents: "connect" and "connection" can also arrive from other nodes as
// server-side events (serverSideEmit over Redis) with any arguments or none; they are no sockets
// and must be ignored, not crash the process.
func TestServerSideConnectionEvents(t *testing.T) {
	ts := startServer(t, testConfig())
	for name, nsp := range ts.nsps {
		for _, args := range [][]any{{"connection"}, {"connect"}, {"connection", "x"}, {"connect", nil, 1.0}} {
			nsp.OnServerSideEmit(args) // panics without the guard
		}
		c := dial(t, ts.URL, dialOptions{nsp: name})
		if !c.Connected() {
			t.Fatalf("%s: a client cannot connect after the server-side events", name)
		}
	}
}
