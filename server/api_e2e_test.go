package server

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"testing"

	sio "github.com/zishang520/socket.io/clients/socket/v3"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

// These tests drive the API like a backend would (plain HTTP with a key) and watch what the
// library's Go client receives.

// exactConfig is apiConfig without connection state recovery, whose session-aware adapter
// appends an offset argument to every stored broadcast (as Node's Socket.IO does); without it the
// client receives exactly the arguments the backend sent.
func exactConfig() Config {
	cfg := apiConfig()
	cfg.RecoveryWindow = 0
	return cfg
}

// received is one event as the client saw it.
type received struct {
	event string
	args  []any
}

// recordEvents reports every event c receives, in order.
func recordEvents(c *sio.Socket) <-chan received {
	ch := make(chan received, 64)
	c.OnAny(func(args ...any) {
		name, _ := args[0].(string)
		ch <- received{event: name, args: args[1:]}
	})
	return ch
}

// subscribe puts c in rooms through the "/" namespace's own event.
func subscribe(t *testing.T, c *sio.Socket, rooms ...string) {
	t.Helper()
	list := make([]any, len(rooms))
	for i, r := range rooms {
		list[i] = r
	}
	if res := call(t, c, "subscribe", map[string]any{"rooms": list}); res["data"] == nil {
		t.Fatalf("subscribe %v: %v", rooms, res)
	}
}

// mustJSON encodes v for a request body.
func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// expectStatus fails unless res has the status; it returns the body.
func expectStatus(t *testing.T, res apiResponse, status int) map[string]any {
	t.Helper()
	if res.status != status {
		t.Fatalf("status %d, want %d; body %s", res.status, status, res.raw)
	}
	return res.body
}

func TestAPIEmitReachesTheRoomsSockets(t *testing.T) {
	ts := startServer(t, exactConfig())
	for name, transports := range transportSets {
		t.Run(name, func(t *testing.T) {
			in := dial(t, ts.URL, dialOptions{transports: transports})
			excepted := dial(t, ts.URL, dialOptions{transports: transports})
			outside := dial(t, ts.URL, dialOptions{transports: transports})
			room := "news-" + name
			subscribe(t, in, room)
			subscribe(t, excepted, room)
			inEvents, exEvents, outEvents := recordEvents(in), recordEvents(excepted), recordEvents(outside)

			data := map[string]any{"title": "hello", "n": 1.5, "tags": []any{"a", nil, true}}
			expectStatus(t, post("/emit", mustJSON(t, map[string]any{
				"rooms": []string{room}, "except": []string{"user:" + excepted.Id()}, "event": "headline", "data": data,
			})).do(t, ts.URL), 202)
			// Then one event to everyone: a socket outside the selection sees it first.
			expectStatus(t, post("/emit", `{"event":"all","data":"everyone"}`).do(t, ts.URL), 202)

			eq(t, receive(t, "headline", inEvents), received{"headline", []any{data}})
			eq(t, receive(t, "all", inEvents), received{"all", []any{"everyone"}})
			eq(t, receive(t, "excepted: all", exEvents), received{"all", []any{"everyone"}})
			eq(t, receive(t, "outside: all", outEvents), received{"all", []any{"everyone"}})
		})
	}
}

func TestAPIEmitArguments(t *testing.T) {
	ts := startServer(t, exactConfig())
	c := dial(t, ts.URL, dialOptions{transports: transportSets["websocket"]})
	subscribe(t, c, "args")
	events := recordEvents(c)
	tests := []struct {
		name string
		body string
		want []any
	}{
		{"data object", `{"data":{"a":[1,2]}}`, []any{map[string]any{"a": []any{1.0, 2.0}}}},
		{"data string", `{"data":"x"}`, []any{"x"}},
		{"data null", `{"data":null}`, []any{nil}},
		{"args", `{"args":["a",2,false,null,{"k":"v"}]}`, []any{"a", 2.0, false, nil, map[string]any{"k": "v"}}},
		{"one arg", `{"args":[[1]]}`, []any{[]any{1.0}}},
		{"no arguments", `{}`, []any{}},
		{"empty args", `{"args":[]}`, []any{}},
		{"explicit namespace", `{"namespace":"/","data":"root"}`, []any{"root"}},
		{"unicode", `{"data":"naïve — 日本 🎉"}`, []any{"naïve — 日本 🎉"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body map[string]any
			if err := json.Unmarshal([]byte(tt.body), &body); err != nil {
				t.Fatal(err)
			}
			body["rooms"] = []string{"args"}
			body["event"] = fmt.Sprintf("e%d", i)
			expectStatus(t, post("/emit", mustJSON(t, body)).do(t, ts.URL), 202)
			eq(t, receive(t, "event", events), received{fmt.Sprintf("e%d", i), tt.want})
		})
	}
}

func TestAPIEmitVolatile(t *testing.T) {
	ts := startServer(t, exactConfig())
	c := dial(t, ts.URL, dialOptions{transports: transportSets["websocket"]})
	subscribe(t, c, "v")
	events := recordEvents(c)
	// A volatile event is dropped when the transport is busy writing, so emit until one arrives.
	var got received
	waitFor(t, "a volatile event", func() bool {
		expectStatus(t, post("/emit", `{"rooms":["v"],"event":"v","data":{"x":1},"volatile":true}`).do(t, ts.URL), 202)
		select {
		case got = <-events:
			return true
		default:
			return false
		}
	})
	eq(t, got, received{"v", []any{map[string]any{"x": 1.0}}})
}

func TestAPIEmitWithRecoveryAppendsTheOffset(t *testing.T) {
	ts := startServer(t, apiConfig()) // recovery on, the default
	c := dial(t, ts.URL, dialOptions{transports: transportSets["websocket"]})
	subscribe(t, c, "r")
	events := recordEvents(c)
	expectStatus(t, post("/emit", `{"rooms":["r"],"event":"e","args":[1,"two"]}`).do(t, ts.URL), 202)
	got := receive(t, "event", events)
	// The session-aware adapter adds the packet's offset as a last argument, as Node's does; the
	// socket.io-client keeps it to ask for recovery.
	if len(got.args) != 3 || got.args[0] != 1.0 || got.args[1] != "two" {
		t.Fatalf("got %v, want [1 two <offset>]", got.args)
	}
	if off, ok := got.args[2].(string); !ok || off == "" {
		t.Fatalf("last argument %#v, want the offset", got.args[2])
	}
}

func TestAPIBadRequestsReachNoClient(t *testing.T) {
	ts := startServer(t, exactConfig())
	c := dial(t, ts.URL, dialOptions{transports: transportSets["websocket"]})
	subscribe(t, c, "r")
	events := recordEvents(c)
	for _, body := range []string{
		`{"rooms":["r"],"event":"connect"}`,
		`{"rooms":["r"],"event":"e","data":1,"args":[2]}`,
		`{"rooms":["r"],"event":"e","namespace":"/nope"}`,
		`{"rooms":["r"],"event":"e","extra":1}`,
		`{"rooms":["r","bad room"],"event":"e"}`,
		`{"rooms":["r"],"event":"e","ackTimeoutMs":0}`,
		`{"rooms":["r"],"event":"e","volatile":1}`,
	} {
		expectStatus(t, post("/emit", body).do(t, ts.URL), 400)
	}
	expectStatus(t, post("/emit", `{"rooms":["r"],"event":"good","data":1}`).do(t, ts.URL), 202)
	eq(t, receive(t, "the good event", events), received{"good", []any{1.0}})
}

func TestAPIEmitCollectsAcks(t *testing.T) {
	ts := startServer(t, exactConfig())
	for name, transports := range transportSets {
		t.Run(name, func(t *testing.T) {
			acker := dial(t, ts.URL, dialOptions{transports: transports})
			silent := dial(t, ts.URL, dialOptions{transports: transports})
			room := "q-" + name
			subscribe(t, acker, room)
			subscribe(t, silent, room)
			asked := make(chan []any, 8)
			_ = acker.On("question", func(args ...any) {
				ack, ok := args[len(args)-1].(socket.Ack)
				if !ok {
					asked <- nil
					return
				}
				asked <- args[:len(args)-1]
				// Only the first argument counts as the client's answer.
				ack([]any{map[string]any{"answer": 42.0}, "ignored"}, nil)
			})
			silentAsked := make(chan struct{}, 8)
			_ = silent.On("question", func(...any) { silentAsked <- struct{}{} })

			// Everyone who is asked answers: complete, long before the timeout.
			res := expectStatus(t, post("/emit", mustJSON(t, map[string]any{
				"rooms": []string{room}, "except": []string{"user:" + silent.Id()},
				"event": "question", "data": "q1", "ackTimeoutMs": 60000,
			})).do(t, ts.URL), 200)
			eq(t, res, map[string]any{"acks": []any{map[string]any{"answer": 42.0}}, "timedOut": false})
			eq(t, receive(t, "question", asked), []any{"q1"})

			// One of two answers: the timeout cuts it short with the one ack.
			res = expectStatus(t, post("/emit", mustJSON(t, map[string]any{
				"rooms": []string{room}, "event": "question", "args": []any{"q2", 2}, "ackTimeoutMs": 300,
			})).do(t, ts.URL), 200)
			eq(t, res, map[string]any{"acks": []any{map[string]any{"answer": 42.0}}, "timedOut": true})
			eq(t, receive(t, "question", asked), []any{"q2", 2.0})
			receive(t, "silent question", silentAsked)
		})
	}
}

func TestAPIEmitAcksFromNobody(t *testing.T) {
	ts := startServer(t, exactConfig())
	dial(t, ts.URL, dialOptions{transports: transportSets["websocket"]}) // connected but in no matching room
	res := expectStatus(t, post("/emit", `{"rooms":["empty"],"event":"q","ackTimeoutMs":60000}`).do(t, ts.URL), 200)
	eq(t, res, map[string]any{"acks": []any{}, "timedOut": false})
}

func TestAPISocketsJoinLeaveDisconnect(t *testing.T) {
	ts := startServer(t, exactConfig())
	for name, transports := range transportSets {
		t.Run(name, func(t *testing.T) {
			c := dial(t, ts.URL, dialOptions{transports: transports, auth: map[string]any{"name": "ada"}})
			other := dial(t, ts.URL, dialOptions{transports: transports})
			events := recordEvents(c)
			vip := "vip-" + name
			// The Go client forgets its id at disconnect; the checks after it need them.
			cID, otherID := c.Id(), other.Id()

			expectStatus(t, post("/sockets/join", mustJSON(t, map[string]any{"rooms": []string{c.Id()}, "join": []string{vip}})).do(t, ts.URL), 200)
			res := expectStatus(t, get("/sockets?room="+vip).do(t, ts.URL), 200)
			eq(t, res, map[string]any{"sockets": []any{map[string]any{
				"id":    c.Id(),
				"user":  map[string]any{"id": c.Id(), "name": "ada"},
				"rooms": []any{"user:" + c.Id(), vip},
			}}})
			expectStatus(t, post("/emit", mustJSON(t, map[string]any{"rooms": []string{vip}, "event": "vip", "data": 1})).do(t, ts.URL), 202)
			eq(t, receive(t, "vip event", events), received{"vip", []any{1.0}})

			expectStatus(t, post("/sockets/leave", mustJSON(t, map[string]any{"rooms": []string{c.Id()}, "leave": []string{vip}})).do(t, ts.URL), 200)
			eq(t, expectStatus(t, get("/sockets?room="+vip).do(t, ts.URL), 200), map[string]any{"sockets": []any{}})
			expectStatus(t, post("/emit", mustJSON(t, map[string]any{"rooms": []string{vip}, "event": "vip", "data": 2})).do(t, ts.URL), 202)
			expectStatus(t, post("/emit", mustJSON(t, map[string]any{"rooms": []string{c.Id()}, "event": "direct", "data": 3})).do(t, ts.URL), 202)
			eq(t, receive(t, "direct event", events), received{"direct", []any{3.0}})

			reason := make(chan string, 1)
			_ = c.Once("disconnect", func(args ...any) { s, _ := args[0].(string); reason <- s })
			otherReason := make(chan string, 1)
			_ = other.Once("disconnect", func(args ...any) { s, _ := args[0].(string); otherReason <- s })
			// A namespace disconnect: the client is told, so it does not reconnect by itself.
			expectStatus(t, post("/sockets/disconnect", mustJSON(t, map[string]any{"rooms": []string{"user:" + c.Id()}})).do(t, ts.URL), 200)
			eq(t, receive(t, "disconnect", reason), "io server disconnect")
			eq(t, expectStatus(t, get("/sockets?room=user:"+cID).do(t, ts.URL), 200), map[string]any{"sockets": []any{}})

			// close also closes the connection under the socket; the Go client may see that close
			// before the disconnect packet.
			expectStatus(t, post("/sockets/disconnect", mustJSON(t, map[string]any{"rooms": []string{other.Id()}, "close": true})).do(t, ts.URL), 200)
			if r := receive(t, "other disconnect", otherReason); r != "io server disconnect" && r != "transport close" {
				t.Fatalf("disconnect reason %q", r)
			}
			// Asked by id, not as an empty list of everyone: an attempt dial gave up on (see
			// tryConnect) may still be connected until its ping timeout.
			eq(t, expectStatus(t, get("/sockets?room="+otherID).do(t, ts.URL), 200), map[string]any{"sockets": []any{}})
		})
	}
}

func TestAPIListSocketsAndStats(t *testing.T) {
	ts := startServer(t, exactConfig())
	ada := dial(t, ts.URL, dialOptions{transports: transportSets["websocket"], auth: map[string]any{"name": "ada"}})
	bob := dial(t, ts.URL, dialOptions{transports: transportSets["websocket"], auth: map[string]any{"name": "bob"}})
	subscribe(t, ada, "news")
	subscribe(t, bob, "news", "sports")

	entry := func(c *sio.Socket, name string, rooms ...string) map[string]any {
		rooms = append(rooms, "user:"+c.Id())
		sort.Strings(rooms)
		list := make([]any, len(rooms))
		for i, r := range rooms {
			list[i] = r
		}
		return map[string]any{"id": c.Id(), "user": map[string]any{"id": c.Id(), "name": name}, "rooms": list}
	}
	both := []any{entry(ada, "ada", "news"), entry(bob, "bob", "news", "sports")}
	sort.Slice(both, func(i, j int) bool {
		return both[i].(map[string]any)["id"].(string) < both[j].(map[string]any)["id"].(string)
	})
	tests := []struct {
		name  string
		query string
		want  []any
	}{
		{"everyone", "", both},
		{"explicit namespace", "?namespace=/", both},
		{"one room", "?room=sports", []any{entry(bob, "bob", "news", "sports")}},
		{"any of two rooms", "?room=sports&room=user:" + ada.Id(), both},
		{"a room by socket id", "?room=" + ada.Id(), []any{entry(ada, "ada", "news")}},
		{"an empty room", "?room=nobody", []any{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := expectStatus(t, get("/sockets"+tt.query).do(t, ts.URL), 200)
			eq(t, res, map[string]any{"sockets": tt.want})
		})
	}

	t.Run("stats", func(t *testing.T) {
		res := expectStatus(t, get("/stats").do(t, ts.URL), 200)
		nsps, _ := res["namespaces"].(map[string]any)
		eq(t, slices.Sorted(maps.Keys(nsps)), slices.Sorted(maps.Keys(ts.nsps)))
		// news, sports and the two user rooms; the sockets' own id rooms are not counted.
		eq(t, nsps["/"], any(map[string]any{"sockets": 2.0, "rooms": 4.0}))
		connections := 0.0
		for _, v := range nsps {
			connections += v.(map[string]any)["sockets"].(float64)
		}
		eq(t, connections, 2.0)
		eq(t, res["connections"], any(connections))
		eq(t, res["nodes"], any(1.0))
		eq(t, res["version"], any(Version))
		if up, ok := res["uptimeSeconds"].(float64); !ok || up < 0 || up != float64(int64(up)) {
			t.Fatalf("uptimeSeconds = %v, want whole seconds", res["uptimeSeconds"])
		}
		eq(t, len(res), 5)
	})
}
