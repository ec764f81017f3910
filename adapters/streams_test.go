package adapters

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/switchboard/switchboard/socketio"
)

// startStreamsNode starts a redis-streams node on the Redis at url with prefix; window is the
// recovery window (0: off).
func startStreamsNode(t testing.TB, url, prefix string, window time.Duration, setup func(*node)) *node {
	return startNode(t, Config{Name: "redis-streams", RedisURL: url, Prefix: prefix, RecoveryWindow: window}, setup)
}

// twoStreamsNodes starts two Go nodes on one Redis and prefix.
func twoStreamsNodes(t *testing.T, url string, window time.Duration, setup func(*node)) (*node, *node) {
	prefix := uniquePrefix(t)
	a := startStreamsNode(t, url, prefix, window, setup)
	b := startStreamsNode(t, url, prefix, window, setup)
	waitFor(t, "both nodes counted", func() bool {
		n, err := a.nsp.Adapter().ServerCount(t.Context())
		return err == nil && n == 2
	})
	return a, b
}

// sessionKept waits until the session of pid is in Redis (a socket's session is written as it
// closes).
func sessionKept(t *testing.T, n *node, pid string) {
	t.Helper()
	b := n.streams()
	waitFor(t, "the session kept", func() bool {
		c, err := b.conn.Client().Exists(t.Context(), b.sessionPrefix+pid).Result()
		return err == nil && c == 1
	})
}

// dropKept drops c once it got the first event called after and waits until n kept its session;
// it returns the last offset c got.
func (c *client) dropKept(t *testing.T, n *node, after string) string {
	t.Helper()
	c.waitEvent(after, 1)
	offset := c.offset()
	c.drop()
	sessionKept(t, n, c.pid)
	return offset
}

// marker broadcasts a last event to every socket from n and waits until each client got it: the
// stream keeps its order, so whatever was broadcast before has arrived by then (or never will).
func marker(t *testing.T, n *node, id int, clients ...*client) {
	t.Helper()
	if err := n.nsp.Emit("marker", id); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		c.waitEvent("marker", id)
	}
}

func TestStreamsBroadcast(t *testing.T) {
	a, b := twoStreamsNodes(t, localRedis, 0, nil)
	ca := dial(t, a.url, "")
	cb := dial(t, b.url, "")
	cb2 := dial(t, b.url, "")
	a.socket(ca.sid).Join("r1")
	b.socket(cb.sid).Join("r1")
	b.socket(cb2.sid).Join("r2")
	cases := []broadcastCase{
		{"to a room, from a node with a member", func() error { return a.nsp.To("r1").Emit("e", "x", 1) }, []*client{ca, cb}, `["x",1]`},
		{"to a room, from a node without one", func() error { return a.nsp.To("r2").Emit("e", map[string]any{"k": []any{1.5, true, nil}}) }, []*client{cb2}, `[{"k":[1.5,true,null]}]`},
		{"to everyone", func() error { return b.nsp.Emit("e", "all") }, []*client{ca, cb, cb2}, `["all"]`},
		{"except a room", func() error { return a.nsp.Except("r1").Emit("e", "not r1") }, []*client{cb2}, `["not r1"]`},
		{"to a socket id", func() error { return a.nsp.To(cb.sid).Emit("e", "you") }, []*client{cb}, `["you"]`},
		{"to two rooms, a socket once", func() error { return a.nsp.To("r1", "r2", cb.sid).Emit("e", "many") }, []*client{ca, cb, cb2}, `["many"]`},
		{"from a socket, not to itself", func() error { return a.socket(ca.sid).To("r1").Emit("e", "others") }, []*client{cb}, `["others"]`},
		{"volatile", func() error { return a.nsp.To("r1").Volatile().Emit("e", "v") }, []*client{ca, cb}, `["v"]`},
		{"binary", func() error { return a.nsp.To("r1").Emit("e", []byte{0, 1, 2, 255}, map[string]any{"b": []byte{9}}) }, []*client{ca, cb},
			`[{"$bin":"AAEC/w=="},{"b":{"$bin":"CQ=="}}]`},
		{"a struct with json tags", func() error {
			return b.nsp.To("r2").Emit("e", struct {
				Name string `json:"name"`
				N    int    `json:"n,omitempty"`
			}{Name: "s"})
		}, []*client{cb2}, `[{"name":"s"}]`},
	}
	all := []*client{ca, cb, cb2}
	checkBroadcasts(t, cases, all, func(t *testing.T, i int) { marker(t, a, i+1, all...) },
		func(_ *testing.T, e event) string { return jsonOf(e.Args) })
}

// broadcastCase is a broadcast ("e") and the clients that must get it once each, with args (its
// arguments as JSON).
type broadcastCase struct {
	name string
	emit func() error
	want []*client
	args string
}

// checkBroadcasts runs the cases in turn among all: after case i, end(i) must make sure every
// client got what reaches it (a marker after it); argsOf is an event's arguments as a case gives
// them.
func checkBroadcasts(t *testing.T, cases []broadcastCase, all []*client, end func(t *testing.T, i int), argsOf func(t *testing.T, e event) string) {
	t.Helper()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := map[*client]int{}
			for _, c := range all {
				before[c] = len(c.named("e"))
			}
			if err := tc.emit(); err != nil {
				t.Fatal(err)
			}
			end(t, i)
			for _, c := range all {
				got := c.named("e")[before[c]:]
				want := slices.Contains(tc.want, c)
				switch {
				case want && len(got) != 1:
					t.Errorf("client %s got %d copies, want 1", c, len(got))
				case !want && len(got) != 0:
					t.Errorf("client %s got %v, want nothing", c, got)
				case want:
					if s := argsOf(t, got[0]); s != tc.args {
						t.Errorf("client %s got %s, want %s", c, s, tc.args)
					}
				}
			}
		})
	}
}

// TestStreamsOrder: sequential broadcasts from two nodes arrive in the order each node made
// them, on every node.
func TestStreamsOrder(t *testing.T) {
	a, b := twoStreamsNodes(t, localRedis, 0, nil)
	ca := dial(t, a.url, "")
	cb := dial(t, b.url, "")
	const n = 200
	var wg sync.WaitGroup
	for _, node := range []*node{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				if err := node.nsp.Emit("seq", node.streams().uid, i); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, c := range []*client{ca, cb} {
		c.waitEvent("seq", 2*n)
		next := map[string]int{}
		for _, e := range c.named("seq") {
			var uid string
			var i int
			_ = json.Unmarshal(e.Args[0], &uid)
			_ = json.Unmarshal(e.Args[1], &i)
			if i != next[uid] {
				t.Fatalf("client %s: from %s got %d, want %d", c.sid, uid, i, next[uid])
			}
			next[uid]++
		}
	}
}

func TestStreamsRoomsAndDisconnect(t *testing.T) {
	a, b := twoStreamsNodes(t, localRedis, 0, nil)
	ca := dial(t, a.url, "")
	cb := dial(t, b.url, "")
	sa, sb := a.socket(ca.sid), b.socket(cb.sid)
	sb.Join("r1")
	ctx := t.Context()
	rooms := func(s *socketio.Socket) string {
		r := s.Rooms()
		sort.Strings(r)
		return strings.Join(r, ",")
	}
	steps := []struct {
		name   string
		do     func() error
		wantA  string
		wantB  string
		marker bool
	}{
		{"join every socket", func() error { return a.nsp.All().SocketsJoin(ctx, "all") }, "all", "all,r1", true},
		{"join the sockets of a room on the other node", func() error { return a.nsp.To("r1").SocketsJoin(ctx, "x", "y") }, "all", "all,r1,x,y", true},
		{"leave, by socket id", func() error { return a.nsp.To(cb.sid).SocketsLeave(ctx, "x") }, "all", "all,r1,y", true},
		{"leave, except a room", func() error { return b.nsp.Except("r1").SocketsLeave(ctx, "all") }, "", "all,r1,y", true},
	}
	for i, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		marker(t, a, i+1, ca, cb)
		if got := rooms(sa); got != st.wantA {
			t.Errorf("%s: node A's socket in %q, want %q", st.name, got, st.wantA)
		}
		if got := rooms(sb); got != st.wantB {
			t.Errorf("%s: node B's socket in %q, want %q", st.name, got, st.wantB)
		}
	}
	if err := a.nsp.To("y").DisconnectSockets(ctx, false); err != nil {
		t.Fatal(err)
	}
	cb.waitDisconnect()
	waitFor(t, "node B's socket gone", func() bool { return b.nsp.Socket(cb.sid) == nil })
	if a.nsp.Socket(ca.sid) == nil {
		t.Error("node A's socket, not in y, was disconnected")
	}
}

type fetchData1 struct {
	Who  string `json:"who"`
	Skip string `json:"skip,omitempty"`
}

func TestStreamsFetchSockets(t *testing.T) {
	a, b := twoStreamsNodes(t, localRedis, 0, nil)
	ca := dialAuth(t, a.url, "", map[string]any{"token": "t"})
	cb := dial(t, b.url, "")
	a.socket(ca.sid).Join("r1")
	sb := b.socket(cb.sid)
	sb.Join("r1", "r2")
	sb.SetData(fetchData1{Who: "b"})
	ctx := t.Context()
	cases := []struct {
		name string
		op   *socketio.BroadcastOperator
		want []string
	}{
		{"all", a.nsp.All(), []string{ca.sid, cb.sid}},
		{"a room", a.nsp.To("r2"), []string{cb.sid}},
		{"except", b.nsp.Except("r2"), []string{ca.sid}},
		{"a socket id", a.nsp.To(cb.sid), []string{cb.sid}},
		{"none", a.nsp.To("nobody"), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.op.FetchSockets(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, rs := range got {
				ids = append(ids, rs.ID)
			}
			sort.Strings(ids)
			want := slices.Clone(tc.want)
			sort.Strings(want)
			if !slices.Equal(ids, want) {
				t.Errorf("ids = %q, want %q", ids, want)
			}
		})
	}
	got, err := a.nsp.To(cb.sid).FetchSockets(ctx)
	if err != nil || len(got) != 1 {
		t.Fatalf("fetch %s: %v, %v", cb.sid, got, err)
	}
	rs := got[0]
	r := slices.Clone(rs.Rooms)
	sort.Strings(r)
	if !slices.Equal(r, []string{"r1", "r2"}) || rs.Local != nil {
		t.Errorf("remote socket rooms %q local %v", r, rs.Local)
	}
	if d := jsonOf(rs.Data); d != `{"who":"b"}` {
		t.Errorf("data = %s", d)
	}
	h := rs.Handshake
	if !strings.HasPrefix(h.Address, "127.0.0.1") || h.Query.Get("EIO") != "4" || time.Since(h.Time) > time.Minute || !strings.HasPrefix(h.URL, "/socket.io/?") {
		t.Errorf("handshake = %+v", h)
	}
	got, err = b.nsp.To(ca.sid).FetchSockets(ctx)
	if err != nil || len(got) != 1 || got[0].Handshake.Auth["token"] != "t" {
		t.Errorf("fetch with auth: %+v, %v", got, err)
	}
}

func TestStreamsServerSideEmit(t *testing.T) {
	a, b := twoStreamsNodes(t, localRedis, 0, (*node).answerAsGo)
	ctx := t.Context()
	if err := a.nsp.ServerSideEmit(ctx, "hello", 1, "two", []byte{3}); err != nil {
		t.Fatal(err)
	}
	if got := nextSSE(t, b); jsonOf(got.args) != `["hello",1,"two","Aw=="]` || got.withAck {
		t.Errorf("got %+v", got)
	}
	for _, reserved := range []string{"connection", "connect", "new_namespace"} {
		if err := a.nsp.ServerSideEmit(ctx, reserved); err == nil {
			t.Errorf("ServerSideEmit(%q): no error", reserved)
		}
	}
	answers, err := a.nsp.Adapter().(acker).ServerSideEmitWithAck(ctx, []any{"ask", 42})
	if err != nil {
		t.Fatal(err)
	}
	if s := jsonOf(answers); s != `[{"args":["ask",42],"from":"go"}]` {
		t.Errorf("answers = %s", s)
	}
	if got := nextSSE(t, b); jsonOf(got.args) != `["ask",42]` || !got.withAck {
		t.Errorf("got %+v", got)
	}
	select {
	case got := <-a.sse:
		t.Errorf("A got its own serverSideEmit: %+v", got)
	default:
	}
}

func TestStreamsBroadcastWithAck(t *testing.T) {
	a, b := twoStreamsNodes(t, localRedis, 0, nil)
	var clients []*client
	for i, n := range []*node{a, a, b, b} {
		c := dial(t, n.url, "")
		c.ackWith(func(e event) any {
			if i == 3 && e.arg(0) == `"all"` {
				return nil // never answers that one
			}
			return fmt.Sprintf("ack-%d-%s", i, strings.Trim(e.arg(0), `"`))
		})
		n.socket(c.sid).Join("r")
		clients = append(clients, c)
	}
	b.socket(clients[3].sid).Leave("r")
	acks := func(list []*socketio.Args) []string {
		var out []string
		for _, a := range list {
			v, _ := a.Value(0)
			out = append(out, fmt.Sprint(v))
		}
		sort.Strings(out)
		return out
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	got, timedOut, err := a.nsp.To("r").EmitWithAck(ctx, "q", "room")
	if err != nil || timedOut {
		t.Fatalf("EmitWithAck: %v timedOut %v", err, timedOut)
	}
	if want := []string{"ack-0-room", "ack-1-room", "ack-2-room"}; !slices.Equal(acks(got), want) {
		t.Errorf("acks = %q, want %q", acks(got), want)
	}
	got, timedOut, err = b.nsp.To("nobody").EmitWithAck(ctx, "q", "none")
	if err != nil || timedOut || len(got) != 0 {
		t.Errorf("EmitWithAck to no one: %v, %v, %v", got, timedOut, err)
	}
	short, cancel2 := context.WithTimeout(t.Context(), time.Second)
	defer cancel2()
	got, timedOut, err = b.nsp.All().EmitWithAck(short, "q", "all")
	if err != nil || !timedOut {
		t.Errorf("EmitWithAck with a silent client: %v timedOut %v", err, timedOut)
	}
	if want := []string{"ack-0-all", "ack-1-all", "ack-2-all"}; !slices.Equal(acks(got), want) {
		t.Errorf("acks = %q, want %q", acks(got), want)
	}
}

// TestStreamsRecovery: a client that dropped from node A recovers on node B: its id, rooms,
// data and the events broadcast to it meanwhile (and only those), each with its offset.
func TestStreamsRecovery(t *testing.T) {
	a, b := twoStreamsNodes(t, localRedis, time.Minute, nil)
	ca := dial(t, a.url, "")
	if ca.pid == "" {
		t.Fatal("no pid: recovery is off")
	}
	sa := a.socket(ca.sid)
	sa.Join("r1", "r2")
	sa.SetData(map[string]any{"n": 1})
	if err := a.nsp.To("r1").Emit("before", 0); err != nil {
		t.Fatal(err)
	}
	offset := ca.dropKept(t, a, "before")
	if offset == "" || !streamOffset.MatchString(offset) {
		t.Fatalf("offset %q, want a stream id", offset)
	}
	emits := []struct {
		event string
		op    *socketio.BroadcastOperator
		want  bool
	}{
		{"to-r1", b.nsp.To("r1"), true},
		{"to-all", b.nsp.All(), true},
		{"to-its-id", a.nsp.To(ca.sid), true},
		{"to-r9", b.nsp.To("r9"), false},
		{"except-r2", b.nsp.Except("r2"), false},
		{"volatile", b.nsp.All().Volatile(), false},
	}
	for i, e := range emits {
		if err := e.op.Emit(e.event, i); err != nil {
			t.Fatal(err)
		}
	}
	cb := dialAuth(t, b.url, "", map[string]any{"pid": ca.pid, "offset": offset})
	if cb.sid != ca.sid {
		t.Fatalf("recovered id %s, want %s", cb.sid, ca.sid)
	}
	marker(t, b, 1, cb)
	var got []string
	for _, e := range cb.list() {
		if e.Name == "marker" {
			break
		}
		got = append(got, e.Name)
		if last := e.arg(len(e.Args) - 1); !streamOffset.MatchString(strings.Trim(last, `"`)) {
			t.Errorf("event %s without its offset: %v", e.Name, e.Args)
		}
	}
	if want := []string{"to-r1", "to-all", "to-its-id"}; !slices.Equal(got, want) {
		t.Errorf("missed events = %q, want %q", got, want)
	}
	sb := b.socket(cb.sid)
	r := sb.Rooms()
	sort.Strings(r)
	if !slices.Equal(r, []string{"r1", "r2"}) || !sb.Recovered() {
		t.Errorf("recovered rooms %q, recovered %v", r, sb.Recovered())
	}
	if d := jsonOf(sb.Data()); d != `{"n":1}` {
		t.Errorf("recovered data %s", d)
	}
	// A session is restored once.
	again := dialAuth(t, a.url, "", map[string]any{"pid": ca.pid, "offset": offset})
	if again.sid == ca.sid {
		t.Error("the session was restored twice")
	}
}

func TestStreamsNoRecovery(t *testing.T) {
	cases := []struct {
		name   string
		window time.Duration
		prep   func(t *testing.T, c *client, offset string) string // returns the offset to send
	}{
		{"an expired session", time.Second, func(t *testing.T, c *client, offset string) string {
			return offset
		}},
		{"an offset no longer in the stream", time.Minute, func(t *testing.T, c *client, offset string) string {
			return "1-0"
		}},
		{"not an offset", time.Minute, func(t *testing.T, c *client, offset string) string {
			return "abc"
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := twoStreamsNodes(t, localRedis, tc.window, nil)
			ca := dial(t, a.url, "")
			if err := a.nsp.Emit("e", 1); err != nil {
				t.Fatal(err)
			}
			offset := ca.dropKept(t, a, "e")
			if tc.window < 2*time.Second {
				waitFor(t, "the session expired", func() bool {
					n, err := a.streams().conn.Client().Exists(t.Context(), a.streams().sessionPrefix+ca.pid).Result()
					return err == nil && n == 0
				})
			}
			cb := dialAuth(t, b.url, "", map[string]any{"pid": ca.pid, "offset": tc.prep(t, ca, offset)})
			if cb.sid == ca.sid {
				t.Fatal("recovered")
			}
			if s := b.socket(cb.sid); s.Recovered() || len(s.Rooms()) != 0 {
				t.Errorf("new socket recovered %v rooms %q", s.Recovered(), s.Rooms())
			}
		})
	}
}

// TestStreamsSessionWire: the session in Redis is Node's: base64 of msgpack {sid, pid, rooms
// (its own id first), data}, expiring with the window.
func TestStreamsSessionWire(t *testing.T) {
	a := startStreamsNode(t, localRedis, uniquePrefix(t), time.Minute, nil)
	c := dial(t, a.url, "")
	s := a.socket(c.sid)
	s.Join("r1")
	s.SetData(fetchData1{Who: "go"})
	c.drop()
	sessionKept(t, a, c.pid)
	cl := a.streams().conn.Client()
	key := a.streams().sessionPrefix + c.pid
	raw, err := cl.Get(t.Context(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	b, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		t.Fatal(err)
	}
	v, err := socketio.DecodeMsgpack(b)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`{"data":{"who":"go"},"pid":%q,"rooms":[%q,"r1"],"sid":%q}`, c.pid, c.sid, c.sid)
	if got := jsonOf(v); got != want {
		t.Errorf("session = %s, want %s", got, want)
	}
	if b[0] != 0x84 || !strings.HasPrefix(string(b[1:5]), "\xa3sid") {
		t.Errorf("session keys not in Node's order: % x", b[:8])
	}
	ttl, err := cl.PTTL(t.Context(), key).Result()
	if err != nil || ttl <= 50*time.Second || ttl > time.Minute {
		t.Errorf("expiry %v, %v; want about a minute", ttl, err)
	}
}

// TestStreamsEntryWire: what this node puts in the stream is what Node reads: four fields, the
// type a decimal string, data JSON (or base64 msgpack with binary) with rooms and except arrays.
func TestStreamsEntryWire(t *testing.T) {
	a := startStreamsNode(t, localRedis, uniquePrefix(t), time.Minute, nil)
	ctx := t.Context()
	if err := a.nsp.To("r1").Emit("hello", "x"); err != nil {
		t.Fatal(err)
	}
	if err := a.nsp.All().Volatile().Emit("vol", []byte{1, 2}); err != nil {
		t.Fatal(err)
	}
	if err := a.nsp.Except("r2").SocketsJoin(ctx, "r3"); err != nil {
		t.Fatal(err)
	}
	if err := a.nsp.All().DisconnectSockets(ctx, true); err != nil {
		t.Fatal(err)
	}
	entries, err := a.streams().conn.Client().XRange(ctx, a.streams().stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{"packet":{"type":2,"data":["hello","x"]},"opts":{"rooms":["r1"],"except":[],"flags":{}}}`,
		`{"opts":{"except":[],"flags":{"volatile":true},"rooms":[]},"packet":{"data":["vol","AQI="],"type":2}}`,
		`{"opts":{"rooms":[],"except":["r2"],"flags":{}},"rooms":["r3"]}`,
		`{"opts":{"rooms":[],"except":[],"flags":{}},"close":true}`,
	}
	types := []string{"3", "3", "4", "6"}
	if len(entries) != len(want) {
		t.Fatalf("%d entries, want %d: %v", len(entries), len(want), entries)
	}
	for i, e := range entries {
		if len(e.Values) != 4 || e.Values["uid"] != a.streams().uid || e.Values["nsp"] != "/" || e.Values["type"] != types[i] {
			t.Errorf("entry %d fields %v", i, e.Values)
		}
		data := e.Values["data"].(string)
		if i == 1 {
			if strings.HasPrefix(data, "{") {
				t.Errorf("binary entry as JSON: %s", data)
			}
			m, err := decodeStreamData(data)
			if err != nil {
				t.Fatal(err)
			}
			data = jsonOf(m)
		}
		if data != want[i] {
			t.Errorf("entry %d data %s, want %s", i, data, want[i])
		}
	}
}

// TestStreamsOutage stops (SIGSTOP) and kills the Redis of two nodes while both broadcast in a
// loop: a broadcast either fails with ErrUnavailable (at once, once the outage is known) and
// reaches no one, or succeeds and reaches every client, in the order its node made them; the
// nodes recover by themselves, requests included.
func TestStreamsOutage(t *testing.T) {
	cases := []struct {
		name  string
		fault func(p *pausable)
		heal  func(p *pausable)
	}{
		{"SIGSTOP", (*pausable).pause, (*pausable).resume},
		{"kill and restart", func(p *pausable) { p.Stop() }, (*pausable).restart},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startPausable(t)
			a, b := twoStreamsNodes(t, srv.URL(), 0, nil)
			clients := []*client{dial(t, a.url, ""), dial(t, b.url, "")}
			type sender struct {
				node     *node
				mu       sync.Mutex
				ok       []int
				inFlight []int // failed calls made before the fault (Redis may have run them)
				failed   int
				fast     int // failures answered within 50 ms
				slowest  time.Duration
			}
			var faultMu sync.Mutex
			var faultAt time.Time
			senders := []*sender{{node: a}, {node: b}}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for _, s := range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					pace := time.NewTicker(time.Millisecond) // a steady rate, not a spin during the outage
					defer pace.Stop()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						case <-pace.C:
						}
						start := time.Now()
						err := s.node.nsp.Emit("n", s.node.streams().uid, i)
						d := time.Since(start)
						s.mu.Lock()
						switch {
						case err == nil:
							s.ok = append(s.ok, i)
						case errors.Is(err, socketio.ErrUnavailable):
							s.failed++
							faultMu.Lock()
							if faultAt.IsZero() || start.Before(faultAt) {
								s.inFlight = append(s.inFlight, i)
							}
							faultMu.Unlock()
							if d < 50*time.Millisecond {
								s.fast++
							}
							s.slowest = max(s.slowest, d)
						default:
							t.Errorf("emit %d: %v", i, err)
						}
						s.mu.Unlock()
					}
				}()
			}
			counts := func(f func(s *sender) int) bool {
				for _, s := range senders {
					s.mu.Lock()
					n := f(s)
					s.mu.Unlock()
					if n < 50 {
						return false
					}
				}
				return true
			}
			waitFor(t, "broadcasts before the fault", func() bool { return counts(func(s *sender) int { return len(s.ok) }) })
			faultMu.Lock()
			faultAt = time.Now()
			tc.fault(srv)
			faultMu.Unlock()
			waitFor(t, "both nodes see Redis down", func() bool { return !a.streams().conn.Ready() && !b.streams().conn.Ready() })
			if d := time.Since(faultAt); d > time.Second {
				t.Errorf("the outage was seen after %v", d)
			}
			waitFor(t, "fast failures during the outage", func() bool {
				return time.Since(faultAt) > time.Second && counts(func(s *sender) int { return s.fast })
			})
			okDuring := make([]int, len(senders))
			for i, s := range senders {
				s.mu.Lock()
				okDuring[i] = len(s.ok)
				s.mu.Unlock()
			}
			tc.heal(srv)
			waitFor(t, "both nodes recovered", func() bool { return a.streams().conn.Ready() && b.streams().conn.Ready() })
			waitFor(t, "broadcasts after the recovery", func() bool {
				for i, s := range senders {
					s.mu.Lock()
					n := len(s.ok) - okDuring[i]
					s.mu.Unlock()
					if n < 50 {
						return false
					}
				}
				return true
			})
			close(stop)
			wg.Wait()
			marker(t, a, 1, clients...)
			for _, c := range clients {
				got := map[string][]int{}
				for _, e := range c.named("n") {
					var uid string
					var n int
					_ = json.Unmarshal(e.Args[0], &uid)
					_ = json.Unmarshal(e.Args[1], &n)
					got[uid] = append(got[uid], n)
				}
				for _, s := range senders {
					// Exactly the calls that succeeded, in order; but for a call in flight at the
					// fault, which Redis may have run just before it stopped and then answered too
					// late (the one ambiguity no fence removes).
					g := slices.DeleteFunc(slices.Clone(got[s.node.streams().uid]), func(n int) bool { return slices.Contains(s.inFlight, n) })
					if !slices.Equal(g, s.ok) || !slices.IsSorted(got[s.node.streams().uid]) || len(got[s.node.streams().uid])-len(g) > 1 {
						t.Errorf("client %s got %d events from node %s, want the %d that succeeded, in order (%d failed; in flight at the fault %v)\n got %v\nwant %v",
							c.sid, len(got[s.node.streams().uid]), s.node.streams().uid, len(s.ok), s.failed, s.inFlight, got[s.node.streams().uid], s.ok)
					}
				}
			}
			for _, s := range senders {
				if s.slowest > 1500*time.Millisecond {
					t.Errorf("node %s: the slowest failed broadcast took %v", s.node.streams().uid, s.slowest)
				}
				t.Logf("node %s: %d broadcasts succeeded, %d failed (%d within 50 ms, the slowest %v)", s.node.streams().uid, len(s.ok), s.failed, s.fast, s.slowest)
			}
			// Requests work again: both nodes answer.
			waitFor(t, "both nodes counted again", func() bool {
				n, err := a.nsp.Adapter().ServerCount(t.Context())
				return err == nil && n == 2
			})
			got, err := a.nsp.All().FetchSockets(t.Context())
			if err != nil || len(got) != 2 {
				t.Errorf("fetchSockets after the outage: %d sockets, %v", len(got), err)
			}
		})
	}
}

// TestStreamsCloseLeaksNothing: a backend's goroutines (the stream's reader, the subscribers,
// the node counter, presence) end with Close.
func TestStreamsCloseLeaksNothing(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	b, err := New(Config{Name: "redis-streams", RedisURL: localRedis, Prefix: uniquePrefix(t), RecoveryWindow: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	srv, nsp := serve(t, b, time.Minute, zerolog.Nop())
	if err := nsp.Emit("e", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Presence("chat").Join(t.Context(), "r", "u", nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	srv.Close(ctx)
	start := time.Now()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v (the reader's XREAD BLOCK must be unblocked)", d)
	}
}
