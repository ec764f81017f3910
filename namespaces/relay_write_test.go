package namespaces

// How a tick's keyed values are written to the readers: encoded once per value for all of them,
// in volatile writes of bounded size.

import (
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/switchboard/switchboard/socketio"
)

// countEncodes makes the relay count the values it prepares for its readers.
func countEncodes(env *relayEnv) *atomic.Int64 {
	var n atomic.Int64
	env.relay.encode = func(event string, args ...any) *socketio.Encoded {
		n.Add(1)
		return env.nsp.Encode(event, args...)
	}
	return &n
}

// latestKeyed is the newest keyed data c received, by key.
func latestKeyed(c *rawClient) map[string]any {
	out := map[string]any{}
	for _, m := range c.messages(0) {
		if m.Key != "" {
			out[m.Key] = m.Data
		}
	}
	return out
}

// A tick's value is prepared once for every reader, websocket and long-polling alike, and kept
// so while it waits in a backlog (a poll not waiting when the tick ran): not once per socket.
func TestRelayEncodesOncePerValue(t *testing.T) {
	obs := &countingObserver{}
	env := startRelay(t, relayEnvOptions{manual: true, cfg: RelayConfig{Observer: obs}})
	encodes := countEncodes(env)
	a := env.dial("alice")
	readers := []*rawClient{env.dial("bob"), env.dial("carol"), env.dial("dave"), env.dialPolling("paula")}
	join(t, a, "r")
	for _, c := range readers {
		join(t, c, "r")
	}
	want := map[string]any{}
	for k := range 4 {
		publish(t, a, "r", "move", float64(k), fmt.Sprint("k", k))
		want[fmt.Sprint("k", k)] = float64(k)
	}
	waitUntil(t, "every reader to get the values", func() bool {
		env.relay.step()
		return obs.delivered.Load() == int64(4*len(readers))
	})
	for _, c := range readers {
		c.sync(a, "r")
		if got := latestKeyed(c); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s got %v, want %v", c.user, got, want)
		}
	}
	if n := encodes.Load(); n != 4 {
		t.Fatalf("4 values to %d readers were encoded %d times, want 4", len(readers), n)
	}
}

// A tick's values larger than one write go in several, each at most relayWriteChunk and a
// value: a long-polling reader takes one per poll, and no write makes the engine buffer more
// than its limit (which would drop the client) however much a tick holds.
func TestRelayWriteChunks(t *testing.T) {
	obs := &countingObserver{}
	env := startRelay(t, relayEnvOptions{manual: true, cfg: RelayConfig{Observer: obs}, maxWriteBuffer: 96 << 10})
	a := env.dial("alice")
	p := env.dialPolling("paula")
	w := env.dial("walt")
	for _, c := range []*rawClient{a, p, w} {
		join(t, c, "r")
	}
	const keys = 10
	pad := strings.Repeat("x", 15<<10) // 150 KiB a tick, more than the write buffer limit
	want := map[string]any{}
	for k := range keys {
		v := fmt.Sprintf("%d:%s", k, pad)
		publish(t, a, "r", "blob", v, fmt.Sprint("k", k))
		want[fmt.Sprint("k", k)] = v
	}
	ticks := 0
	waitUntil(t, "the values to reach both readers", func() bool {
		env.relay.step()
		ticks++
		return obs.delivered.Load() == 2*keys
	})
	if n := env.slow.Load(); n != 0 {
		t.Fatalf("the engine dropped %d clients as slow: a write exceeded its buffer", n)
	}
	if ticks < 3 {
		t.Fatalf("150 KiB went out in %d ticks: the polling reader took more than a chunk per poll", ticks)
	}
	for _, c := range []*rawClient{p, w} {
		c.sync(a, "r")
		if got := latestKeyed(c); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s got %d of the %d values", c.user, len(got), keys)
		}
	}
}
