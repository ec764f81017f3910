package server

// "/relay" as the product serves it (SPEC §9): behind the node's authentication and limits,
// counted by its metrics, shared by the nodes of a cluster, ticking at --relay-tick. What the
// namespace does by itself is tested in package namespaces.

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	sio "github.com/zishang520/socket.io/clients/socket/v3"

	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/namespaces"
)

// relayEvents are the events a /relay member hears.
var relayEvents = []string{namespaces.RelayMessageEvent, namespaces.RelayUserJoinedEvent, namespaces.RelayUserLeftEvent}

// dialRelay connects to /relay and waits until the server has set the socket up.
func dialRelay(t *testing.T, ts *testServer, auth map[string]any) (*sio.Socket, <-chan event) {
	t.Helper()
	c := dialReady(t, ts, "/relay", nil, auth)
	return c, inbox(c, relayEvents...)
}

// nextWhere waits for the next event called name for which ok holds, skipping the others.
func nextWhere(t *testing.T, ch <-chan event, name string, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case ev := <-ch:
			if ev.name == name && ok(ev.data) {
				return ev.data
			}
		case <-deadline:
			t.Fatalf("timed out waiting for %s", name)
			return nil
		}
	}
}

// keyed matches a relay:message with key and data.x equal to x.
func keyed(key string, x float64) func(map[string]any) bool {
	return func(m map[string]any) bool {
		d, _ := m["data"].(map[string]any)
		return m["key"] == key && d["x"] == x
	}
}

// fromUser matches an event about (or from) the user with this name.
func fromUser(name string) func(map[string]any) bool {
	return func(m map[string]any) bool {
		_, n := userOf(m["user"])
		return n == name
	}
}

// memberNames lists the names of a relay:join answer's members, in its order.
func memberNames(reply map[string]any) []string {
	var names []string
	members, _ := reply["members"].([]any)
	for _, m := range members {
		_, n := userOf(m)
		names = append(names, n)
	}
	return names
}

func publishReq(room, ev string, data any, key string) map[string]any {
	p := map[string]any{"room": room, "event": ev, "data": data}
	if key != "" {
		p["key"] = key
	}
	return p
}

// /relay takes the node's tokens: a socket without one is refused, a token's sub and name are
// the user the room sees, its rooms claim bounds relay:join, and user rooms stay reserved.
func TestRelayAuth(t *testing.T) {
	ts := jwtServer(t)
	t.Run("no token", func(t *testing.T) {
		_, cerr := tryConnect(t, ts.URL, dialOptions{nsp: "/relay"})
		if cerr == nil {
			t.Fatal("connected to /relay without a token")
		}
		data, _ := cerr.Data.(map[string]any)
		if cerr.Message != "unauthorized" || data["code"] != TokenMissing {
			t.Fatalf("connect_error %q %v, want unauthorized %s", cerr.Message, cerr.Data, TokenMissing)
		}
	})
	t.Run("identity and rooms claim", func(t *testing.T) {
		alice, aIn := dialRelay(t, ts, map[string]any{"token": hsToken(t, "alice", inAnHour(), jwt.MapClaims{"name": "Alice", "rooms": []string{"game:*"}})})
		bob, _ := dialRelay(t, ts, map[string]any{"token": hsToken(t, "bob", inAnHour(), jwt.MapClaims{"name": "Bob"})})
		if code := errCode(t, call(t, alice, namespaces.RelayJoinEvent, map[string]any{"room": "lobby"})); code != namespaces.CodeForbidden {
			t.Fatalf("join outside the rooms claim: %s, want forbidden", code)
		}
		if code := errCode(t, call(t, bob, namespaces.RelayJoinEvent, map[string]any{"room": "user:alice"})); code != namespaces.CodeForbidden {
			t.Fatalf("join another user's room: %s, want forbidden", code)
		}
		data(t, call(t, alice, namespaces.RelayJoinEvent, map[string]any{"room": "game:1"}))
		joined := data(t, call(t, bob, namespaces.RelayJoinEvent, map[string]any{"room": "game:1"}))
		if got := memberNames(joined); !reflect.DeepEqual(got, []string{"Alice", "Bob"}) {
			t.Fatalf("members %v, want Alice and Bob", got)
		}
		if id, name := userOf(next(t, aIn, namespaces.RelayUserJoinedEvent)["user"]); id != "bob" || name != "Bob" {
			t.Fatalf("user-joined %s %s, want bob Bob", id, name)
		}
		data(t, call(t, bob, namespaces.RelayPublishEvent, publishReq("game:1", "hello", 1, "")))
		if id, name := userOf(next(t, aIn, namespaces.RelayMessageEvent)["user"]); id != "bob" || name != "Bob" {
			t.Fatalf("message from %s %s, want bob Bob", id, name)
		}
	})
}

// /relay's events go through the node's limits: the room limit counts relay:join, the event
// rate counts relay:publish, and both answer with SPEC §2's codes.
func TestRelayLimits(t *testing.T) {
	t.Run("rooms per socket", func(t *testing.T) {
		cfg := testConfig()
		cfg.Limits.MaxRoomsPerSocket = 2
		ts := startServer(t, cfg)
		c, _ := dialRelay(t, ts, nil)
		for _, room := range []string{"a", "b"} {
			data(t, call(t, c, namespaces.RelayJoinEvent, map[string]any{"room": room}))
		}
		if code := errCode(t, call(t, c, namespaces.RelayJoinEvent, map[string]any{"room": "c"})); code != namespaces.CodeForbidden {
			t.Fatalf("a third room: %s, want forbidden", code)
		}
		data(t, call(t, c, namespaces.RelayJoinEvent, map[string]any{"room": "a"})) // already in: not counted again
		if code := errCode(t, call(t, c, namespaces.RelayJoinEvent, map[string]any{"room": "bad room!"})); code != namespaces.CodeBadRequest {
			t.Fatalf("an invalid room past the limit: %s, want bad_request", code)
		}
		if n := counterValue(t, ts.metrics, "switchboard_limit_rejections_total", "limit=rooms"); n != 1 {
			t.Fatalf("rooms rejections = %v, want 1", n)
		}
	})
	t.Run("event rate", func(t *testing.T) {
		cfg := testConfig()
		cfg.Limits.EventRate, cfg.Limits.EventBurst = 1, 3
		ts := startServer(t, cfg)
		c, _ := dialRelay(t, ts, nil)
		data(t, call(t, c, namespaces.RelayJoinEvent, map[string]any{"room": "r"}))
		limited := 0
		for i := range 6 {
			ack := call(t, c, namespaces.RelayPublishEvent, publishReq("r", "move", i, "pos"))
			if _, failed := ack["error"]; failed {
				if code := errCode(t, ack); code != namespaces.CodeRateLimited {
					t.Fatalf("publish %d: %s, want rate_limited", i, code)
				}
				limited++
			}
		}
		if limited == 0 {
			t.Fatal("6 publishes within a burst of 3 at 1/s: none rate_limited")
		}
		if n := counterValue(t, ts.metrics, "switchboard_limit_rejections_total", "limit=event_rate"); n != float64(limited) {
			t.Fatalf("event_rate rejections = %v, want %d", n, limited)
		}
	})
	t.Run("data size", func(t *testing.T) {
		ts := startServer(t, testConfig())
		c, _ := dialRelay(t, ts, nil)
		data(t, call(t, c, namespaces.RelayJoinEvent, map[string]any{"room": "r"}))
		big := strings.Repeat("x", namespaces.MaxRelayData)
		if code := errCode(t, call(t, c, namespaces.RelayPublishEvent, publishReq("r", "blob", big, "k"))); code != namespaces.CodeBadRequest {
			t.Fatalf("16 KiB of data and its quotes: %s, want bad_request", code)
		}
	})
}

// The relay's metrics: publishes in (keyed or not), keyed frames delivered, and keyed values
// coalesced away at the tick; relay:message frames, keyed or not, in events_emitted_total.
func TestRelayMetrics(t *testing.T) {
	cfg := testConfig()
	cfg.RelayTick = 100 * time.Millisecond
	ts := startServer(t, cfg)
	alice, _ := dialRelay(t, ts, map[string]any{"name": "alice"})
	bob, bIn := dialRelay(t, ts, map[string]any{"name": "bob"})
	carol, cIn := dialRelay(t, ts, map[string]any{"name": "carol"})
	for _, c := range []*sio.Socket{alice, bob, carol} {
		data(t, call(t, c, namespaces.RelayJoinEvent, map[string]any{"room": "m"}))
	}
	for i := range 3 {
		data(t, call(t, alice, namespaces.RelayPublishEvent, publishReq("m", "chat", i, "")))
	}
	const burst = 100
	for i := range burst - 1 {
		_ = alice.Emit(namespaces.RelayPublishEvent, publishReq("m", "move", map[string]any{"x": i}, "pos"))
	}
	data(t, call(t, alice, namespaces.RelayPublishEvent, publishReq("m", "move", map[string]any{"x": burst - 1}, "pos")))

	// Each reader's messages up to the last value: 3 unkeyed ones, then the keyed ones.
	count := func(in <-chan event) (unkeyed, keyedN int) {
		for {
			m := nextWhere(t, in, namespaces.RelayMessageEvent, func(map[string]any) bool { return true })
			if m["key"] == nil {
				unkeyed++
				continue
			}
			keyedN++
			if keyed("pos", burst-1)(m) {
				return unkeyed, keyedN
			}
		}
	}
	bu, bk := count(bIn)
	cu, ck := count(cIn)
	if bu != 3 || cu != 3 || bk != ck || bk >= burst {
		t.Fatalf("bob got %d unkeyed and %d keyed, carol %d and %d: want 3 each and the same keyed values, fewer than %d",
			bu, bk, cu, ck, burst)
	}
	waitFor(t, "the deliveries to be counted", func() bool {
		return counterValue(t, ts.metrics, "switchboard_relay_delivered_total") == float64(bk+ck)
	})
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"switchboard_relay_published_total", []string{"keyed=false"}, 3},
		{"switchboard_relay_published_total", []string{"keyed=true"}, burst},
		{"switchboard_relay_coalesced_total", []string{"stage=tick"}, float64(burst - bk)},
		{"switchboard_relay_coalesced_total", []string{"stage=slow_reader"}, 0},
		{"switchboard_events_received_total", []string{"namespace=/relay", "event=relay:publish"}, 3 + burst},
		{"switchboard_events_emitted_total", []string{"namespace=/relay", "event=relay:message"}, float64(2*3 + bk + ck)},
	}
	for _, c := range checks {
		if got := counterValue(t, ts.metrics, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if body := scrape(t, ts.URL); !strings.Contains(body, `switchboard_relay_coalesced_total{stage="tick"}`) {
		t.Errorf("/metrics lacks the relay's coalesced series")
	}
}

// Two nodes on one Redis, for each Redis adapter: members, state and messages are the room's,
// whichever node a member is on.
func TestRelayTwoNodesOnRedis(t *testing.T) {
	for _, adapter := range []string{"redis", "redis-sharded", "redis-streams"} {
		t.Run(adapter, func(t *testing.T) {
			rds := redistest.Start(t)
			cfg := clusterConfig(adapter, rds.URL())
			a, b := startServer(t, cfg), startServer(t, cfg)
			for _, node := range []*testServer{a, b} {
				waitFor(t, "stats to count both nodes", func() bool {
					res := get("/stats").do(t, node.URL)
					n, _ := res.body["nodes"].(float64)
					return res.status == 200 && n == 2
				})
			}
			join := func(c *sio.Socket) map[string]any {
				return data(t, call(t, c, namespaces.RelayJoinEvent, map[string]any{"room": "arena"}))
			}

			alice, aIn := dialRelay(t, a, map[string]any{"name": "alice"})
			bob, bIn := dialRelay(t, b, map[string]any{"name": "bob"})
			join(alice)
			if got := memberNames(join(bob)); !reflect.DeepEqual(got, []string{"alice", "bob"}) {
				t.Fatalf("members seen from B: %v", got)
			}
			nextWhere(t, aIn, namespaces.RelayUserJoinedEvent, fromUser("bob"))

			// Keyed, both ways: A's burst reaches B coalesced, with its last value.
			for i := range 50 {
				_ = alice.Emit(namespaces.RelayPublishEvent, publishReq("arena", "move", map[string]any{"x": i}, "pos"))
			}
			data(t, call(t, alice, namespaces.RelayPublishEvent, publishReq("arena", "move", map[string]any{"x": 50}, "pos")))
			nextWhere(t, bIn, namespaces.RelayMessageEvent, keyed("pos", 50))
			data(t, call(t, bob, namespaces.RelayPublishEvent, publishReq("arena", "move", map[string]any{"x": 7}, "pos")))
			nextWhere(t, aIn, namespaces.RelayMessageEvent, keyed("pos", 7))

			// Unkeyed, in order, B to A.
			for i := range 30 {
				_ = bob.Emit(namespaces.RelayPublishEvent, publishReq("arena", "seq", i, ""))
			}
			for i := range 30 {
				m := nextWhere(t, aIn, namespaces.RelayMessageEvent, func(m map[string]any) bool { return m["event"] == "seq" })
				if m["data"] != float64(i) {
					t.Fatalf("unkeyed message %d from B carried %v: out of order", i, m["data"])
				}
			}

			// A late joiner on A gets both nodes' state.
			carol, _ := dialRelay(t, a, map[string]any{"name": "carol"})
			joined := join(carol)
			want := map[string]any{
				alice.Id(): map[string]any{"pos": map[string]any{"x": 50.0}},
				bob.Id():   map[string]any{"pos": map[string]any{"x": 7.0}},
			}
			if !reflect.DeepEqual(joined["state"], want) {
				t.Fatalf("state seen by a late joiner: %v, want %v", joined["state"], want)
			}
			if got := memberNames(joined); !reflect.DeepEqual(got, []string{"alice", "bob", "carol"}) {
				t.Fatalf("members seen by carol: %v", got)
			}

			// Alice leaves: B hears it, and her state is gone for the next joiner on B.
			alice.Disconnect()
			nextWhere(t, bIn, namespaces.RelayUserLeftEvent, fromUser("alice"))
			dave, _ := dialRelay(t, b, map[string]any{"name": "dave"})
			joined = join(dave)
			if want := map[string]any{bob.Id(): map[string]any{"pos": map[string]any{"x": 7.0}}}; !reflect.DeepEqual(joined["state"], want) {
				t.Fatalf("state after alice left: %v, want %v", joined["state"], want)
			}
			if got := memberNames(joined); !reflect.DeepEqual(got, []string{"bob", "carol", "dave"}) {
				t.Fatalf("members after alice left: %v", got)
			}
		})
	}
}

// --relay-tick sets how often a key's value goes out: under a publish every 5 ms, a reader gets
// at most one message per tick.
func TestRelayTickSetting(t *testing.T) {
	tests := []struct {
		tick     string
		min, max func(window time.Duration) int
	}{
		// 250 ms: at most one message per tick of the window, and the last value after it.
		{"250ms", func(time.Duration) int { return 2 }, func(w time.Duration) int { return int(w/(250*time.Millisecond)) + 2 }},
		// 20 ms: many more than the 250 ms tick allows (a quarter of the ticks, on a busy machine).
		{"20ms", func(w time.Duration) int { return int(w/(20*time.Millisecond)) / 4 }, func(w time.Duration) int { return int(w/(20*time.Millisecond)) + 2 }},
	}
	for _, tt := range tests {
		t.Run(tt.tick, func(t *testing.T) {
			cfg, err := LoadConfig([]string{"--relay-tick=" + tt.tick}, func(string) string { return "" }, nil)
			if err != nil {
				t.Fatal(err)
			}
			if want, _ := time.ParseDuration(tt.tick); cfg.RelayTick != want {
				t.Fatalf("--relay-tick=%s loaded as %v", tt.tick, cfg.RelayTick)
			}
			base := testConfig()
			base.RelayTick = cfg.RelayTick
			ts := startServer(t, base)
			alice, _ := dialRelay(t, ts, map[string]any{"name": "alice"})
			bob, bIn := dialRelay(t, ts, map[string]any{"name": "bob"})
			for _, c := range []*sio.Socket{alice, bob} {
				data(t, call(t, c, namespaces.RelayJoinEvent, map[string]any{"room": "t"}))
			}
			start := time.Now()
			pace := time.NewTicker(5 * time.Millisecond)
			i := 0
			for time.Since(start) < time.Second {
				<-pace.C
				_ = alice.Emit(namespaces.RelayPublishEvent, publishReq("t", "move", map[string]any{"x": i}, "pos"))
				i++
			}
			pace.Stop()
			data(t, call(t, alice, namespaces.RelayPublishEvent, publishReq("t", "move", map[string]any{"x": i}, "pos")))
			window := time.Since(start)
			got := 0
			nextWhere(t, bIn, namespaces.RelayMessageEvent, func(m map[string]any) bool {
				got++
				return keyed("pos", float64(i))(m)
			})
			if lo, hi := tt.min(window), tt.max(window); got < lo || got > hi {
				t.Fatalf("%d publishes over %v at --relay-tick=%s reached bob as %d messages, want %d to %d",
					i+1, window.Round(time.Millisecond), tt.tick, got, lo, hi)
			}
			t.Logf("%d publishes over %v: %d messages", i+1, window.Round(time.Millisecond), got)
		})
	}
}
