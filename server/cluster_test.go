package server

import (
	"strings"
	"testing"
	"time"

	sio "github.com/zishang520/socket.io/clients/socket/v3"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/switchboard/switchboard/internal/redistest"
)

// clusterConfig is apiConfig on the Redis adapter named, with the Redis at url.
func clusterConfig(adapter, url string) Config {
	cfg := apiConfig()
	cfg.Adapter = adapter
	cfg.RedisURL = url
	return cfg
}

// Two nodes on one Redis share the chat history (bounded per room) and count each other.
func TestClusterSharesChatHistoryAndCountsNodes(t *testing.T) {
	for _, adapter := range []string{"redis", "redis-streams"} {
		t.Run(adapter, func(t *testing.T) {
			rds := redistest.Start(t)
			cfg := clusterConfig(adapter, rds.URL())
			cfg.ChatHistory = 2
			a := startServer(t, cfg)
			b := startServer(t, cfg)

			for _, node := range []*testServer{a, b} {
				waitFor(t, "stats to count both nodes", func() bool {
					res := get("/stats").do(t, node.URL)
					n, _ := res.body["nodes"].(float64)
					return res.status == 200 && n == 2
				})
			}

			// An emit with acks on A, to clients on both nodes, ends with both acks before its
			// timeout, every time.
			onA := dialReady(t, a, "/", nil, nil)
			onB := dialReady(t, b, "/", nil, nil)
			// Joined through the API: no client event races the server's connection handler.
			expectStatus(t, post("/sockets/join", `{"rooms":["`+onA.Id()+`","`+onB.Id()+`"],"join":["ask"]}`).do(t, a.URL), 200)
			waitFor(t, "both sockets in the room", func() bool {
				res := get("/sockets?room=ask").do(t, b.URL)
				socks, _ := res.body["sockets"].([]any)
				return len(socks) == 2
			})
			for _, c := range []*sio.Socket{onA, onB} {
				from := "A"
				if c == onB {
					from = "B"
				}
				_ = c.On("question", func(args ...any) {
					if ack, ok := args[len(args)-1].(socket.Ack); ok {
						ack([]any{from}, nil)
					}
				})
			}
			for i := range 10 {
				res := expectStatus(t, post("/emit", `{"rooms":["ask"],"event":"question","data":1,"ackTimeoutMs":5000}`).do(t, a.URL), 200)
				acks, _ := res["acks"].([]any)
				if len(acks) != 2 || acks[0] == acks[1] || res["timedOut"] != false {
					t.Fatalf("round %d: emit with acks = %v, want one ack from each node, not timed out", i, res)
				}
			}

			alice := dialChat(t, a, nil, map[string]any{"name": "alice"}) // waits for the handler: see dialReady
			data(t, call(t, alice, "chat:join", map[string]any{"room": "lobby"}))
			var ids []string
			for _, text := range []string{"one", "two", "three"} {
				sent := data(t, call(t, alice, "chat:send", map[string]any{"room": "lobby", "text": text}))
				ids = append(ids, sent["id"].(string))
			}
			if ids[0] != "1" || ids[1] != "2" || ids[2] != "3" {
				t.Fatalf("ids = %v, want 1 2 3 (one counter per room in Redis)", ids)
			}

			bob := dialChat(t, b, nil, map[string]any{"name": "bob"})
			joined := data(t, call(t, bob, "chat:join", map[string]any{"room": "lobby"}))
			checkTexts(t, "join history on node B", joined["history"], "two", "three")
			if members, _ := joined["members"].([]any); len(members) != 2 {
				t.Fatalf("members seen from node B = %v, want alice (node A) and bob", joined["members"])
			}
			// fetchSockets from A reaches B (with redis-streams, only thanks to the adapters package's
			// mends of the library).
			res := get("/sockets?namespace=/chat&room=lobby").do(t, a.URL)
			if socks, _ := res.body["sockets"].([]any); res.status != 200 || len(socks) != 2 {
				t.Fatalf("GET /sockets on node A = %d %s, want alice's and bob's sockets", res.status, res.raw)
			}
			older := data(t, call(t, bob, "chat:history", map[string]any{"room": "lobby", "before": "3"}))
			checkTexts(t, "history before 3 on node B", older["messages"], "two")

			// The next id comes from the same counter, whichever node sends.
			sent := data(t, call(t, bob, "chat:send", map[string]any{"room": "lobby", "text": "four"}))
			if sent["id"] != "4" {
				t.Fatalf("id of a message sent on node B = %v, want 4", sent["id"])
			}
		})
	}
}

// checkTexts fails unless msgs is a list of messages with exactly these texts, in order.
func checkTexts(t *testing.T, what string, msgs any, want ...string) {
	t.Helper()
	list, ok := msgs.([]any)
	if !ok || len(list) != len(want) {
		t.Fatalf("%s = %v, want texts %v", what, msgs, want)
	}
	for i, m := range list {
		if text, _ := m.(map[string]any)["text"].(string); text != want[i] {
			t.Fatalf("%s = %v, want texts %v", what, msgs, want)
		}
	}
}

// On the redis adapter a node's broadcasts reach the sockets of both nodes, in the order sent.
func TestRedisBroadcastsInOrder(t *testing.T) {
	rds := redistest.Start(t)
	cfg := clusterConfig("redis", rds.URL())
	a := startServer(t, cfg)
	b := startServer(t, cfg)
	onA, onB := mustRawDial(t, a, "/"), mustRawDial(t, b, "/")
	for _, c := range []*rawClient{onA, onB} {
		if got := c.call(t, "/", "subscribe", `{"rooms":["feed"]}`, 0); errorCode(got) != "" {
			t.Fatalf("subscribe: %v", got)
		}
	}
	// B subscribes to the Redis channels in the background: A sends probes until one reaches B,
	// then a marker, after which both clients have read every probe.
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			a.IO().Namespace("/").To("feed").Emit("probe")
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	skipUntil(t, onB, "probe")
	close(stop)
	<-stopped
	a.IO().Namespace("/").To("feed").Emit("marker")
	skipUntil(t, onA, "marker")
	skipUntil(t, onB, "marker")

	const n = 50
	for i := range n {
		a.IO().Namespace("/").To("feed").Emit("tick", i)
	}
	for i := range n {
		for _, c := range []*rawClient{onA, onB} {
			if got := c.event(t, "tick"); len(got) != 1 || got[0] != float64(i) {
				t.Fatalf("tick %d: args %v", i, got)
			}
		}
	}
}

// skipUntil reads c's messages until event name arrives.
func skipUntil(t *testing.T, c *rawClient, name string) {
	t.Helper()
	for {
		msg, err := c.read()
		if err != nil {
			t.Fatalf("waiting for %s: %v", name, err)
		}
		if strings.HasPrefix(msg, `42["`+name+`"`) {
			return
		}
	}
}
