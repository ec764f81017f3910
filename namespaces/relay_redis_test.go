package namespaces

import (
	"crypto/rand"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/adapters"
)

// relayNode starts a relay node on a Redis backend of package adapters (the classic adapter, presence
// on Redis, the relay state in the backend's Redis), on the machine's Redis under prefix.
func relayNode(t *testing.T, prefix string) *relayEnv {
	t.Helper()
	b, err := adapters.New(adapters.Config{Name: "redis", RedisURL: "redis://127.0.0.1:6379/0", Prefix: prefix, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("redis backend: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() }) // after the server's cleanup, registered later
	return startRelay(t, relayEnvOptions{
		manual:   true,
		adapter:  b.Adapter(),
		presence: b.Presence("relay"),
		state:    NewRedisRelayState(b.Redis(), prefix+"-relay", 0),
	})
}

// keyedFrom lists the data of the relay:message events with key from user in log.
func keyedFrom(log []rawEvent, user, key string) []any {
	var out []any
	for _, raw := range eventsOf(log, RelayMessageEvent) {
		var m RelayMessage
		if json.Unmarshal(raw, &m) == nil && m.User.ID == user && m.Key == key {
			out = append(out, m.Data)
		}
	}
	return out
}

// Two nodes on Redis (the adapters package's redis backend) see the same members, state and messages.
func TestRelayTwoNodesOnRedis(t *testing.T) {
	prefix := "sbt-relay-" + rand.Text()[:8]
	n1, n2 := relayNode(t, prefix), relayNode(t, prefix)
	a, b := joinAcross(t, n1, n2)

	t.Run("keyed values cross once per tick", func(t *testing.T) {
		for i := range 49 {
			emitPublish(a, "r", "move", i, "pos")
		}
		publish(t, a, "r", "move", 49, "pos")
		n1.relay.step()
		publish(t, a, "r", "mark", "end", "end") // the next tick's batch follows the first
		n1.relay.step()
		b.waitFor("the next tick's value", func(log []rawEvent) bool { return len(keyedFrom(log, "alice", "end")) == 1 })
		if got := keyedFrom(b.received(), "alice", "pos"); !reflect.DeepEqual(got, []any{49.0}) {
			t.Fatalf("bob got %v, want [49]", got)
		}
		publish(t, b, "r", "move", "b1", "pos")
		n2.relay.step()
		a.waitFor("bob's value", func(log []rawEvent) bool { return len(keyedFrom(log, "bob", "pos")) == 1 })
	})

	t.Run("unkeyed in order", func(t *testing.T) { unkeyedInOrder(t, a, b) })

	c := n2.dial("carol")
	t.Run("a late joiner on the other node gets the state", func(t *testing.T) {
		got := join(t, c, "r")
		want := map[string]map[string]any{"alice": {"pos": 49.0, "end": "end"}, "bob": {"pos": "b1"}}
		if !reflect.DeepEqual(got.State, want) {
			t.Fatalf("state %v, want %v", got.State, want)
		}
	})

	t.Run("a user gone on one node is gone on both", func(t *testing.T) {
		a.close()
		for _, cl := range []*rawClient{b, c} {
			cl.waitFor("alice left", func(log []rawEvent) bool { return len(eventsOf(log, RelayUserLeftEvent)) == 1 })
		}
		d := n1.dial("dave")
		got := join(t, d, "r")
		if _, ok := got.State["alice"]; ok || got.State["bob"]["pos"] != "b1" {
			t.Fatalf("state after alice left: %v", got.State)
		}
		want := []User{{ID: "bob", Name: "bob"}, {ID: "carol", Name: "carol"}, {ID: "dave", Name: "dave"}}
		if !reflect.DeepEqual(got.Members, want) {
			t.Fatalf("members after alice left: %+v", got.Members)
		}
	})
}
