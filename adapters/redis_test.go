package adapters

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/nodepeer"
	"github.com/switchboard/switchboard/socketio"
)

// The classic broadcast is byte for byte what Node's adapter publishes (redis-wire notes §2.3,
// captured from Node 8.3.0): io.to("r1").emit("hello", "x").
func TestClassicBroadcastBytes(t *testing.T) {
	a := &classicAdapter{uid: "8Su_fX"}
	a.clusterAdapter = &clusterAdapter{nsp: rootNamespace(t)}
	msg, err := a.encodeBroadcast(&socketio.Packet{Type: socketio.PacketEvent, Nsp: "/", ID: -1, Data: []any{"hello", "x"}}, socketio.BroadcastOptions{Rooms: []string{"r1"}})
	if err != nil {
		t.Fatal(err)
	}
	want := "93" + "a6" + hex.EncodeToString([]byte("8Su_fX")) +
		"83" + "a4" + hex.EncodeToString([]byte("type")) + "02" +
		"a4" + hex.EncodeToString([]byte("data")) + "92" + "a5" + hex.EncodeToString([]byte("hello")) + "a1" + hex.EncodeToString([]byte("x")) +
		"a3" + hex.EncodeToString([]byte("nsp")) + "a1" + hex.EncodeToString([]byte("/")) +
		"83" + "a5" + hex.EncodeToString([]byte("rooms")) + "91" + "a2" + hex.EncodeToString([]byte("r1")) +
		"a6" + hex.EncodeToString([]byte("except")) + "90" +
		"a5" + hex.EncodeToString([]byte("flags")) + "80"
	if got := hex.EncodeToString(msg); got != want {
		t.Fatalf("broadcast bytes\n got %s\nwant %s", got, want)
	}
	// Volatile is the only flag, and only when set; binary stays bin; raw JSON becomes values.
	msg, err = socketio.EncodeMsgpack([]any{"u", wirePacket{Type: 2, Data: wireData([]any{"b", []byte{1, 2}, jsonRaw(`{"k":[1]}`)}), Nsp: "/"},
		encodeOpts(socketio.BroadcastOptions{Volatile: true, Except: []string{"x", "x"}})})
	if err != nil {
		t.Fatal(err)
	}
	v, err := socketio.DecodeMsgpack(msg)
	if err != nil {
		t.Fatal(err)
	}
	arr := v.([]any)
	data := arr[1].(map[string]any)["data"].([]any)
	if b, ok := data[1].([]byte); !ok || len(b) != 2 {
		t.Fatalf("binary arg: %#v", data[1])
	}
	if m, ok := data[2].(map[string]any); !ok || len(m["k"].([]any)) != 1 {
		t.Fatalf("raw json arg: %#v", data[2])
	}
	if got := jsonOf(arr[2]); got != `{"except":["x"],"flags":{"volatile":true},"rooms":[]}` {
		t.Fatalf("opts %s", got)
	}
}

// cluster3 is two Go nodes and a Node peer on one Redis prefix, with clients on each:
// a1 (r1), a2 (r2) on A; b1 (r1), b2 (r2, r3) on B; n1 (r1), n2 (r3) on the Node peer.
type cluster3 struct {
	a, b    *node
	peer    *nodepeer.Peer
	clients map[string]*client
	prefix  string
	// cluster: a Redis Cluster, where a room's channel and the main channel sit on different
	// masters and keep no order between them.
	cluster bool
	// classic: the redis adapter (the emitter speaks only its protocol, and its serverSideEmit
	// is JSON); otherwise redis-sharded.
	classic bool
}

// trio says which adapter and Redis a cluster3 runs on.
type trio struct {
	adapter string   // "redis" or "redis-sharded"
	url     string   // for the Go nodes
	nodes   []string // a Redis Cluster's host:port list, for the Node peer (url otherwise)
}

var classicTrio = trio{adapter: "redis", url: localRedis}

func startCluster3(t *testing.T, tr trio) *cluster3 {
	t.Helper()
	prefix := uniquePrefix(t)
	cfg := Config{Name: tr.adapter, RedisURL: tr.url, Prefix: prefix}
	c := &cluster3{a: startNode(t, cfg, (*node).answerAsGo), b: startNode(t, cfg, (*node).answerAsGo), clients: map[string]*client{}, prefix: prefix, classic: tr.adapter == "redis", cluster: tr.nodes != nil}
	join := func(n *node, name string, rooms ...string) {
		cl := dial(t, n.url, name)
		n.socket(cl.sid).Join(rooms...)
		c.clients[name] = cl
	}
	join(c.a, "a1", "r1")
	join(c.a, "a2", "r2")
	join(c.b, "b1", "r1")
	join(c.b, "b2", "r2", "r3")
	o := nodepeer.Options{Adapter: "redis", RedisURL: tr.url, Prefix: prefix}
	if !c.classic {
		o.Adapter = "sharded"
	}
	if tr.nodes != nil {
		o.RedisURL, o.ClusterNodes = "", tr.nodes
	}
	c.peer = nodepeer.Start(t, o)
	for name, rooms := range map[string][]string{"n1": {"r1"}, "n2": {"r3"}} {
		cl := dial(t, c.peer.URL, name)
		c.peer.Must("join", map[string]any{"sid": cl.sid, "rooms": rooms}, nil)
		c.clients[name] = cl
	}
	c.peer.WaitServerCount("/", 3)
	// Nodes subscribe the channels of their rooms without waiting (sharded): a broadcast to
	// one room goes to the room's channel.
	c.waitChannel(t, "r1", "a1", "b1", "n1")
	c.waitChannel(t, "r2", "a2", "b2")
	c.waitChannel(t, "r3", "b2", "n2")
	return c
}

// waitChannel waits, for the sharded adapter, until the channel of room has a subscriber on
// every node of the named clients (Node's dynamic mode, and ours, subscribe in the background
// when a room appears; a broadcast published before is lost for that node, in Node too).
func (c *cluster3) waitChannel(t *testing.T, room string, names ...string) {
	t.Helper()
	if c.classic {
		return
	}
	nodes := map[byte]bool{}
	for _, n := range names {
		nodes[n[0]] = true
	}
	ch := c.prefix + "#/#" + room + "#"
	conn := c.a.b.(*redisBackend).conn
	waitFor(t, "subscribers of "+ch, func() bool {
		n, err := conn.NumSub(t.Context(), true, ch)
		return err == nil && n[ch] >= int64(len(nodes))
	})
}

// received sends the end marker with end() and returns, for each client, the events it got
// before the marker. The clients in roomEnd also wait for an "end-room" marker, which end sends
// on the channel of a one-room broadcast first (on a Redis Cluster the main channel's "end"
// may overtake what went on a room's channel).
func (c *cluster3) received(t *testing.T, end func(), roomEnd ...string) map[string][]string {
	t.Helper()
	end()
	out := map[string][]string{}
	for name, cl := range c.clients {
		want := map[string]bool{"end": true}
		if slices.Contains(roomEnd, name) {
			want["end-room"] = true
		}
		for len(want) > 0 {
			name0 := cl.next().Name
			if want[name0] {
				delete(want, name0)
				continue
			}
			out[name] = append(out[name], name0)
		}
	}
	return out
}

// roomChannel reports whether a broadcast to rooms takes a room's own channel on a Redis
// Cluster (see received).
func (c *cluster3) roomChannel(rooms []string) bool {
	return c.cluster && len(rooms) == 1 && jsLength(rooms[0]) != 20
}

func who(got map[string][]string, event string) []string {
	var out []string
	for name, evs := range got {
		if slices.Contains(evs, event) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Broadcasts reach exactly the sockets they select on every node, whichever node (Go or Node)
// sends them.
func TestClassicBroadcast(t *testing.T) { runBroadcast(t, startCluster3(t, classicTrio)) }

func runBroadcast(t *testing.T, c *cluster3) {
	all := []string{"a1", "a2", "b1", "b2", "n1", "n2"}
	cases := []struct {
		name           string
		rooms, except  []string
		volatile, toB2 bool
		want           []string
	}{
		{name: "room", rooms: []string{"r1"}, want: []string{"a1", "b1", "n1"}},
		{name: "rooms", rooms: []string{"r1", "r2"}, want: []string{"a1", "a2", "b1", "b2", "n1"}},
		{name: "namespace", want: all},
		{name: "except", except: []string{"r1"}, want: []string{"a2", "b2", "n2"}},
		{name: "room except", rooms: []string{"r2"}, except: []string{"r3"}, want: []string{"a2"}},
		{name: "volatile", volatile: true, want: all},
		{name: "socket id", toB2: true, want: []string{"b2"}},
	}
	senders := map[string]func(ev string, rooms, except []string, volatile bool) error{
		"go A": func(ev string, rooms, except []string, volatile bool) error {
			op := c.a.nsp.To(rooms...).Except(except...)
			if volatile {
				op = op.Volatile()
			}
			return op.Emit(ev, 1)
		},
		"go B": func(ev string, rooms, except []string, volatile bool) error {
			op := c.b.nsp.To(rooms...).Except(except...)
			if volatile {
				op = op.Volatile()
			}
			return op.Emit(ev, 1)
		},
		"node": func(ev string, rooms, except []string, volatile bool) error {
			_, err := c.peer.Call("emit", map[string]any{"rooms": rooms, "except": except, "volatile": volatile, "event": ev, "args": []any{1}})
			return err
		},
		"emitter": func(ev string, rooms, except []string, volatile bool) error {
			_, err := c.peer.Call("emitter", map[string]any{"rooms": rooms, "except": except, "volatile": volatile, "event": ev, "args": []any{1}})
			return err
		},
	}
	names := []string{"go A", "go B", "node", "emitter"}
	if !c.classic {
		names = names[:3] // the emitter publishes only the classic protocol
	}
	for _, sender := range names {
		send := senders[sender]
		for _, tc := range cases {
			t.Run(sender+"/"+tc.name, func(t *testing.T) {
				rooms := tc.rooms
				if tc.toB2 {
					rooms = []string{c.clients["b2"].sid}
				}
				if err := send(tc.name, rooms, tc.except, tc.volatile); err != nil {
					t.Fatal(err)
				}
				var roomEnd []string
				if c.roomChannel(rooms) {
					roomEnd = tc.want
				}
				got := c.received(t, func() {
					if roomEnd != nil {
						if err := send("end-room", rooms, tc.except, false); err != nil {
							t.Fatal(err)
						}
					}
					if err := send("end", nil, nil, false); err != nil {
						t.Fatal(err)
					}
				}, roomEnd...)
				if w := who(got, tc.name); !slices.Equal(w, tc.want) {
					t.Fatalf("%s reached %v, want %v (all: %v)", tc.name, w, tc.want, got)
				}
				for name, evs := range got {
					if len(evs) > 1 {
						t.Fatalf("client %s got %v", name, evs)
					}
				}
			})
		}
	}
	for _, ev := range c.peer.Events() {
		if ev.Kind == "redisError" {
			t.Fatalf("the Node peer's Redis client failed: %s", ev.Raw)
		}
	}
}

// ackSIDs are the socket ids in acks from the test clients ({"sid", "event"} first).
func ackSIDs(t *testing.T, acks []*socketio.Args) []string {
	t.Helper()
	var out []string
	for _, a := range acks {
		v, err := a.Value(0)
		if err != nil {
			t.Fatal(err)
		}
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("ack %#v", v)
		}
		out = append(out, m["sid"].(string))
	}
	sort.Strings(out)
	return out
}

func (c *cluster3) sids(names ...string) []string {
	var out []string
	for _, n := range names {
		out = append(out, c.clients[n].sid)
	}
	sort.Strings(out)
	return out
}

// A broadcast with acks collects every client's ack across Go and Node nodes and ends as soon as
// all answered; a node without a matching client still reports its zero count (or Node's
// emitWithAck would time out).
func TestClassicBroadcastWithAck(t *testing.T) { runBroadcastWithAck(t, startCluster3(t, classicTrio)) }

func runBroadcastWithAck(t *testing.T, c *cluster3) {
	cases := []struct {
		name  string
		rooms []string
		want  []string
	}{
		{name: "namespace", want: []string{"a1", "a2", "b1", "b2", "n1", "n2"}},
		{name: "room", rooms: []string{"r1"}, want: []string{"a1", "b1", "n1"}},
		{name: "none on A", rooms: []string{"r3"}, want: []string{"b2", "n2"}},
		{name: "nobody", rooms: []string{"nobody"}},
	}
	for _, tc := range cases {
		t.Run("go/"+tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			start := time.Now()
			acks, timedOut, err := c.a.nsp.To(tc.rooms...).EmitWithAck(ctx, "ackme", "q")
			if err != nil || timedOut {
				t.Fatalf("EmitWithAck: timedOut %v, %v", timedOut, err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("took %v: it must end when every node answered", d)
			}
			if got := ackSIDs(t, acks); !slices.Equal(got, c.sids(tc.want...)) {
				t.Fatalf("acks from %v, want %v", got, c.sids(tc.want...))
			}
			for _, name := range tc.want {
				c.clients[name].expect("ackme")
			}
		})
		t.Run("node/"+tc.name, func(t *testing.T) {
			var res struct {
				Err       *string          `json:"err"`
				Responses []map[string]any `json:"responses"`
			}
			c.peer.Must("emitWithAck", map[string]any{"rooms": tc.rooms, "event": "ackme", "args": []any{"q"}, "timeout": 5000}, &res)
			if res.Err != nil {
				t.Fatalf("Node's emitWithAck: %s (%d responses)", *res.Err, len(res.Responses))
			}
			var got []string
			for _, r := range res.Responses {
				got = append(got, r["sid"].(string))
			}
			sort.Strings(got)
			if !slices.Equal(got, c.sids(tc.want...)) {
				t.Fatalf("acks from %v, want %v", got, c.sids(tc.want...))
			}
			for _, name := range tc.want {
				c.clients[name].expect("ackme")
			}
		})
	}
}

// fetchSockets lists every node's sockets with their rooms, data and handshake, both ways.
func TestClassicFetchSockets(t *testing.T) { runFetchSockets(t, startCluster3(t, classicTrio)) }

func runFetchSockets(t *testing.T, c *cluster3) {
	ctx := t.Context()
	got, err := c.a.nsp.To("r1", "r3").FetchSockets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]socketio.RemoteSocket{}
	var ids []string
	for _, rs := range got {
		byID[rs.ID] = rs
		ids = append(ids, rs.ID)
	}
	sort.Strings(ids)
	if want := c.sids("a1", "b1", "b2", "n1", "n2"); !slices.Equal(ids, want) {
		t.Fatalf("fetched %v, want %v", ids, want)
	}
	if rs := byID[c.clients["a1"].sid]; rs.Local == nil {
		t.Fatalf("a1 is local: %+v", rs)
	}
	b2 := byID[c.clients["b2"].sid]
	if b2.Local != nil || !slices.Equal(sorted(b2.Rooms), []string{"r2", "r3"}) || jsonOf(b2.Data) != `{"n":1,"who":"go"}` {
		t.Fatalf("b2 from B: rooms %v data %s local %v", b2.Rooms, jsonOf(b2.Data), b2.Local)
	}
	if b2.Handshake.Address == "" || b2.Handshake.Query.Get("EIO") != "4" || b2.Handshake.Time.IsZero() || !strings.HasPrefix(b2.Handshake.URL, "/socket.io/") {
		t.Fatalf("b2's handshake: %+v", b2.Handshake)
	}
	n2 := byID[c.clients["n2"].sid]
	if !slices.Equal(n2.Rooms, []string{"r3"}) || jsonOf(n2.Data) != `{"who":"node"}` || n2.Handshake.Query.Get("transport") != "websocket" || n2.Handshake.Time.IsZero() {
		t.Fatalf("n2 from Node: rooms %v data %s handshake %+v", n2.Rooms, jsonOf(n2.Data), n2.Handshake)
	}

	var fromNode []peerSocket
	c.peer.Must("fetchSockets", map[string]any{"rooms": []string{"r2"}}, &fromNode)
	ids = nil
	for _, s := range fromNode {
		ids = append(ids, s.ID)
		if s.ID == c.clients["b2"].sid {
			if !slices.Equal(s.Rooms, []string{s.ID, "r2", "r3"}) && !slices.Equal(s.Rooms, []string{s.ID, "r3", "r2"}) {
				t.Fatalf("Node sees b2's rooms %v", s.Rooms)
			}
			if jsonOf(s.Data) != `{"n":1,"who":"go"}` {
				t.Fatalf("Node sees b2's data %v", s.Data)
			}
			for _, k := range []string{"headers", "time", "address", "xdomain", "secure", "issued", "url", "query", "auth"} {
				if _, ok := s.Handshake[k]; !ok {
					t.Fatalf("Node sees b2's handshake without %s: %v", k, s.Handshake)
				}
			}
			if _, err := time.Parse(jsDateFormat, s.Handshake["time"].(string)); err != nil {
				t.Fatalf("handshake time %v: %v", s.Handshake["time"], err)
			}
		}
	}
	sort.Strings(ids)
	if want := c.sids("a2", "b2"); !slices.Equal(ids, want) {
		t.Fatalf("Node fetched %v, want %v", ids, want)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

// socketsJoin, socketsLeave and disconnectSockets act on every node's sockets, from Go, from Node
// and from the emitter (whose requests carry no uid).
func TestClassicRemoteRooms(t *testing.T) { runRemoteRooms(t, startCluster3(t, classicTrio)) }

func runRemoteRooms(t *testing.T, c *cluster3) {
	ctx := t.Context()
	// reach broadcasts to room from A and returns who got it.
	reach := func(room string, want ...string) []string {
		t.Helper()
		c.waitChannel(t, room, want...)
		if err := c.a.nsp.To(room).Emit("probe"); err != nil {
			t.Fatal(err)
		}
		var roomEnd []string
		if c.roomChannel([]string{room}) {
			roomEnd = want
		}
		got := c.received(t, func() {
			if roomEnd != nil {
				if err := c.a.nsp.To(room).Emit("end-room"); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.a.nsp.Emit("end"); err != nil {
				t.Fatal(err)
			}
		}, roomEnd...)
		return who(got, "probe")
	}
	if err := c.a.nsp.To("r1").SocketsJoin(ctx, "j1"); err != nil {
		t.Fatal(err)
	}
	if got := reach("j1", "a1", "b1", "n1"); !slices.Equal(got, []string{"a1", "b1", "n1"}) {
		t.Fatalf("go socketsJoin: j1 has %v", got)
	}
	c.peer.Must("socketsJoin", map[string]any{"rooms": []string{"r2"}, "join": []string{"j1"}}, nil)
	c.waitIn(t, "j1", true, "a2", "b2") // Node publishes without waiting for Redis
	if got := reach("j1", "a1", "a2", "b1", "b2", "n1"); !slices.Equal(got, []string{"a1", "a2", "b1", "b2", "n1"}) {
		t.Fatalf("node socketsJoin: j1 has %v", got)
	}
	if err := c.b.nsp.To("r2").SocketsLeave(ctx, "j1"); err != nil {
		t.Fatal(err)
	}
	c.waitIn(t, "j1", false, "a2") // A applies B's request when it arrives, maybe after A's own broadcast
	if got := reach("j1", "a1", "b1", "n1"); !slices.Equal(got, []string{"a1", "b1", "n1"}) {
		t.Fatalf("go socketsLeave: j1 has %v", got)
	}
	c.peer.Must("socketsLeave", map[string]any{"rooms": []string{"r1"}, "except": []string{c.clients["b1"].sid}, "leave": []string{"j1"}}, nil)
	c.waitIn(t, "j1", false, "a1", "n1")
	if got := reach("j1", "b1"); !slices.Equal(got, []string{"b1"}) {
		t.Fatalf("node socketsLeave: j1 has %v", got)
	}
	join, leave := "emitterJoin", "emitterLeave"
	if !c.classic {
		join, leave = "socketsJoin", "socketsLeave" // the emitter speaks only the classic protocol
	}
	c.peer.Must(join, map[string]any{"rooms": []string{"r3"}, "join": []string{"j3"}}, nil)
	c.peer.Must(leave, map[string]any{"rooms": []string{"r1"}, "except": []string{"r2"}, "leave": []string{"j1"}}, nil)
	c.waitIn(t, "j3", true, "b2", "n2")
	c.waitIn(t, "j1", false, "a1", "b1", "n1")
	if got := reach("j3", "b2", "n2"); !slices.Equal(got, []string{"b2", "n2"}) {
		t.Fatalf("emitter socketsJoin: j3 has %v", got)
	}
	if got := reach("j1"); len(got) != 0 {
		t.Fatalf("emitter socketsLeave: j1 has %v", got)
	}

	if err := c.a.nsp.To("r3").DisconnectSockets(ctx, false); err != nil {
		t.Fatal(err)
	}
	c.clients["b2"].expect("$disconnect")
	c.clients["n2"].expect("$disconnect")
	delete(c.clients, "b2")
	delete(c.clients, "n2")
	if err := c.a.nsp.To("r2").SocketsJoin(ctx, "j2"); err != nil {
		t.Fatal(err)
	}
	c.waitIn(t, "j2", true, "a2") // the join on Node is applied when its echo arrives: none here
	c.peer.Must("disconnectSockets", map[string]any{"rooms": []string{"r2"}}, nil)
	c.clients["a2"].expect("$disconnect")
	delete(c.clients, "a2")
	disconnect := "emitterDisconnect"
	if !c.classic {
		disconnect = "disconnectSockets"
	}
	c.peer.Must(disconnect, map[string]any{"rooms": []string{"r1"}, "except": []string{c.clients["n1"].sid}}, nil)
	c.clients["a1"].expect("$disconnect")
	c.clients["b1"].expect("$disconnect")
	delete(c.clients, "a1")
	delete(c.clients, "b1")
	if got := reach("r1", "n1"); !slices.Equal(got, []string{"n1"}) {
		t.Fatalf("after the disconnects r1 has %v", got)
	}
}

// waitIn waits until each named client's socket is (or is not) in room.
func (c *cluster3) waitIn(t *testing.T, room string, in bool, names ...string) {
	t.Helper()
	for _, name := range names {
		cl := c.clients[name]
		waitFor(t, fmt.Sprintf("%s in %s = %v", name, room, in), func() bool {
			for _, n := range []*node{c.a, c.b} {
				if s := n.nsp.Socket(cl.sid); s != nil {
					return s.In(room) == in
				}
			}
			for _, s := range peerSockets(c.peer) {
				if s.ID == cl.sid {
					return slices.Contains(s.Rooms, room) == in
				}
			}
			return false
		})
	}
}

// acker is the adapters' serverSideEmit with ack.
type acker interface {
	ServerSideEmitWithAck(ctx context.Context, args []any) ([]any, error)
}

// serverSideEmit reaches the other nodes, with and without ack, both ways; the server count is
// every node.
func TestClassicServerSideEmitAndCount(t *testing.T) {
	runServerSideEmitAndCount(t, startCluster3(t, classicTrio))
}

func runServerSideEmitAndCount(t *testing.T, c *cluster3) {
	ctx := t.Context()
	for name, count := range map[string]func() (int, error){
		"go": func() (int, error) { return c.a.nsp.Adapter().ServerCount(ctx) },
		"node": func() (int, error) {
			var n int
			c.peer.Must("serverCount", nil, &n)
			return n, nil
		},
	} {
		if n, err := count(); err != nil || n != 3 {
			t.Fatalf("%s server count = %d, %v; want 3", name, n, err)
		}
	}

	if err := c.a.nsp.ServerSideEmit(ctx, "sse", 1, "two"); err != nil {
		t.Fatal(err)
	}
	if s := nextSSE(t, c.b); jsonOf(s.args) != `["sse",1,"two"]` || s.withAck {
		t.Fatalf("B got %+v", s)
	}
	ev := c.peer.WaitEvent("sse from go", func(e nodepeer.Event) bool { return e.Kind == "sse" && e.Name == "sse" })
	if jsonOf(ev.Args) != `[1,"two"]` || ev.WithAck {
		t.Fatalf("Node got %s", ev.Raw)
	}
	select {
	case s := <-c.a.sse:
		t.Fatalf("A got its own serverSideEmit: %+v", s)
	default:
	}

	res, err := c.a.nsp.Adapter().(acker).ServerSideEmitWithAck(ctx, []any{"sse-ack", 2})
	if err != nil || len(res) != 2 {
		t.Fatalf("ServerSideEmitWithAck = %v, %v", res, err)
	}
	froms := []string{res[0].(map[string]any)["from"].(string), res[1].(map[string]any)["from"].(string)}
	sort.Strings(froms)
	if !slices.Equal(froms, []string{"go", "node"}) {
		t.Fatalf("answers from %v", res)
	}
	if s := nextSSE(t, c.b); !s.withAck {
		t.Fatalf("B got %+v", s)
	}

	var nres struct {
		Err       *string          `json:"err"`
		Responses []map[string]any `json:"responses"`
	}
	c.peer.Must("serverSideEmitWithAck", map[string]any{"event": "from-node", "args": []any{3}}, &nres)
	if nres.Err != nil || len(nres.Responses) != 2 || nres.Responses[0]["from"] != "go" || nres.Responses[1]["from"] != "go" {
		t.Fatalf("Node's serverSideEmitWithAck: %+v", nres)
	}
	for _, n := range []*node{c.a, c.b} {
		if s := nextSSE(t, n); jsonOf(s.args) != `["from-node",3]` || !s.withAck {
			t.Fatalf("from Node: %+v", s)
		}
	}
	c.peer.Must("serverSideEmit", map[string]any{"event": "plain", "args": []any{nodepeer.Bin([]byte{9})}}, nil)
	if c.classic {
		c.peer.Must("emitterSSE", map[string]any{"event": "from-emitter", "args": []any{"e"}}, nil)
	}
	for _, n := range []*node{c.a, c.b} {
		// The classic adapter sends serverSideEmit as JSON: Node's Buffer arrives as its JSON
		// (between Node servers too); the sharded one sends binary as msgpack.
		want := `["plain","CQ=="]`
		if c.classic {
			want = `["plain",{"data":[9],"type":"Buffer"}]`
		}
		if s := nextSSE(t, n); jsonOf(s.args) != want || s.withAck {
			t.Fatalf("plain from Node: %s, want %s", jsonOf(s.args), want)
		}
		if !c.classic {
			continue
		}
		if s := nextSSE(t, n); jsonOf(s.args) != `["from-emitter","e"]` {
			t.Fatalf("from the emitter: %+v", s)
		}
	}
	if !c.classic {
		if err := c.a.nsp.ServerSideEmit(ctx, "bin-sse", []byte{7}); err != nil {
			t.Fatal(err)
		}
		ev := c.peer.WaitEvent("binary sse", func(e nodepeer.Event) bool { return e.Kind == "sse" && e.Name == "bin-sse" })
		if jsonOf(ev.Args) != `[{"$bin":"Bw=="}]` {
			t.Fatalf("Node got %s", ev.Raw)
		}
		if s := nextSSE(t, c.b); jsonOf(s.args) != `["bin-sse","Bw=="]` {
			t.Fatalf("B got %s", jsonOf(s.args))
		}
	}
	if err := c.a.nsp.ServerSideEmit(ctx, "connection", 1); !errors.Is(err, errReservedSSE) {
		t.Fatalf("a reserved name: %v", err)
	}
}

// Binary arguments cross in both directions as binary.
func TestClassicBinary(t *testing.T) { runBinary(t, startCluster3(t, classicTrio)) }

func runBinary(t *testing.T, c *cluster3) {
	if err := c.a.nsp.To("r3").Emit("bin", []byte{1, 2, 3}, map[string]any{"nested": []byte{4}}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"b2", "n2"} {
		ev := c.clients[name].next().values()
		if jsonOf(ev) != `["bin",{"$bin":"AQID"},{"nested":{"$bin":"BA=="}}]` {
			t.Fatalf("%s got %s", name, jsonOf(ev))
		}
	}
	c.peer.Must("emit", map[string]any{"rooms": []string{"r2"}, "event": "bin", "args": []any{nodepeer.Bin([]byte{5, 6})}}, nil)
	for _, name := range []string{"a2", "b2"} {
		if ev := c.clients[name].next().values(); jsonOf(ev) != `["bin",{"$bin":"BQY="}]` {
			t.Fatalf("%s got %s", name, jsonOf(ev))
		}
	}
}

// 1,000 sequential broadcasts from A arrive in order on B's and on the Node peer's clients.
func TestClassicOrder(t *testing.T) { runOrder(t, startCluster3(t, classicTrio)) }

func runOrder(t *testing.T, c *cluster3) {
	const n = 1000
	for i := range n {
		if err := c.a.nsp.To("r1").Emit("seq", i); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"a1", "b1", "n1"} {
		for i := range n {
			ev := c.clients[name].next().values()
			if ev[0] != "seq" || ev[1] != float64(i) {
				t.Fatalf("%s: event %d is %v", name, i, ev)
			}
		}
	}
}

func jsonRaw(s string) any { return json.RawMessage(s) }

// outageRun drives a Redis fault under a stream of sequential broadcasts from send (one every
// 2 ms) and checks the bounds: the first call fails within ~1 s of the fault, calls fail fast
// while Redis is down, delivery resumes by itself, and each receiving client got exactly the
// calls that returned nil, in order (a failed call reached nobody, not even locally).
type outageRun struct {
	t    *testing.T
	send func(i int) error
	gate sync.Mutex // held by the sender around each call; the test takes it to pause the sender

	mu      sync.Mutex
	results []sendResult
	got     map[*client][]float64
}

type sendResult struct {
	err        error
	start, end time.Time
}

func (o *outageRun) count(ok bool, after time.Time) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, r := range o.results {
		if (r.err == nil) == ok && r.start.After(after) {
			n++
		}
	}
	return n
}

func (o *outageRun) firstError() (sendResult, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range o.results {
		if r.err != nil {
			return r, true
		}
	}
	return sendResult{}, false
}

// run sends until stop is closed; the returned channel is closed when the sender returned.
func (o *outageRun) run(stop <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(2 * time.Millisecond) // the pace of the load, not a wait
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			o.gate.Lock()
			start := time.Now()
			err := o.send(i)
			o.mu.Lock()
			o.results = append(o.results, sendResult{err: err, start: start, end: time.Now()})
			o.mu.Unlock()
			o.gate.Unlock()
		}
	}()
	return done
}

// settle pauses the sender and waits until every client got the last call that returned nil:
// a fault injected then hits no message Redis answered but had not yet written to its
// subscribers (pub/sub cannot keep those, in Node as here). The sender resumes with resume.
func (o *outageRun) settle(clients ...*client) (resume func()) {
	o.gate.Lock()
	o.mu.Lock()
	last := -1.0
	for i, r := range o.results {
		if r.err == nil {
			last = float64(i)
		}
	}
	o.mu.Unlock()
	for _, cl := range clients {
		for len(o.got[cl]) == 0 || o.got[cl][len(o.got[cl])-1] < last {
			ev := cl.next().values()
			o.got[cl] = append(o.got[cl], ev[1].(float64))
		}
	}
	return o.gate.Unlock
}

// check verifies the bounds once the run stopped; faultAt and resumedAt frame the outage.
func (o *outageRun) check(faultAt, resumedAt time.Time, clients ...*client) {
	t := o.t
	t.Helper()
	first, ok := o.firstError()
	if !ok {
		t.Fatalf("no call failed")
	}
	if d := first.end.Sub(faultAt); d > 1100*time.Millisecond {
		t.Fatalf("the first call failed %v after the fault, want <= ~1s", d)
	}
	var want []float64
	slow := 0
	for i, r := range o.results {
		if r.err == nil {
			want = append(want, float64(i))
			continue
		}
		if !errors.Is(r.err, socketio.ErrUnavailable) {
			t.Fatalf("call %d: %v, want ErrUnavailable", i, r.err)
		}
		if r.start.After(first.end) && r.end.Before(resumedAt) && r.end.Sub(r.start) > 100*time.Millisecond {
			slow++
		}
	}
	if slow > 0 {
		t.Fatalf("%d calls took more than 100 ms while Redis was known down", slow)
	}
	for _, cl := range clients {
		got := o.got[cl]
		for {
			ev := cl.next().values()
			if ev[0] == "end" {
				break
			}
			got = append(got, ev[1].(float64))
		}
		if !slices.Equal(got, want) {
			var missing, extra []string
			for _, w := range want {
				if !slices.Contains(got, w) {
					r := o.results[int(w)]
					missing = append(missing, fmt.Sprintf("%v (sent %v..%v after the fault)", w, r.start.Sub(faultAt), r.end.Sub(faultAt)))
				}
			}
			for _, g := range got {
				if !slices.Contains(want, g) {
					r := o.results[int(g)]
					extra = append(extra, fmt.Sprintf("%v (sent %v..%v after the fault: %v)", g, r.start.Sub(faultAt), r.end.Sub(faultAt), r.err))
				}
			}
			t.Fatalf("client %s got %d events, want the %d calls that returned nil (in order); first difference at %d; missing %v; extra %v",
				cl, len(got), len(want), firstDiff(got, want), missing, extra)
		}
	}
	t.Logf("%d calls: %d returned nil, %d failed; first failure %v after the fault",
		len(o.results), len(want), len(o.results)-len(want), first.end.Sub(faultAt))
}

func firstDiff(a, b []float64) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// fault injects and ends a Redis fault for outage tests: "stopped" is SIGSTOP while calls are
// in flight (then SIGCONT), "killed" is SIGKILL once the answered calls were delivered (then a
// restart, empty).
func fault(kind string, srv *pausable, o *outageRun, clients ...*client) (faultAt time.Time, recover func() time.Time) {
	if kind == "stopped" {
		faultAt = time.Now()
		srv.pause()
		return faultAt, func() time.Time { t := time.Now(); srv.resume(); return t }
	}
	resume := o.settle(clients...)
	faultAt = time.Now()
	srv.Stop()
	resume()
	return faultAt, func() time.Time { t := time.Now(); srv.restart(); return t }
}

// countedNodes is what a Redis backend last counted on a namespace's channel.
func countedNodes(b Backend, channel string) int64 {
	nc := b.(*redisBackend).nodes
	nc.mu.Lock()
	defer nc.mu.Unlock()
	return nc.counted[channel]
}

// A Redis stopped (SIGSTOP) then resumed, or killed then restarted, under broadcasts from A:
// see outageRun for what is checked, on A's own client, B's, and a Node peer's.
func TestClassicOutage(t *testing.T) { runOutage(t, "redis") }

func runOutage(t *testing.T, adapter string) {
	peerAdapter, counted := "redis", "socket.io-request#/#"
	if adapter == "redis-sharded" {
		peerAdapter, counted = "sharded", "socket.io#/#"
	}
	for _, kind := range []string{"stopped", "killed"} {
		t.Run(kind, func(t *testing.T) {
			srv := startPausable(t)
			cfg := Config{Name: adapter, RedisURL: srv.URL()}
			a, b := startNode(t, cfg, nil), startNode(t, cfg, nil)
			// The Node peer comes back a second after Redis: the recovery must wait for it.
			peer := nodepeer.Start(t, nodepeer.Options{Adapter: peerAdapter, RedisURL: srv.URL(), ReconnectDelay: time.Second})
			a1, b1, n1 := dial(t, a.url, "a1"), dial(t, b.url, "b1"), dial(t, peer.URL, "n1")
			a.socket(a1.sid).Join("r1")
			b.socket(b1.sid).Join("r1")
			peer.Must("join", map[string]any{"sid": n1.sid, "rooms": []string{"r1"}}, nil)
			peer.WaitServerCount("/", 3)
			waitFor(t, "three nodes counted", func() bool { return countedNodes(a.b, counted) == 3 })
			if adapter == "redis-sharded" {
				c := &cluster3{a: a, prefix: "socket.io"}
				c.waitChannel(t, "r1", "a1", "b1", "n1")
			}

			o := &outageRun{t: t, send: func(i int) error { return a.nsp.To("r1").Emit("seq", i) }, got: map[*client][]float64{}}
			stop := make(chan struct{})
			done := o.run(stop)
			defer func() {
				select {
				case <-stop:
				default:
					close(stop)
				}
				<-done
			}()
			start := time.Now()
			waitFor(t, "calls before the fault", func() bool { return o.count(true, start) >= 50 })
			faultAt, recover := fault(kind, srv, o, a1, b1, n1)
			waitFor(t, "a failed call", func() bool { _, ok := o.firstError(); return ok })
			waitFor(t, "calls failing while down", func() bool { return o.count(false, faultAt) >= 200 })
			if st, _ := a.b.Status(); st.Redis != "down" || st.Outages != 1 {
				t.Fatalf("status while down: %+v", st)
			}
			resumedAt := recover()
			waitFor(t, "calls after the recovery", func() bool { return o.count(true, resumedAt) >= 50 })
			close(stop)
			<-done
			waitFor(t, "the end marker", func() bool { return a.nsp.To("r1").Emit("end") == nil })
			o.check(faultAt, resumedAt, a1, b1, n1)
		})
	}
}
