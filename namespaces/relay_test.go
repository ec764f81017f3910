package namespaces

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// countingObserver is a RelayObserver that counts.
type countingObserver struct {
	published, publishedKeyed    atomic.Int64
	delivered                    atomic.Int64
	coalescedTick, coalescedSlow atomic.Int64
}

func (o *countingObserver) RelayPublished(keyed bool) {
	o.published.Add(1)
	if keyed {
		o.publishedKeyed.Add(1)
	}
}
func (o *countingObserver) RelayDelivered(n int) { o.delivered.Add(int64(n)) }
func (o *countingObserver) RelayCoalesced(stage RelayStage, n int) {
	if stage == RelayStageTick {
		o.coalescedTick.Add(int64(n))
	} else {
		o.coalescedSlow.Add(int64(n))
	}
}

func join(t *testing.T, c *rawClient, room string) RelayJoinReply {
	t.Helper()
	var r RelayJoinReply
	if err := json.Unmarshal(mustData(t, c.call(RelayJoinEvent, map[string]any{"room": room})), &r); err != nil {
		t.Fatal(err)
	}
	joinEnded(t, c, room)
	return r
}

// joinEnded waits until c's relay:join of room let deliveries through to the socket. The answer
// is written before that: a test waits for both, so that its next tick treats c as any member.
func joinEnded(t *testing.T, c *rawClient, room string) {
	t.Helper()
	s := c.env.socket(c)
	waitUntil(t, "the join to end", func() bool {
		held := false
		c.env.relay.ifRoom(room, func(rm *relayRoom) { _, held = rm.joining[s] })
		return !held
	})
}

func publish(t *testing.T, c *rawClient, room, event string, data any, key ...string) {
	t.Helper()
	p := map[string]any{"room": room, "event": event, "data": data}
	if len(key) > 0 {
		p["key"] = key[0]
	}
	mustData(t, c.call(RelayPublishEvent, p))
}

func emitPublish(c *rawClient, room, event string, data any, key ...string) {
	p := map[string]any{"room": room, "event": event, "data": data}
	if len(key) > 0 {
		p["key"] = key[0]
	}
	c.emit(RelayPublishEvent, p)
}

func TestRelayRequests(t *testing.T) {
	env := startRelay(t, relayEnvOptions{manual: true})
	a := env.dial("alice")
	b := env.dial("bob")

	got := join(t, a, "game")
	want := RelayJoinReply{Room: "game", Members: []User{{ID: "alice", Name: "alice"}}, State: map[string]map[string]any{}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("join = %+v, want %+v", got, want)
	}
	if raw := string(a.call(RelayJoinEvent, map[string]any{"room": "game"})); !strings.HasPrefix(raw, `{"data":{"room":"game","members":[`) || !strings.Contains(raw, `"state":{}`) {
		t.Fatalf("join again = %s", raw)
	}
	join(t, b, "game")

	long := strings.Repeat("x", MaxRelayData-2) // a JSON string of exactly 16 KiB
	cases := []struct {
		name  string
		event string
		arg   any
		code  string
		data  string // the ack's data, when it succeeds
	}{
		{"join: not an object", RelayJoinEvent, "game", CodeBadRequest, ""},
		{"join: no room", RelayJoinEvent, map[string]any{}, CodeBadRequest, ""},
		{"join: bad room", RelayJoinEvent, map[string]any{"room": "a b"}, CodeBadRequest, ""},
		{"join: another user's room", RelayJoinEvent, map[string]any{"room": "user:bob"}, CodeForbidden, ""},
		{"leave: bad room", RelayLeaveEvent, map[string]any{"room": ""}, CodeBadRequest, ""},
		{"leave: own user room", RelayLeaveEvent, map[string]any{"room": "user:alice"}, CodeForbidden, ""},
		{"leave: a room not joined", RelayLeaveEvent, map[string]any{"room": "other"}, "", `{"room":"other"}`},
		{"publish: not a member", RelayPublishEvent, map[string]any{"room": "other", "event": "e", "data": 1}, CodeForbidden, ""},
		{"publish: own user room, not joined", RelayPublishEvent, map[string]any{"room": "user:alice", "event": "e", "data": 1}, CodeForbidden, ""},
		{"publish: bad room", RelayPublishEvent, map[string]any{"room": "a/b", "event": "e", "data": 1}, CodeBadRequest, ""},
		{"publish: no event", RelayPublishEvent, map[string]any{"room": "game", "data": 1}, CodeBadRequest, ""},
		{"publish: empty event", RelayPublishEvent, map[string]any{"room": "game", "event": "", "data": 1}, CodeBadRequest, ""},
		{"publish: event of 65", RelayPublishEvent, map[string]any{"room": "game", "event": strings.Repeat("e", 65), "data": 1}, CodeBadRequest, ""},
		{"publish: event with a space", RelayPublishEvent, map[string]any{"room": "game", "event": "a b", "data": 1}, CodeBadRequest, ""},
		{"publish: event not a string", RelayPublishEvent, map[string]any{"room": "game", "event": 5, "data": 1}, CodeBadRequest, ""},
		{"publish: no data", RelayPublishEvent, map[string]any{"room": "game", "event": "e"}, CodeBadRequest, ""},
		{"publish: data over 16 KiB", RelayPublishEvent, map[string]any{"room": "game", "event": "e", "data": long + "x"}, CodeBadRequest, ""},
		{"publish: empty key", RelayPublishEvent, map[string]any{"room": "game", "event": "e", "data": 1, "key": ""}, CodeBadRequest, ""},
		{"publish: key of 65", RelayPublishEvent, map[string]any{"room": "game", "event": "e", "data": 1, "key": strings.Repeat("é", 65)}, CodeBadRequest, ""},
		{"publish: key not a string", RelayPublishEvent, map[string]any{"room": "game", "event": "e", "data": 1, "key": 7}, CodeBadRequest, ""},
		{"publish: unkeyed", RelayPublishEvent, map[string]any{"room": "game", "event": "shot", "data": map[string]any{"x": 1}}, "", `{}`},
		{"publish: data null", RelayPublishEvent, map[string]any{"room": "game", "event": "e", "data": nil}, "", `{}`},
		{"publish: data of exactly 16 KiB", RelayPublishEvent, map[string]any{"room": "game", "event": "e", "data": long}, "", `{}`},
		{"publish: event of 64, every character", RelayPublishEvent, map[string]any{"room": "game", "event": "AZaz09_-.:@" + strings.Repeat("e", 53), "data": 1}, "", `{}`},
		{"publish: key of 64 code points", RelayPublishEvent, map[string]any{"room": "game", "event": "e", "data": 1, "key": strings.Repeat("é", 64)}, "", `{}`},
		{"publish: keyed", RelayPublishEvent, map[string]any{"room": "game", "event": "move", "data": []any{1, 2}, "key": "pos"}, "", `{}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ack := a.call(tc.event, tc.arg)
			if code := ackCode(t, ack); code != tc.code {
				t.Fatalf("ack %s, want code %q", ack, tc.code)
			}
			if tc.code == "" && string(mustData(t, ack)) != tc.data {
				t.Fatalf("ack %s, want data %s", ack, tc.data)
			}
		})
	}

	t.Run("data measured as compact JSON", func(t *testing.T) {
		// 16 KiB of data sent with spaces around it is within the bound.
		raw := `42/relay,99["relay:publish",{"room":"game","event":"e","data":   "` + long + `"   }]`
		a.write(raw)
		a.waitFor("the ack of a spaced publish", func(log []rawEvent) bool {
			for _, ev := range log {
				if ev.ack == 99 {
					return string(ev.arg) == `{"data":{}}`
				}
			}
			return false
		})
	})

	t.Run("100 keys per user and room", func(t *testing.T) {
		// "pos" and 64×é are held already.
		for i := range MaxRelayKeys - 2 {
			publish(t, a, "game", "e", i, fmt.Sprint("k", i))
		}
		ack := a.call(RelayPublishEvent, map[string]any{"room": "game", "event": "e", "data": 1, "key": "one-too-many"})
		if code := ackCode(t, ack); code != CodeBadRequest {
			t.Fatalf("101st key: %s", ack)
		}
		publish(t, a, "game", "e", "again", "k0")     // a held key still takes values
		publish(t, b, "game", "e", 1, "one-too-many") // another user has keys of its own
		join(t, a, "lobby")
		publish(t, a, "lobby", "e", 1, "one-too-many") // and so has another room
	})

	t.Run("relay:message shapes", func(t *testing.T) {
		env.relay.step()
		b.sync(a, "game")
		var unkeyed, keyed *RelayMessage
		for _, m := range b.messages(0) {
			switch {
			case m.Event == "shot":
				unkeyed = &m
			case m.Key == "pos":
				keyed = &m
			}
		}
		if unkeyed == nil || keyed == nil {
			t.Fatalf("bob got %+v", b.messages(0))
		}
		wantU := RelayMessage{Room: "game", User: User{ID: "alice", Name: "alice"}, Event: "shot", Data: map[string]any{"x": 1.0}}
		wantK := RelayMessage{Room: "game", User: User{ID: "alice", Name: "alice"}, Event: "move", Data: []any{1.0, 2.0}, Key: "pos"}
		if !reflect.DeepEqual(*unkeyed, wantU) || !reflect.DeepEqual(*keyed, wantK) {
			t.Fatalf("messages %+v and %+v, want %+v and %+v", *unkeyed, *keyed, wantU, wantK)
		}
		for _, raw := range b.events(RelayMessageEvent, 0) {
			if strings.Contains(string(raw), `"shot"`) && strings.Contains(string(raw), `"key"`) {
				t.Fatalf("an unkeyed message carries a key: %s", raw)
			}
		}
		for _, m := range a.messages(0) {
			if m.User.ID == "alice" {
				t.Fatalf("the publisher got its own message: %+v", m)
			}
		}
	})

	t.Run("leave, then publishing is forbidden", func(t *testing.T) {
		if got := string(mustData(t, a.call(RelayLeaveEvent, map[string]any{"room": "game"}))); got != `{"room":"game"}` {
			t.Fatalf("leave = %s", got)
		}
		if code := ackCode(t, a.call(RelayPublishEvent, map[string]any{"room": "game", "event": "e", "data": 1})); code != CodeForbidden {
			t.Fatalf("publish after leave: %q", code)
		}
	})

	t.Run("a request without ack is carried out", func(t *testing.T) {
		before := len(b.received())
		a.emit(RelayJoinEvent, map[string]any{"room": "game"})
		b.waitFor("alice's user-joined", func(log []rawEvent) bool {
			for _, ev := range log[before:] {
				if ev.name == RelayUserJoinedEvent {
					return true
				}
			}
			return false
		})
	})
}

func TestRelayPresence(t *testing.T) {
	env := startRelay(t, relayEnvOptions{manual: true})
	a1 := env.dial("alice")
	b := env.dial("bob")
	join(t, a1, "r")
	got := join(t, b, "r")
	if want := []User{{ID: "alice", Name: "alice"}, {ID: "bob", Name: "bob"}}; !reflect.DeepEqual(got.Members, want) {
		t.Fatalf("members %+v, want %+v", got.Members, want)
	}
	a1.waitFor("bob joined", func(log []rawEvent) bool { return len(eventsOf(log, RelayUserJoinedEvent)) == 1 })
	if ev := eventsOf(a1.received(), RelayUserJoinedEvent)[0]; string(ev) != `{"room":"r","user":{"id":"bob","name":"bob"}}` {
		t.Fatalf("user-joined %s", ev)
	}

	a2 := env.dial("alice") // a second tab: no news for the room
	if got := join(t, a2, "r"); len(got.Members) != 2 {
		t.Fatalf("members %+v", got.Members)
	}
	if got := string(mustData(t, a1.call(RelayLeaveEvent, map[string]any{"room": "r"}))); got != `{"room":"r"}` {
		t.Fatal(got)
	}
	b.sync(a2, "r")
	if n := len(eventsOf(b.received(), RelayUserJoinedEvent)) + len(eventsOf(b.received(), RelayUserLeftEvent)); n != 0 {
		t.Fatalf("bob heard %d presence events for alice's second tab", n)
	}
	a2.close()
	b.waitFor("alice left", func(log []rawEvent) bool { return len(eventsOf(log, RelayUserLeftEvent)) == 1 })
	if ev := eventsOf(b.received(), RelayUserLeftEvent)[0]; string(ev) != `{"room":"r","user":{"id":"alice","name":"alice"}}` {
		t.Fatalf("user-left %s", ev)
	}
	c := env.dial("carol")
	if got := join(t, c, "r"); !reflect.DeepEqual(got.Members, []User{{ID: "bob", Name: "bob"}, {ID: "carol", Name: "carol"}}) {
		t.Fatalf("members after alice left: %+v", got.Members)
	}
}

// Many members joining one room at once each learn of every other exactly once: from their
// relay:join's member list or from a relay:user-joined after it, never from both, never from
// neither (presence is that of "/chat", SPEC §9).
func TestRelayPresenceExactlyOnce(t *testing.T) {
	env := startRelay(t, relayEnvOptions{manual: true})
	const members = 60
	all := make([]*rawClient, members)
	for i := range all {
		all[i] = env.dial(fmt.Sprintf("m%02d", i))
	}
	ids := make([]int, members)
	for i, c := range all { // sent at once: the server takes them concurrently
		ids[i] = c.send(RelayJoinEvent, map[string]any{"room": "crowd"})
	}
	replies := make([]RelayJoinReply, members)
	for i, c := range all {
		if err := json.Unmarshal(mustData(t, c.ack("the join answer", ids[i])), &replies[i]); err != nil {
			t.Fatal(err)
		}
	}
	// Every announcement was written before the last answer; one more event marks their end.
	if err := env.nsp.To("crowd").Emit("end"); err != nil {
		t.Fatal(err)
	}
	for i, c := range all {
		c.waitFor("the end", func(log []rawEvent) bool { return len(eventsOf(log, "end")) == 1 })
		seen := map[string]int{}
		for _, u := range replies[i].Members {
			seen[u.ID]++
		}
		for _, raw := range eventsOf(c.received(), RelayUserJoinedEvent) {
			var ev PresenceEvent
			if err := json.Unmarshal(raw, &ev); err != nil {
				t.Fatal(err)
			}
			seen[ev.User.ID]++
		}
		for _, o := range all { // a member is in its own list too, and never announced to itself
			if seen[o.user] != 1 {
				t.Errorf("%s heard of %s %d times", c.user, o.user, seen[o.user])
			}
		}
	}
}

func eventsOf(log []rawEvent, name string) []json.RawMessage {
	var out []json.RawMessage
	for _, ev := range log {
		if ev.name == name {
			out = append(out, ev.arg)
		}
	}
	return out
}

// Unkeyed messages reach every other socket of the room (the sender's other tab too), each
// sender's in the order sent, none lost or coalesced.
func TestRelayUnkeyedOrder(t *testing.T) {
	env := startRelay(t, relayEnvOptions{manual: true})
	a1, a2, b := env.dial("alice"), env.dial("alice"), env.dial("bob")
	for _, c := range []*rawClient{a1, a2, b} {
		join(t, c, "r")
	}
	const n = 300
	var wg sync.WaitGroup
	for _, c := range []*rawClient{a1, b} {
		wg.Go(func() {
			for i := range n - 1 {
				emitPublish(c, "r", "step", i)
			}
		})
	}
	wg.Wait()
	publish(t, a1, "r", "step", n-1)
	publish(t, b, "r", "step", n-1)

	check := func(c *rawClient, from string, want int) {
		t.Helper()
		c.waitFor(fmt.Sprintf("%d messages from %s", want, from), func(log []rawEvent) bool {
			got := 0
			for _, raw := range eventsOf(log, RelayMessageEvent) {
				if strings.Contains(string(raw), `"id":"`+from+`"`) {
					got++
				}
			}
			return got >= want
		})
	}
	check(a2, "alice", n)
	check(a2, "bob", n)
	check(b, "alice", n)
	check(a1, "bob", n)
	b.sync(a2, "r")
	a1.sync(a2, "r")

	order := func(c *rawClient) map[string][]float64 {
		seqs := map[string][]float64{}
		for _, m := range c.messages(0) {
			if m.Event == "step" {
				seqs[m.User.ID] = append(seqs[m.User.ID], m.Data.(float64))
			}
		}
		return seqs
	}
	for name, c := range map[string]*rawClient{"alice's first tab": a1, "alice's second tab": a2, "bob": b} {
		for from, seq := range order(c) {
			if len(seq) != n {
				t.Errorf("%s got %d messages from %s, want %d", name, len(seq), from, n)
			}
			for i, v := range seq {
				if v != float64(i) {
					t.Errorf("%s: message %d from %s is %v: out of order", name, i, from, v)
					break
				}
			}
		}
	}
	if got := len(order(a1)["alice"]); got != 0 {
		t.Errorf("alice's first tab got %d of its own messages", got)
	}
	if got := len(order(b)["bob"]); got != 0 {
		t.Errorf("bob got %d of his own messages", got)
	}
}
