package adapters

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/nodepeer"
)

// streamsInterop is a Go node (answerAsGo) and a Node server (@socket.io/redis-streams-adapter
// 0.3.1, with connection state recovery) in one cluster.
type streamsInterop struct {
	goNode *node
	peer   *nodepeer.Peer
}

func startStreamsInterop(t *testing.T) *streamsInterop {
	prefix := uniquePrefix(t)
	in := &streamsInterop{goNode: startStreamsNode(t, localRedis, prefix, time.Minute, (*node).answerAsGo)}
	in.peer = nodepeer.Start(t, nodepeer.Options{
		Adapter: "streams", RedisURL: localRedis, Prefix: prefix, Recovery: true,
		AdapterOptions: map[string]any{"sessionKeyPrefix": in.goNode.streams().sessionPrefix},
	})
	waitFor(t, "the Go node counts both", func() bool {
		n, err := in.goNode.nsp.Adapter().ServerCount(t.Context())
		return err == nil && n == 2
	})
	var n int
	in.peer.Must("serverCount", nil, &n)
	if n != 2 {
		t.Fatalf("the Node server counts %d servers, want 2", n)
	}
	return in
}

// nodeReads waits until the Node server reads the stream: it reads from "$" once its first
// XREAD runs, and misses what came before, so the Go node broadcasts until c (on the Node
// server) got one.
func (in *streamsInterop) nodeReads(t *testing.T, c *client) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for i := 1; len(c.named("warm-up")) == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatal("the Node server never read the stream")
		}
		if err := in.goNode.nsp.Emit("warm-up", i); err != nil {
			t.Fatal(err)
		}
		select {
		case <-c.more:
		case <-time.After(50 * time.Millisecond): // the pace of the warm-up broadcasts
		}
	}
}

// args is an event's arguments without its offset, as JSON.
func argsWithoutOffset(t *testing.T, e event) string {
	t.Helper()
	if len(e.Args) == 0 {
		t.Fatalf("event %s without arguments", e.Name)
	}
	var off string
	if json.Unmarshal(e.Args[len(e.Args)-1], &off) != nil || !streamOffset.MatchString(off) {
		t.Errorf("event %s: last argument %s is not a stream offset", e.Name, e.Args[len(e.Args)-1])
	}
	return jsonOf(e.Args[:len(e.Args)-1])
}

func TestStreamsNodeBroadcast(t *testing.T) {
	in := startStreamsInterop(t)
	g := in.goNode
	cg := dial(t, g.url, "")
	cp := dial(t, in.peer.URL, "")
	in.nodeReads(t, cp)
	g.socket(cg.sid).Join("r1")
	in.peer.Must("join", map[string]any{"sid": cp.sid, "rooms": []string{"r1", "r2"}}, nil)
	nodeEmit := func(args map[string]any) func() error {
		return func() error { _, err := in.peer.Call("emit", args); return err }
	}
	cases := []broadcastCase{
		{"node to all", nodeEmit(map[string]any{"event": "e", "args": []any{1, "x", map[string]any{"k": nil}}}),
			[]*client{cg, cp}, `[1,"x",{"k":null}]`},
		{"node to a room", nodeEmit(map[string]any{"rooms": []string{"r1"}, "event": "e", "args": []any{"r1"}}),
			[]*client{cg, cp}, `["r1"]`},
		{"node except a room", nodeEmit(map[string]any{"except": []string{"r2"}, "event": "e", "args": []any{"not r2"}}),
			[]*client{cg}, `["not r2"]`},
		{"node binary", nodeEmit(map[string]any{"event": "e", "args": []any{nodepeer.Bin([]byte{1, 2, 255}), map[string]any{"b": nodepeer.Bin([]byte{7})}}}),
			[]*client{cg, cp}, `[{"$bin":"AQL/"},{"b":{"$bin":"Bw=="}}]`},
		{"go to all", func() error { return g.nsp.Emit("e", 2, "y", map[string]any{"n": nil}) },
			[]*client{cg, cp}, `[2,"y",{"n":null}]`},
		{"go to a room on the Node server", func() error { return g.nsp.To("r2").Emit("e", "r2") },
			[]*client{cp}, `["r2"]`},
		{"go to a socket id on the Node server", func() error { return g.nsp.To(cp.sid).Emit("e", "you") },
			[]*client{cp}, `["you"]`},
		{"go binary", func() error { return g.nsp.To("r1").Emit("e", []byte{0, 9}, map[string]any{"b": []byte{8}}) },
			[]*client{cg, cp}, `[{"$bin":"AAk="},{"b":{"$bin":"CA=="}}]`},
	}
	all := []*client{cg, cp}
	checkBroadcasts(t, cases, all, func(t *testing.T, i int) {
		in.peer.Must("emit", map[string]any{"event": "marker", "args": []any{i}}, nil)
		for _, c := range all {
			c.waitEvent("marker", i+1)
		}
	}, argsWithoutOffset)
}

func TestStreamsNodeRequests(t *testing.T) {
	in := startStreamsInterop(t)
	g := in.goNode
	cg := dialAuth(t, g.url, "", map[string]any{"token": "go-client"})
	cp := dialAuth(t, in.peer.URL, "", map[string]any{"data": map[string]any{"n": 1}})
	in.nodeReads(t, cp)
	ctx := t.Context()

	t.Run("rooms", func(t *testing.T) {
		if err := g.nsp.To(cp.sid).SocketsJoin(ctx, "from-go"); err != nil {
			t.Fatal(err)
		}
		in.peer.Must("socketsJoin", map[string]any{"rooms": []string{cg.sid}, "join": []string{"from-node", "x"}}, nil)
		in.peer.Must("socketsLeave", map[string]any{"rooms": []string{cg.sid}, "leave": []string{"x"}}, nil)
		waitFor(t, "the Go socket in from-node", func() bool {
			return slices.Equal(g.socket(cg.sid).Rooms(), []string{"from-node"})
		})
		waitFor(t, "the Node socket in from-go", func() bool {
			socks := peerSockets(in.peer)
			return len(socks) == 1 && slices.Contains(socks[0].Rooms, "from-go")
		})
	})

	t.Run("fetchSockets from Go", func(t *testing.T) {
		got, err := g.nsp.All().FetchSockets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, rs := range got {
			ids = append(ids, rs.ID)
			if rs.ID == cp.sid {
				if d := jsonOf(rs.Data); d != `{"n":1,"who":"node"}` {
					t.Errorf("the Node socket's data %s", d)
				}
				if !slices.Contains(rs.Rooms, "from-go") || rs.Handshake.Query.Get("EIO") != "4" || rs.Handshake.Time.IsZero() {
					t.Errorf("the Node socket: rooms %q handshake %+v", rs.Rooms, rs.Handshake)
				}
			}
		}
		sort.Strings(ids)
		want := []string{cg.sid, cp.sid}
		sort.Strings(want)
		if !slices.Equal(ids, want) {
			t.Errorf("fetched %q, want %q", ids, want)
		}
	})

	t.Run("fetchSockets from Node", func(t *testing.T) {
		var got []peerSocket
		in.peer.Must("fetchSockets", map[string]any{"rooms": []string{"from-node"}}, &got)
		if len(got) != 1 || got[0].ID != cg.sid {
			t.Fatalf("fetched %+v, want the Go socket", got)
		}
		s := got[0]
		if !slices.Equal(s.Rooms, []string{cg.sid, "from-node"}) || s.Data["who"] != "go" {
			t.Errorf("the Go socket: rooms %q data %v", s.Rooms, s.Data)
		}
		auth, _ := s.Handshake["auth"].(map[string]any)
		if auth["token"] != "go-client" || !strings.HasPrefix(fmt.Sprint(s.Handshake["address"]), "127.0.0.1") || s.Handshake["issued"] == nil {
			t.Errorf("the Go socket's handshake %v", s.Handshake)
		}
	})

	t.Run("serverSideEmit", func(t *testing.T) {
		if err := g.nsp.ServerSideEmit(ctx, "go-sse", 1, []byte{5}); err != nil {
			t.Fatal(err)
		}
		ev := in.peer.WaitEvent("the Go serverSideEmit", func(e nodepeer.Event) bool { return e.Kind == "sse" && e.Name == "go-sse" })
		if s := jsonOf(ev.Args); s != `[1,{"$bin":"BQ=="}]` || ev.WithAck {
			t.Errorf("Node got %s (ack %v)", s, ev.WithAck)
		}
		answers, err := g.nsp.Adapter().(acker).ServerSideEmitWithAck(ctx, []any{"go-ask", "q"})
		if err != nil {
			t.Fatal(err)
		}
		if len(answers) != 1 || !strings.Contains(jsonOf(answers), `"from":"node"`) || !strings.Contains(jsonOf(answers), `"args":["q"]`) {
			t.Errorf("answers %s", jsonOf(answers))
		}
		in.peer.Must("serverSideEmit", map[string]any{"event": "node-sse", "args": []any{2, nodepeer.Bin([]byte{6})}}, nil)
		if got := nextSSE(t, g); jsonOf(got.args) != `["node-sse",2,"Bg=="]` || got.withAck {
			t.Errorf("Go got %+v", got)
		}
		var res struct {
			Err       *string `json:"err"`
			Responses []any   `json:"responses"`
		}
		in.peer.Must("serverSideEmitWithAck", map[string]any{"event": "node-ask", "args": []any{"p"}}, &res)
		if res.Err != nil || jsonOf(res.Responses) != `[{"args":["node-ask","p"],"from":"go"}]` {
			t.Errorf("Node's serverSideEmitWithAck: err %v responses %s", res.Err, jsonOf(res.Responses))
		}
		if got := nextSSE(t, g); !got.withAck {
			t.Errorf("Go got %+v", got)
		}
	})

	t.Run("broadcast with acks", func(t *testing.T) {
		cg.ackWith(func(e event) any { return "go-client:" + strings.Trim(e.arg(0), `"`) })
		cp.ackWith(func(e event) any { return "node-client:" + strings.Trim(e.arg(0), `"`) })
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		acks, timedOut, err := g.nsp.All().EmitWithAck(actx, "q", "from-go")
		if err != nil || timedOut {
			t.Fatalf("EmitWithAck: %v timedOut %v", err, timedOut)
		}
		var got []string
		for _, a := range acks {
			v, _ := a.Value(0)
			got = append(got, fmt.Sprint(v))
		}
		sort.Strings(got)
		if want := []string{"go-client:from-go", "node-client:from-go"}; !slices.Equal(got, want) {
			t.Errorf("acks %q, want %q", got, want)
		}
		var res struct {
			Err       *string  `json:"err"`
			Responses []string `json:"responses"`
		}
		in.peer.Must("emitWithAck", map[string]any{"event": "q", "args": []any{"from-node"}, "timeout": 5000}, &res)
		sort.Strings(res.Responses)
		if res.Err != nil || !slices.Equal(res.Responses, []string{"go-client:from-node", "node-client:from-node"}) {
			t.Errorf("Node's emitWithAck: err %v responses %q", res.Err, res.Responses)
		}
	})

	t.Run("disconnectSockets", func(t *testing.T) {
		in.peer.Must("disconnectSockets", map[string]any{"rooms": []string{cg.sid}}, nil)
		cg.waitDisconnect()
		if err := g.nsp.All().DisconnectSockets(ctx, false); err != nil {
			t.Fatal(err)
		}
		cp.waitDisconnect()
	})
}

// recoverOn connects to the server at base with c's session and offset and checks that the
// socket recovered its id.
func recoverOn(t *testing.T, base string, c *client, offset string) *client {
	t.Helper()
	r := dialAuth(t, base, "", map[string]any{"pid": c.pid, "offset": offset})
	if r.sid != c.sid {
		t.Fatalf("recovered id %s, want %s", r.sid, c.sid)
	}
	return r
}

// gotMissed checks that a recovered client got the missed events [1] and [3], each with its
// offset, and no "not-missed".
func gotMissed(t *testing.T, r *client) {
	t.Helper()
	r.waitEvent("missed", 2)
	got := []string{argsWithoutOffset(t, r.named("missed")[0]), argsWithoutOffset(t, r.named("missed")[1])}
	if !slices.Equal(got, []string{"[1]", "[3]"}) || len(r.named("not-missed")) != 0 {
		t.Errorf("missed %q, events %v", got, r.list())
	}
}

// TestStreamsNodeRecovery: sessions and offsets cross between Node and Go: a client that
// dropped from one recovers on the other, with its id, rooms and missed events.
func TestStreamsNodeRecovery(t *testing.T) {
	in := startStreamsInterop(t)
	g := in.goNode
	warm := dial(t, in.peer.URL, "")
	in.nodeReads(t, warm)

	t.Run("from Node to Go", func(t *testing.T) {
		c := dial(t, in.peer.URL, "")
		if c.pid == "" {
			t.Fatal("the Node server gave no pid")
		}
		in.peer.Must("join", map[string]any{"sid": c.sid, "rooms": []string{"nr"}}, nil)
		in.peer.Must("emit", map[string]any{"rooms": []string{"nr"}, "event": "before", "args": []any{0}}, nil)
		offset := c.dropKept(t, g, "before")
		if err := g.nsp.To("nr").Emit("missed", 1); err != nil {
			t.Fatal(err)
		}
		in.peer.Must("emit", map[string]any{"except": []string{"nr"}, "event": "not-missed", "args": []any{2}}, nil)
		in.peer.Must("emit", map[string]any{"event": "missed", "args": []any{3}}, nil)
		r := recoverOn(t, g.url, c, offset)
		gotMissed(t, r)
		if rooms := g.socket(r.sid).Rooms(); !slices.Equal(rooms, []string{"nr"}) {
			t.Errorf("recovered rooms %q", rooms)
		}
		if d := jsonOf(g.socket(r.sid).Data()); d != `{"who":"node"}` {
			t.Errorf("recovered data %s", d)
		}
	})

	t.Run("from Go to Node", func(t *testing.T) {
		c := dial(t, g.url, "")
		g.socket(c.sid).Join("gr")
		if err := g.nsp.To("gr").Emit("before", 0); err != nil {
			t.Fatal(err)
		}
		offset := c.dropKept(t, g, "before")
		in.peer.Must("emit", map[string]any{"rooms": []string{"gr"}, "event": "missed", "args": []any{1}}, nil)
		if err := g.nsp.Except("gr").Emit("not-missed", 2); err != nil {
			t.Fatal(err)
		}
		if err := g.nsp.To(c.sid).Emit("missed", 3); err != nil {
			t.Fatal(err)
		}
		r := recoverOn(t, in.peer.URL, c, offset)
		gotMissed(t, r)
		socks := peerSockets(in.peer)
		found := false
		for _, s := range socks {
			if s.ID == c.sid {
				found = true
				if !slices.Contains(s.Rooms, "gr") {
					t.Errorf("recovered rooms on Node %q", s.Rooms)
				}
			}
		}
		if !found {
			t.Errorf("the recovered socket is not on the Node server: %v", socks)
		}
	})
}
