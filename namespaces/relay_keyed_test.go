package namespaces

// Keyed relay messages: coalescing per tick, state, slow readers, polling, recovery.

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/socketio"
)

// 1,000 publishes of one key within a tick reach each member as one message, with the last
// value; the sender's other tab gets it, the sender does not.
func TestRelayKeyedCoalescing(t *testing.T) {
	obs := &countingObserver{}
	env := startRelay(t, relayEnvOptions{manual: true, cfg: RelayConfig{Observer: obs}})
	a1, a2, b, c := env.dial("alice"), env.dial("alice"), env.dial("bob"), env.dial("carol")
	for _, cl := range []*rawClient{a1, a2, b, c} {
		join(t, cl, "r")
	}
	for i := range 999 {
		emitPublish(a1, "r", "move", map[string]any{"x": i}, "pos")
	}
	publish(t, a1, "r", "move", map[string]any{"x": 999}, "pos")
	env.relay.step()
	env.relay.step() // nothing more to send
	for _, cl := range []*rawClient{a2, b, c} {
		cl.sync(a1, "r")
		var keyed []RelayMessage
		for _, m := range cl.messages(0) {
			if m.Key == "pos" {
				keyed = append(keyed, m)
			}
		}
		if len(keyed) != 1 || keyed[0].Data.(map[string]any)["x"] != 999.0 {
			t.Fatalf("%s got %+v, want one message with x=999", cl.user, keyed)
		}
	}
	if got := a1.messages(0); len(got) != 0 {
		t.Fatalf("the publisher got %+v", got)
	}
	if got := env.relay.stateOf(t, "r")["alice"]["pos"]; got != `{"x":999}` {
		t.Fatalf("stored %s", got)
	}
	if p, k, d, ct := obs.published.Load(), obs.publishedKeyed.Load(), obs.delivered.Load(), obs.coalescedTick.Load(); k != 1000 || p != 1000+3 || d != 3 || ct != 999 {
		t.Fatalf("observer: published %d (keyed %d), delivered %d, coalesced %d", p, k, d, ct)
	}
}

// stateOf reads the stored state of room as JSON text per user and key.
func (r *Relay) stateOf(t *testing.T, room string) map[string]map[string]string {
	t.Helper()
	values, err := r.state.State(t.Context(), room)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	for _, v := range values {
		if out[v.User] == nil {
			out[v.User] = map[string]string{}
		}
		out[v.User][v.Key] = string(v.Data)
	}
	return out
}

// Each tick sends the newest value of a burst: the last one always goes out, at most one per
// (user, key) per tick, and a tick with nothing new sends nothing.
func TestRelayBurstLast(t *testing.T) {
	env := startRelay(t, relayEnvOptions{manual: true})
	a, b := env.dial("alice"), env.dial("bob")
	join(t, a, "r")
	join(t, b, "r")
	keyed := func() []float64 {
		var out []float64
		for _, m := range b.messages(0) {
			if m.Key != "" {
				out = append(out, m.Data.(float64))
			}
		}
		return out
	}
	bursts := [][]int{{1, 2, 3}, {4, 5}, {}, {6}}
	var want []float64
	for _, burst := range bursts {
		for _, v := range burst {
			publish(t, a, "r", "v", v, "k")
		}
		env.relay.step()
		b.sync(a, "r")
		if len(burst) > 0 {
			want = append(want, float64(burst[len(burst)-1]))
		}
		if got := keyed(); !reflect.DeepEqual(got, want) {
			t.Fatalf("after burst %v bob got %v, want %v", burst, got, want)
		}
	}
}

// With the real tick, the last value of a burst arrives without anyone asking, and once the
// room is quiet the relay keeps nothing: no room, no goroutine.
func TestRelayTickLoop(t *testing.T) {
	env := startRelay(t, relayEnvOptions{cfg: RelayConfig{Tick: 10 * time.Millisecond}})
	a, b := env.dial("alice"), env.dial("bob")
	join(t, a, "r")
	join(t, b, "r")
	for i := range 200 {
		emitPublish(a, "r", "v", i, "k")
	}
	publish(t, a, "r", "v", 200, "k")
	b.waitFor("the last value", func(log []rawEvent) bool {
		ev := eventsOf(log, RelayMessageEvent)
		return len(ev) > 0 && strings.Contains(string(ev[len(ev)-1]), `"data":200`)
	})
	if n := len(b.messages(0)); n > 100 {
		t.Fatalf("bob got %d messages for one burst", n)
	}
	waitUntil(t, "the relay to go idle", func() bool {
		r := env.relay
		r.mu.Lock()
		defer r.mu.Unlock()
		return !r.running && len(r.rooms) == 0
	})
	// Activity starts it again; Close ends it.
	publish(t, a, "r", "v", 201, "k")
	b.waitFor("a value after idling", func(log []rawEvent) bool {
		ev := eventsOf(log, RelayMessageEvent)
		return len(ev) > 0 && strings.Contains(string(ev[len(ev)-1]), `"data":201`)
	})
	r := env.relay
	r.mu.Lock()
	done := r.done
	r.mu.Unlock()
	r.Close()
	select {
	case <-done:
	default:
		t.Fatalf("Close returned with the loop running")
	}
	publish(t, a, "r", "v", 202, "k") // after Close: taken, never ticked, no loop started
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done != done {
		t.Fatalf("a loop started after Close")
	}
}

// waitUntil polls cond until it holds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// A late joiner gets the room's state; values not yet ticked reach it right after.
func TestRelayLateJoiner(t *testing.T) {
	env := startRelay(t, relayEnvOptions{manual: true})
	a, b, c := env.dial("alice"), env.dial("bob"), env.dial("carol")
	join(t, a, "r")
	publish(t, a, "r", "move", 1, "pos") // admitted: stored at once
	publish(t, a, "r", "move", 2, "pos") // stored at the tick
	publish(t, a, "r", "look", "north", "dir")
	got := join(t, b, "r")
	if want := map[string]map[string]any{"alice": {"pos": 1.0, "dir": "north"}}; !reflect.DeepEqual(got.State, want) {
		t.Fatalf("state before the tick %v, want %v", got.State, want)
	}
	env.relay.step()
	b.sync(a, "r")
	if latest, want := latestKeyed(b), map[string]any{"pos": 2.0, "dir": "north"}; !reflect.DeepEqual(latest, want) {
		t.Fatalf("bob got %v after the tick, want %v", latest, want)
	}
	got = join(t, c, "r")
	if want := map[string]map[string]any{"alice": {"pos": 2.0, "dir": "north"}}; !reflect.DeepEqual(got.State, want) {
		t.Fatalf("state after the tick %v, want %v", got.State, want)
	}
}

// blockingState holds relay:join's state read until released.
type blockingState struct {
	RelayState
	reading chan struct{}
	release chan struct{}
	armed   atomic.Bool
}

func (s *blockingState) State(ctx context.Context, room string) ([]RelayValue, error) {
	if s.armed.CompareAndSwap(true, false) {
		s.reading <- struct{}{}
		<-s.release
	}
	return s.RelayState.State(ctx, room)
}

// joinHeld sends c's relay:join of room, the next to read the state, and returns its ack id once
// the read waits for release.
func (s *blockingState) joinHeld(c *rawClient, room string) int {
	s.armed.Store(true)
	id := c.send(RelayJoinEvent, map[string]any{"room": room})
	<-s.reading
	return id
}

// No value reaches a joining socket before its relay:join answer: one delivered while the
// state is read waits, and follows the answer.
func TestRelayJoinAnswersFirst(t *testing.T) {
	st := &blockingState{RelayState: NewMemoryRelayState(), reading: make(chan struct{}), release: make(chan struct{})}
	env := startRelay(t, relayEnvOptions{manual: true, state: st})
	a, b := env.dial("alice"), env.dial("bob")
	join(t, a, "r")
	publish(t, a, "r", "move", 1, "pos")
	env.relay.step()

	id := st.joinHeld(b, "r") // bob is in the room, his join reading the state
	publish(t, a, "r", "move", 2, "pos")
	env.relay.step() // the value waits for bob's answer
	close(st.release)
	b.ack("bob's join answer", id)
	joinEnded(t, b, "r")
	env.relay.step() // the held value goes out behind the answer
	b.sync(a, "r")
	log := b.received()
	ackAt, msgAt := -1, -1
	for i, ev := range log {
		if ev.ack == id && ackAt < 0 {
			ackAt = i
		}
		if ev.name == RelayMessageEvent && strings.Contains(string(ev.arg), `"key":"pos"`) && msgAt < 0 {
			msgAt = i
		}
	}
	if msgAt < 0 || ackAt < 0 || msgAt < ackAt {
		t.Fatalf("join answer at %d, value at %d: %+v", ackAt, msgAt, log)
	}
	for _, m := range b.messages(0) {
		if m.Key == "pos" && m.Data != 2.0 {
			t.Fatalf("bob got %+v", m)
		}
	}
}

// A user's state is gone once relay:user-left went out: the last tab leaving drops it, another
// tab leaving does not.
func TestRelayUserLeftDropsState(t *testing.T) {
	env := startRelay(t, relayEnvOptions{manual: true})
	a1, a2, b := env.dial("alice"), env.dial("alice"), env.dial("bob")
	for _, c := range []*rawClient{a1, a2, b} {
		join(t, c, "r")
	}
	publish(t, a1, "r", "move", 1, "pos")
	publish(t, a2, "r", "move", 2, "pos") // the newest value is the user's, whichever tab sent it
	publish(t, a1, "r", "look", "n", "dir")
	env.relay.step()
	mustData(t, a1.call(RelayLeaveEvent, map[string]any{"room": "r"}))
	b.sync(a2, "r")
	if n := len(eventsOf(b.received(), RelayUserLeftEvent)); n != 0 {
		t.Fatalf("bob heard alice leave while her second tab is there")
	}
	if got := env.relay.stateOf(t, "r")["alice"]; got["pos"] != "2" || got["dir"] != `"n"` {
		t.Fatalf("alice's state with one tab left: %v", got)
	}
	publish(t, a2, "r", "move", 3, "pos") // unsent when she goes: dropped with her state
	a2.close()
	b.waitFor("alice left", func(log []rawEvent) bool { return len(eventsOf(log, RelayUserLeftEvent)) == 1 })
	if got := env.relay.stateOf(t, "r"); len(got["alice"]) != 0 {
		t.Fatalf("alice's state after she left: %v", got)
	}
	c := env.dial("carol")
	if got := join(t, c, "r"); len(got.State["alice"]) != 0 {
		t.Fatalf("carol's join state %v", got.State)
	}
	env.relay.step()
	b.sync(c, "r")
	for _, m := range b.messages(0) {
		if m.Key == "pos" && m.Data == 3.0 {
			t.Fatalf("alice's value was delivered after she left")
		}
	}
	// The last member leaving empties the room's state; the room goes from this node too.
	publish(t, b, "r", "move", 1, "pos")
	mustData(t, b.call(RelayLeaveEvent, map[string]any{"room": "r"}))
	mustData(t, c.call(RelayLeaveEvent, map[string]any{"room": "r"}))
	if n := env.relay.state.(*MemoryRelayState).roomCount(); n != 0 {
		t.Fatalf("%d rooms with state after everyone left", n)
	}
	for range relayIdleTicks + 1 {
		env.relay.step()
	}
	if env.relay.step() {
		t.Fatalf("the relay keeps rooms after everyone left")
	}
}

// A member that stops reading its socket for 5 s while others publish keyed values at a high
// rate: the server keeps at most one value per (user, key) for it and never queues a backlog in
// the engine (MaxWriteBuffer would drop it), a fast member goes on receiving, and when the slow
// one reads again it gets the latest values, not the past.
func TestRelaySlowReader(t *testing.T) {
	obs := &countingObserver{}
	env := startRelay(t, relayEnvOptions{
		cfg:            RelayConfig{Tick: 20 * time.Millisecond, Observer: obs},
		sndbuf:         8 << 10,
		maxWriteBuffer: 64 << 10,
	})
	const keysPerPublisher = 5
	pubs := []*rawClient{env.dial("p1"), env.dial("p2")}
	slow := env.dial("slow", dialOptions{rcvbuf: 8 << 10})
	fast := env.dial("fast")
	for _, c := range append([]*rawClient{slow, fast}, pubs...) {
		join(t, c, "r")
	}
	slowSock := env.socket(slow)
	pad := strings.Repeat("p", 1000)

	slow.pause()
	stalled := time.Now()
	seq := 0
	maxBacklog, sawBacklog := 0, false
	pace := time.NewTicker(4 * time.Millisecond)
	for time.Since(stalled) < 5*time.Second {
		<-pace.C
		seq++
		for i, p := range pubs {
			emitPublish(p, "r", "state", map[string]any{"seq": seq, "pad": pad}, fmt.Sprint("k", (seq+i)%keysPerPublisher))
		}
		if n := env.relay.backlogLen("r", slowSock); n > 0 {
			sawBacklog = true
			maxBacklog = max(maxBacklog, n)
		}
	}
	pace.Stop()
	// The last value of each key, once every publish was taken.
	want := map[string]float64{}
	for i, p := range pubs {
		for k := range keysPerPublisher {
			v := 1_000_000 + i*10 + k
			publish(t, p, "r", "state", map[string]any{"seq": v, "pad": pad}, fmt.Sprint("k", k))
			want[p.user+"/"+fmt.Sprint("k", k)] = float64(v)
		}
	}
	waitUntil(t, "the final values in the slow reader's backlog", func() bool {
		return reflect.DeepEqual(env.relay.backlogSeqs("r", slowSock), want)
	})

	if !sawBacklog {
		t.Fatalf("the slow reader never had a backlog: its transport always took the values")
	}
	if maxBacklog > len(want) {
		t.Fatalf("the slow reader's backlog reached %d values, more than the %d (user, key)s", maxBacklog, len(want))
	}
	if n := env.slow.Load(); n != 0 {
		t.Fatalf("the engine dropped %d clients as slow: values were queued", n)
	}
	if n := len(fast.messages(0)); n < 100 {
		t.Fatalf("the fast reader got only %d messages in 5 s", n)
	}

	before := len(slow.received())
	slow.resume()
	latest := func(log []rawEvent) map[string]float64 {
		got := map[string]float64{}
		for _, raw := range eventsOf(log, RelayMessageEvent) {
			var m RelayMessage
			if json.Unmarshal(raw, &m) == nil && m.Key != "" {
				got[m.User.ID+"/"+m.Key] = m.Data.(map[string]any)["seq"].(float64)
			}
		}
		return got
	}
	for _, c := range []*rawClient{slow, fast} {
		c.waitFor("the latest values", func(log []rawEvent) bool { return reflect.DeepEqual(latest(log), want) })
	}
	// What the slow reader reads after its stall is what the kernel buffers held (8 KiB each
	// way, doubled by Linux: some 30 frames of 1 KiB) and its backlog, not 5 s of values
	// (5 s × 50 ticks × 10 keys).
	if after := len(slow.received()) - before; after > 150 {
		t.Fatalf("the slow reader read %d messages after its stall: a backlog was kept", after)
	}
	if obs.coalescedSlow.Load() == 0 {
		t.Fatalf("nothing was coalesced for the slow reader")
	}
	t.Logf("backlog peak %d; slow reader read %d messages after 5 s; fast reader %d; coalesced: %d at the tick, %d for the slow reader",
		maxBacklog, len(slow.received())-before, len(fast.messages(0)), obs.coalescedTick.Load(), obs.coalescedSlow.Load())
}

// backlogSeqs is the "seq" of each value waiting for s in room, by user/key.
func (r *Relay) backlogSeqs(room string, s *socketio.Socket) map[string]float64 {
	out := map[string]float64{}
	r.ifRoom(room, func(rm *relayRoom) {
		for k, e := range rm.slow[s] {
			var d struct{ Seq float64 }
			_ = json.Unmarshal(e.data, &d)
			out[k.user+"/"+k.key] = d.Seq
		}
	})
	return out
}

// backlogLen is how many values wait for s in room (for tests).
func (r *Relay) backlogLen(room string, s *socketio.Socket) int {
	n := 0
	r.ifRoom(room, func(rm *relayRoom) { n = len(rm.slow[s]) })
	return n
}

// A value waiting for a reader (here: a joining one) when its user leaves is not delivered: the
// reader hears the user leave, then nothing more of it.
func TestRelayDepartedValuesDropped(t *testing.T) {
	st := &blockingState{RelayState: NewMemoryRelayState(), reading: make(chan struct{}), release: make(chan struct{})}
	env := startRelay(t, relayEnvOptions{manual: true, state: st})
	a, b, c := env.dial("alice"), env.dial("bob"), env.dial("carol")
	join(t, a, "r")
	join(t, c, "r")
	id := st.joinHeld(b, "r")
	publish(t, a, "r", "move", 1, "pos")
	publish(t, c, "r", "move", 1, "pos")
	env.relay.step() // both values wait in bob's backlog
	if n := env.relay.backlogLen("r", env.socket(b)); n != 2 {
		t.Fatalf("bob's backlog holds %d values, want 2", n)
	}
	a.close()
	b.waitFor("alice left", func(log []rawEvent) bool { return len(eventsOf(log, RelayUserLeftEvent)) == 1 })
	close(st.release)
	b.ack("bob's join answer", id)
	joinEnded(t, b, "r")
	env.relay.step()
	b.sync(c, "r")
	var from []string
	for _, m := range b.messages(0) {
		if m.Key == "pos" {
			from = append(from, m.User.ID)
		}
	}
	if !reflect.DeepEqual(from, []string{"carol"}) {
		t.Fatalf("bob got keyed values from %v, want carol's only", from)
	}
}

// blockingUpdates holds every Update until released.
type blockingUpdates struct {
	RelayState
	updating chan struct{}
	release  chan struct{}
}

func (s *blockingUpdates) Update(ctx context.Context, u []RelayUpdate) ([]RelayMissing, error) {
	s.updating <- struct{}{}
	<-s.release
	return s.RelayState.Update(ctx, u)
}

// A tick stores its values before it delivers them: a member joining meanwhile reads them or
// receives them, never neither.
func TestRelayStoredBeforeDelivered(t *testing.T) {
	st := &blockingUpdates{RelayState: NewMemoryRelayState(), updating: make(chan struct{}), release: make(chan struct{})}
	env := startRelay(t, relayEnvOptions{manual: true, state: st})
	a, b := env.dial("alice"), env.dial("bob")
	join(t, a, "r")
	join(t, b, "r")
	publish(t, a, "r", "move", 1, "pos")
	publish(t, a, "r", "move", 2, "pos")
	stepped := make(chan struct{})
	go func() { env.relay.step(); close(stepped) }()
	<-st.updating
	b.sync(a, "r")
	for _, m := range b.messages(0) {
		if m.Key == "pos" {
			t.Fatalf("bob got %v before it was stored", m.Data)
		}
	}
	close(st.release)
	<-stepped
	b.sync(a, "r")
	if got := env.relay.stateOf(t, "r")["alice"]["pos"]; got != "2" {
		t.Fatalf("stored %s", got)
	}
	var keyed []any
	for _, m := range b.messages(0) {
		if m.Key == "pos" {
			keyed = append(keyed, m.Data)
		}
	}
	if !reflect.DeepEqual(keyed, []any{2.0}) {
		t.Fatalf("bob got %v after the store", keyed)
	}
}

// A socket that connection state recovery brings back is a member again (presence counts it)
// and gets the keyed values it missed while away, which were volatile.
func TestRelayRecovered(t *testing.T) {
	env := startRelay(t, relayEnvOptions{manual: true, recovery: time.Minute})
	a, b := env.dial("alice"), env.dial("bob")
	join(t, a, "r")
	join(t, b, "r")
	publish(t, a, "r", "move", 1, "pos")
	env.relay.step()
	b.sync(a, "r")
	log := b.received()
	offset := log[len(log)-1].offset
	if b.pid == "" || offset == "" {
		t.Fatalf("no session to recover: pid %q, offset %q", b.pid, offset)
	}
	b.close()
	a.waitFor("bob left", func(log []rawEvent) bool { return len(eventsOf(log, RelayUserLeftEvent)) == 1 })
	publish(t, a, "r", "move", 2, "pos")
	publish(t, a, "r", "look", "n", "dir")
	env.relay.step()

	b2 := env.dial("bob", dialOptions{auth: map[string]any{"pid": b.pid, "offset": offset}})
	if b2.sid != b.sid {
		t.Fatalf("not recovered: sid %s, was %s", b2.sid, b.sid)
	}
	a.waitFor("bob back", func(log []rawEvent) bool { return len(eventsOf(log, RelayUserJoinedEvent)) == 2 })
	env.relay.step()
	b2.sync(a, "r")
	if latest, want := latestKeyed(b2), map[string]any{"pos": 2.0, "dir": "n"}; !reflect.DeepEqual(latest, want) {
		t.Fatalf("bob got %v after recovering, want %v", latest, want)
	}
	publish(t, b2, "r", "move", "mine", "pos") // a member again
}

// A long-polling member gets every (user, key) of a tick in the first tick that finds its poll
// waiting, not one value per poll.
func TestRelayPolling(t *testing.T) {
	obs := &countingObserver{}
	env := startRelay(t, relayEnvOptions{manual: true, cfg: RelayConfig{Observer: obs}})
	a := env.dial("alice")
	p := env.dialPolling("paula")
	join(t, a, "r")
	join(t, p, "r")
	ps := env.socket(p)
	for round := range 3 {
		for k := range 10 {
			publish(t, a, "r", "move", round*100+k, fmt.Sprint("k", k))
		}
		// Tick until all ten went out (a tick finding no poll waiting keeps them in the
		// backlog); they go in one tick.
		var bursts []int64
		waitUntil(t, "the values to go out", func() bool {
			before := obs.delivered.Load()
			env.relay.step()
			if d := obs.delivered.Load() - before; d > 0 {
				bursts = append(bursts, d)
			}
			return obs.delivered.Load() == int64(10*(round+1))
		})
		if !reflect.DeepEqual(bursts, []int64{10}) {
			t.Fatalf("round %d: the values went out in ticks of %v, want one tick of 10", round, bursts)
		}
		p.sync(a, "r")
		latest := latestKeyed(p)
		for k := range 10 {
			if got := latest[fmt.Sprint("k", k)]; got != float64(round*100+k) {
				t.Fatalf("round %d: paula has %v for k%d, want %d (all: %v)", round, got, k, round*100+k, latest)
			}
		}
	}
	if env.relay.backlogLen("r", ps) != 0 {
		t.Fatalf("a backlog is left for the polling member")
	}
}
