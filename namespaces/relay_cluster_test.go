package namespaces

import (
	"context"
	"crypto/rand"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/socketio"
)

// relayBus links the "/relay" namespaces of in-process nodes as a cluster adapter does:
// broadcasts and server-side emits reach the other nodes, synchronously and in order. (The
// Redis adapters of package adapters are used by the two-node test in relay_redis_test.go.)
type relayBus struct {
	mu    sync.Mutex
	nodes []*socketio.Namespace
}

func (b *relayBus) adapter(nsp *socketio.Namespace) (socketio.Adapter, error) {
	b.mu.Lock()
	b.nodes = append(b.nodes, nsp)
	b.mu.Unlock()
	return &busAdapter{LocalAdapter: socketio.NewLocalAdapter(nsp, socketio.LocalOptions{}), bus: b, nsp: nsp}, nil
}

type busAdapter struct {
	*socketio.LocalAdapter
	bus *relayBus
	nsp *socketio.Namespace
}

func (a *busAdapter) others() []*socketio.Namespace {
	a.bus.mu.Lock()
	defer a.bus.mu.Unlock()
	var out []*socketio.Namespace
	for _, n := range a.bus.nodes {
		if n != a.nsp && n.Name() == a.nsp.Name() {
			out = append(out, n)
		}
	}
	return out
}

func (a *busAdapter) Broadcast(p *socketio.Packet, opts socketio.BroadcastOptions) error {
	a.BroadcastLocal(p, opts)
	for _, n := range a.others() {
		n.Local().BroadcastLocal(p, opts)
	}
	return nil
}

func (a *busAdapter) ServerSideEmit(_ context.Context, args []any) error {
	for _, n := range a.others() {
		n.ServerSideEvent(args, nil)
	}
	return nil
}

// joinAcross has alice on n1 and bob on n2 join room "r": bob's join lists them both, and alice
// hears of bob from the other node.
func joinAcross(t *testing.T, n1, n2 *relayEnv) (a, b *rawClient) {
	t.Helper()
	a, b = n1.dial("alice"), n2.dial("bob")
	join(t, a, "r")
	got := join(t, b, "r")
	if want := []User{{ID: "alice", Name: "alice"}, {ID: "bob", Name: "bob"}}; !reflect.DeepEqual(got.Members, want) {
		t.Fatalf("members on node 2: %+v", got.Members)
	}
	a.waitFor("bob joined, on the other node", func(log []rawEvent) bool { return len(eventsOf(log, RelayUserJoinedEvent)) == 1 })
	return a, b
}

// unkeyedInOrder has a send 20 unkeyed messages to room "r": b gets each once, in order.
func unkeyedInOrder(t *testing.T, a, b *rawClient) {
	t.Helper()
	from := len(b.received())
	for i := range 20 {
		emitPublish(a, "r", "step", i)
	}
	b.waitFor("20 messages", func(log []rawEvent) bool {
		n := 0
		for _, raw := range eventsOf(log[from:], RelayMessageEvent) {
			if strings.Contains(string(raw), `"event":"step"`) {
				n++
			}
		}
		return n >= 20
	})
	b.sync(a, "r") // and nothing more behind them
	var seq []float64
	for _, m := range b.messages(from) {
		if m.Event == "step" {
			seq = append(seq, m.Data.(float64))
		}
	}
	if len(seq) != 20 {
		t.Fatalf("bob got %v", seq)
	}
	for i, v := range seq {
		if v != float64(i) {
			t.Fatalf("bob got %v: out of order", seq)
		}
	}
}

// Two nodes sharing presence, a Redis state and a bus see the same members, state and messages;
// keyed values are coalesced on the publishing node and delivered by the other; the key bound
// holds across them; a user leaving on one node is dropped on both.
func TestRelayTwoNodes(t *testing.T) {
	rdb := sharedRedis(t)
	other := redis.NewClient(rdb.Options())
	t.Cleanup(func() { _ = other.Close() })
	prefix := "test-" + rand.Text()
	bus := &relayBus{}
	presence := socketio.NewMemoryPresence()
	n1 := startRelay(t, relayEnvOptions{manual: true, adapter: bus.adapter, presence: presence, state: NewRedisRelayState(rdb, prefix, 0)})
	n2 := startRelay(t, relayEnvOptions{manual: true, adapter: bus.adapter, presence: presence, state: NewRedisRelayState(other, prefix, 0)})

	a, b := joinAcross(t, n1, n2)

	t.Run("keyed values cross once per tick", func(t *testing.T) {
		for i := range 49 {
			emitPublish(a, "r", "move", i, "pos")
		}
		publish(t, a, "r", "move", 49, "pos")
		n2.relay.step() // node 2 has nothing of its own to send
		n1.relay.step()
		n1.relay.step()
		b.sync(a, "r")
		var keyed []float64
		for _, m := range b.messages(0) {
			if m.Key == "pos" {
				keyed = append(keyed, m.Data.(float64))
			}
		}
		if !reflect.DeepEqual(keyed, []float64{49}) {
			t.Fatalf("bob got %v, want [49]", keyed)
		}
		publish(t, b, "r", "move", "b1", "pos")
		n2.relay.step()
		a.sync(b, "r")
		if m := a.messages(0); len(m) == 0 || m[len(m)-2].Data != "b1" {
			t.Fatalf("alice got %+v", m)
		}
	})

	t.Run("unkeyed in order", func(t *testing.T) { unkeyedInOrder(t, a, b) })

	c := n2.dial("carol")
	t.Run("a late joiner on the other node gets the state", func(t *testing.T) {
		got := join(t, c, "r")
		if want := map[string]map[string]any{"alice": {"pos": 49.0}, "bob": {"pos": "b1"}}; !reflect.DeepEqual(got.State, want) {
			t.Fatalf("state %v, want %v", got.State, want)
		}
	})

	a2 := n2.dial("alice")
	join(t, a2, "r")
	t.Run("100 keys per user across nodes", func(t *testing.T) {
		// alice holds pos; 59 more on node 1, 40 on node 2 make 100.
		for i := range 59 {
			publish(t, a, "r", "e", i, "n1-"+string(rune('A'+i)))
		}
		for i := range 40 {
			publish(t, a2, "r", "e", i, "n2-"+string(rune('A'+i)))
		}
		if code := ackCode(t, a2.call(RelayPublishEvent, map[string]any{"room": "r", "event": "e", "data": 1, "key": "one-more"})); code != CodeBadRequest {
			t.Fatalf("the 101st key on node 2: %q", code)
		}
		if code := ackCode(t, a.call(RelayPublishEvent, map[string]any{"room": "r", "event": "e", "data": 1, "key": "one-more"})); code != CodeBadRequest {
			t.Fatalf("the 101st key on node 1: %q", code)
		}
		n1.relay.step()
		n2.relay.step()
	})

	t.Run("a user gone on one node is gone on both", func(t *testing.T) {
		publish(t, a, "r", "move", 100, "pos") // waiting on node 1 when alice goes
		a.close()                              // not her last socket
		waitUntil(t, "alice's first tab to leave", func() bool { return n1.nsp.Socket(a.sid) == nil })
		a2.close()
		b.waitFor("alice left", func(log []rawEvent) bool { return len(eventsOf(log, RelayUserLeftEvent)) == 1 })
		if n := len(eventsOf(b.received(), RelayUserLeftEvent)); n != 1 {
			t.Fatalf("bob heard alice leave %d times", n)
		}
		if st := n2.relay.stateOf(t, "r"); len(st["alice"]) != 0 || st["bob"]["pos"] != `"b1"` {
			t.Fatalf("state after alice left: %v", st)
		}
		held := true
		n1.relay.ifRoom("r", func(rm *relayRoom) { held = rm.admitted["alice"] != nil || len(rm.outbox) > 0 })
		if held {
			t.Fatalf("node 1 still holds alice's keys or values")
		}
		n1.relay.step()
		b.sync(c, "r")
		for _, raw := range eventsOf(b.received(), RelayMessageEvent) {
			if strings.Contains(string(raw), `"data":100`) {
				t.Fatalf("alice's last value went out after she left: %s", raw)
			}
		}
	})
}
