package socketio

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"
)

func TestSocketEmit(t *testing.T) {
	ts, rec := startRecorded(t, Config{}, func(root *Namespace) { record(of(t, root.srv, "/custom")) })
	c, s := ts.connectRoot(rec)
	cases := []struct {
		name string
		emit func() error
		want string
	}{
		{"plain", func() error { return s.Emit("news", "a", 1, true, nil) }, `2["news","a",1,true,null]`},
		{"no arguments", func() error { return s.Emit("ping") }, `2["ping"]`},
		{"a struct with json tags", func() error {
			return s.Emit("user", struct {
				ID   string `json:"id"`
				Name string `json:"name,omitempty"`
			}{ID: "u1"})
		}, `2["user",{"id":"u1"}]`},
		{"no HTML escaping", func() error { return s.Emit("html", "<b>&</b>") }, `2["html","<b>&</b>"]`},
		{"numeric-looking name", func() error { return s.Emit("42", 1) }, `2["42",1]`},
		{"volatile", func() error { return s.EmitVolatile("tick", 1) }, `2["tick",1]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.emit(); err != nil {
				t.Fatal(err)
			}
			c.expect(tc.want)
		})
	}
	t.Run("reserved names refused", func(t *testing.T) {
		for name := range ReservedEvents {
			if s.Emit(name) == nil || s.EmitVolatile(name) == nil || ts.srv.Namespace("/").Emit(name) == nil {
				t.Fatalf("%q was emitted", name)
			}
			if _, err := s.EmitWithAck(context.Background(), name); err == nil {
				t.Fatalf("%q was emitted with an ack", name)
			}
			if _, _, err := ts.srv.Namespace("/").All().EmitWithAck(context.Background(), name); err == nil {
				t.Fatalf("%q was broadcast with an ack", name)
			}
		}
		if before := c.roundTrip("/", 1); len(before) != 0 {
			t.Fatalf("got %q", before)
		}
	})
	t.Run("custom namespace", func(t *testing.T) {
		c.connect("/custom", "")
		n := ts.srv.Namespace("/custom")
		waitFor(t, "the socket", func() bool { return n.Len() == 1 })
		if err := n.Sockets()[0].Emit("x", 1); err != nil {
			t.Fatal(err)
		}
		c.expect(`2/custom,["x",1]`)
	})
	t.Run("after disconnect", func(t *testing.T) {
		c.send("1")
		receive(t, "the disconnect", rec.disconnected)
		if err := s.Emit("late"); !errors.Is(err, ErrDisconnected) {
			t.Fatalf("Emit after disconnect: %v", err)
		}
		if _, err := s.EmitWithAck(context.Background(), "late"); !errors.Is(err, ErrDisconnected) {
			t.Fatalf("EmitWithAck after disconnect: %v", err)
		}
		// Nothing reached the client, whose connection is still open: were it sent, its
		// socket of "/" (connected again, or waiting to) would take an event of the old one.
		c.connect("/", "")
		if before := c.roundTrip("/", 2); len(before) != 0 {
			t.Fatalf("the client got %q from a disconnected socket", before)
		}
	})
}

func TestSocketEmitWithAck(t *testing.T) {
	ts, rec := startRecorded(t, Config{}, nil)
	c, s := ts.connectRoot(rec)

	type result struct {
		args *Args
		err  error
	}
	emit := func(ctx context.Context, event string, args ...any) chan result {
		ch := make(chan result, 1)
		go func() {
			a, err := s.EmitWithAck(ctx, event, args...)
			ch <- result{a, err}
		}()
		return ch
	}
	ackID := func(want string) int64 {
		t.Helper()
		p := parsePacket(t, c.msg())
		if p.typ != 2 || p.id < 0 {
			t.Fatalf("got %+v, want an event with an ack id", p)
		}
		b, _ := MarshalJSON(p.data)
		if string(b) != want {
			t.Fatalf("event %s, want %s", b, want)
		}
		return p.id
	}

	t.Run("ack", func(t *testing.T) {
		ch := emit(context.Background(), "ask", "q", 1)
		id := ackID(`["ask","q",1]`)
		c.send(fmt.Sprintf(`3%d["yes",{"n":2}]`, id))
		r := receive(t, "the ack", ch)
		if r.err != nil {
			t.Fatal(r.err)
		}
		vals, _ := r.args.Values()
		if b, _ := MarshalJSON(vals); string(b) != `["yes",{"n":2}]` {
			t.Fatalf("ack %s", b)
		}
		// A second ack with the same id is ignored.
		c.send(fmt.Sprintf(`3%d["again"]`, id))
		c.roundTrip("/", 1)
	})
	t.Run("ids differ", func(t *testing.T) {
		ch1 := emit(context.Background(), "one")
		id1 := ackID(`["one"]`)
		ch2 := emit(context.Background(), "two")
		id2 := ackID(`["two"]`)
		if id1 == id2 {
			t.Fatalf("both ids %d", id1)
		}
		c.send(fmt.Sprintf(`3%d[2]`, id2), fmt.Sprintf(`3%d[1]`, id1))
		for i, ch := range []chan result{ch1, ch2} {
			r := receive(t, "an ack", ch)
			if v, _ := r.args.Value(0); r.err != nil || v != float64(i+1) {
				t.Fatalf("ack %d: %v %v", i+1, v, r.err)
			}
		}
	})
	t.Run("context timeout", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		ch := emit(ctx, "ask")
		id := ackID(`["ask"]`)
		r := receive(t, "the timeout", ch)
		if !errors.Is(r.err, context.DeadlineExceeded) || r.args != nil {
			t.Fatalf("got %v %v, want the deadline", r.args, r.err)
		}
		// The late ack finds nothing waiting.
		c.send(fmt.Sprintf(`3%d["late"]`, id))
		c.roundTrip("/", 2)
		s.mu.Lock()
		left := len(s.acks)
		s.mu.Unlock()
		if left != 0 {
			t.Fatalf("%d acks still registered", left)
		}
	})
	t.Run("disconnect fails it", func(t *testing.T) {
		ch := emit(context.Background(), "ask")
		ackID(`["ask"]`)
		c.send("1")
		r := receive(t, "the failure", ch)
		if !errors.Is(r.err, ErrDisconnected) {
			t.Fatalf("got %v, want ErrDisconnected", r.err)
		}
	})
}

// broadcastSetup connects sockets s0..s3 to "/" with rooms: s0 {a, b}, s1 {b}, s2 {c}, s3 none.
func broadcastSetup(t *testing.T) (*testServer, []*rawClient, []*Socket) {
	t.Helper()
	ts, rec := startRecorded(t, Config{}, nil)
	rooms := [][]string{{"a", "b"}, {"b"}, {"c"}, nil}
	clients := make([]*rawClient, len(rooms))
	sockets := make([]*Socket, len(rooms))
	for i := range rooms {
		clients[i] = ts.dial()
		sid, _ := clients[i].connect("/", "")
		sockets[i] = receive(t, "OnConnection", rec.connected)
		if sockets[i].ID() != sid {
			t.Fatal("OnConnection out of order")
		}
		sockets[i].Join(rooms[i]...)
	}
	return ts, clients, sockets
}

// received reads, on every client, the events before an "end" broadcast, as "name:arg".
func received(t *testing.T, n *Namespace, clients []*rawClient) [][]string {
	t.Helper()
	if err := n.Emit("end"); err != nil {
		t.Fatal(err)
	}
	out := make([][]string, len(clients))
	for i, c := range clients {
		for {
			p := parsePacket(t, c.msg())
			args := p.data.([]any)
			if args[0] == "end" {
				break
			}
			out[i] = append(out[i], fmt.Sprint(args...))
		}
	}
	return out
}

func TestBroadcast(t *testing.T) {
	ts, clients, sockets := broadcastSetup(t)
	n := ts.srv.Namespace("/")
	cases := []struct {
		name string
		emit func() error
		want [4]bool // which of s0..s3 get it
	}{
		{"all", func() error { return n.Emit("x") }, [4]bool{true, true, true, true}},
		{"All()", func() error { return n.All().Emit("x") }, [4]bool{true, true, true, true}},
		{"one room", func() error { return n.To("b").Emit("x") }, [4]bool{true, true, false, false}},
		{"two rooms, a socket in both gets it once", func() error { return n.To("a", "b").Emit("x") }, [4]bool{true, true, false, false}},
		{"To chained", func() error { return n.To("a").To("c").Emit("x") }, [4]bool{true, false, true, false}},
		{"three rooms", func() error { return n.To("a", "b", "c").Emit("x") }, [4]bool{true, true, true, false}},
		{"a socket id", func() error { return n.To(sockets[3].ID()).Emit("x") }, [4]bool{false, false, false, true}},
		{"a socket id and its room", func() error { return n.To(sockets[2].ID(), "c").Emit("x") }, [4]bool{false, false, true, false}},
		{"unknown room", func() error { return n.To("nope").Emit("x") }, [4]bool{}},
		{"except a room", func() error { return n.Except("b").Emit("x") }, [4]bool{false, false, true, true}},
		{"except a socket id", func() error { return n.Except(sockets[0].ID()).Emit("x") }, [4]bool{false, true, true, true}},
		{"rooms except a room", func() error { return n.To("b", "c").Except("a").Emit("x") }, [4]bool{false, true, true, false}},
		{"except two", func() error { return n.Except("a").Except("c").Emit("x") }, [4]bool{false, true, false, true}},
		{"Socket.To excludes itself", func() error { return sockets[0].To("b").Emit("x") }, [4]bool{false, true, false, false}},
		{"Socket.To its own id", func() error { return sockets[0].To(sockets[0].ID(), "c").Emit("x") }, [4]bool{false, false, true, false}},
		{"Socket.Broadcast", func() error { return sockets[1].Broadcast().Emit("x") }, [4]bool{true, false, true, true}},
		{"volatile", func() error { return n.To("c").Volatile().Emit("x") }, [4]bool{false, false, true, false}},
		{"local", func() error { return n.To("a").Local().Emit("x") }, [4]bool{true, false, false, false}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.emit(); err != nil {
				t.Fatal(err)
			}
			got := received(t, n, clients)
			for i, want := range tc.want {
				w := []string(nil)
				if want {
					w = []string{"x"}
				}
				if !slices.Equal(got[i], w) {
					t.Fatalf("s%d got %q, want %q", i, got[i], w)
				}
			}
		})
	}
	t.Run("an operator can be reused and narrowing does not change it", func(t *testing.T) {
		b := n.To("b")
		_ = b.Except("a")
		_ = b.To("c")
		if err := b.Emit("x"); err != nil {
			t.Fatal(err)
		}
		if err := b.Emit("x"); err != nil {
			t.Fatal(err)
		}
		got := received(t, n, clients)
		if len(got[0]) != 2 || len(got[1]) != 2 || len(got[2]) != 0 || len(got[3]) != 0 {
			t.Fatalf("got %q", got)
		}
		if o := b.Options(); !slices.Equal(o.Rooms, []string{"b"}) || len(o.Except) != 0 {
			t.Fatalf("options changed: %+v", o)
		}
	})
}

func TestRooms(t *testing.T) {
	type change struct {
		sid, room string
		joined    bool
	}
	var mu sync.Mutex
	var changes []change
	ts, rec := startRecorded(t, Config{}, func(n *Namespace) {
		n.OnRoom(func(s *Socket, room string, joined bool) {
			mu.Lock()
			changes = append(changes, change{s.ID(), room, joined})
			mu.Unlock()
		})
	})
	takeChanges := func() []change {
		mu.Lock()
		defer mu.Unlock()
		out := changes
		changes = nil
		return out
	}
	c := ts.dial()
	sid, _ := c.connect("/", "")
	s := receive(t, "OnConnection", rec.connected)
	n := ts.srv.Namespace("/")

	if rooms := s.Rooms(); len(rooms) != 0 || !s.In(sid) {
		t.Fatalf("a new socket: rooms %v, in its id %v", rooms, s.In(sid))
	}
	if got := takeChanges(); len(got) != 0 {
		t.Fatalf("its own id was reported as a room: %v", got)
	}
	s.Join("a", "b", "a", sid)
	if rooms := s.Rooms(); !slices.Equal(rooms, []string{"a", "b"}) || !s.In("a") || s.In("c") {
		t.Fatalf("rooms %v", rooms)
	}
	if got := takeChanges(); !slices.Equal(got, []change{{sid, "a", true}, {sid, "b", true}}) {
		t.Fatalf("OnRoom after Join: %v", got)
	}
	s.Join("a")
	s.Leave("nope")
	if got := takeChanges(); len(got) != 0 {
		t.Fatalf("OnRoom for no change: %v", got)
	}
	rooms := n.Adapter().Rooms()
	sort.Strings(rooms)
	if !slices.Equal(rooms, []string{"a", "b"}) || n.Local().RoomSize("a") != 1 {
		t.Fatalf("adapter rooms %v", rooms)
	}
	s.Leave("a")
	if rooms := s.Rooms(); !slices.Equal(rooms, []string{"b"}) || s.In("a") {
		t.Fatalf("after Leave: %v", rooms)
	}
	if got := takeChanges(); !slices.Equal(got, []change{{sid, "a", false}}) {
		t.Fatalf("OnRoom after Leave: %v", got)
	}
	if rooms := n.Adapter().Rooms(); !slices.Equal(rooms, []string{"b"}) {
		t.Fatalf("an empty room is kept: %v", rooms)
	}

	left := make(chan []string, 1)
	n.OnDisconnect(func(s *Socket, reason string) { left <- s.Rooms() })
	c.send("1")
	if got := receive(t, "OnDisconnect", left); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("Rooms in OnDisconnect: %v", got)
	}
	if got := takeChanges(); !slices.Equal(got, []change{{sid, "b", false}}) {
		t.Fatalf("OnRoom at disconnect: %v", got)
	}
	if len(n.Adapter().Rooms()) != 0 {
		t.Fatalf("rooms left: %v", n.Adapter().Rooms())
	}
	s.Join("z")
	if n.Local().RoomSize("z") != 0 {
		t.Fatal("a disconnected socket joined a room")
	}
}

func TestBroadcastEmitWithAck(t *testing.T) {
	ts, clients, sockets := broadcastSetup(t)
	n := ts.srv.Namespace("/")
	type result struct {
		acks     []*Args
		timedOut bool
		err      error
	}
	emit := func(ctx context.Context, b *BroadcastOperator) chan result {
		ch := make(chan result, 1)
		go func() {
			acks, timedOut, err := b.EmitWithAck(ctx, "ask", "q")
			ch <- result{acks, timedOut, err}
		}()
		return ch
	}
	// answer reads the event on each client and acks it with the client's index.
	answer := func(which ...int) {
		t.Helper()
		for _, i := range which {
			p := parsePacket(t, clients[i].msg())
			if p.typ != 2 || p.id < 0 {
				t.Fatalf("client %d got %+v", i, p)
			}
			clients[i].send(fmt.Sprintf(`3%d[%d]`, p.id, i))
		}
	}
	values := func(r result) []string {
		var out []string
		for _, a := range r.acks {
			if a == nil {
				out = append(out, "<nil>")
				continue
			}
			v, _ := a.Value(0)
			out = append(out, fmt.Sprint(v))
		}
		sort.Strings(out)
		return out
	}

	t.Run("every ack", func(t *testing.T) {
		ch := emit(context.Background(), n.To("a", "b", "c"))
		answer(0, 1, 2)
		r := receive(t, "the acks", ch)
		if r.err != nil || r.timedOut || !slices.Equal(values(r), []string{"0", "1", "2"}) {
			t.Fatalf("acks %v timedOut %v err %v", values(r), r.timedOut, r.err)
		}
	})
	t.Run("one missing", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		ch := emit(ctx, n.Except("c"))
		answer(0, 1)
		clients[3].msg() // received, never answered
		r := receive(t, "the timeout", ch)
		if r.err != nil || !r.timedOut || !slices.Equal(values(r), []string{"0", "1"}) {
			t.Fatalf("acks %v timedOut %v err %v", values(r), r.timedOut, r.err)
		}
	})
	t.Run("no socket", func(t *testing.T) {
		r := receive(t, "the answer", emit(context.Background(), n.To("nope")))
		if r.err != nil || r.timedOut || len(r.acks) != 0 {
			t.Fatalf("acks %v timedOut %v err %v", values(r), r.timedOut, r.err)
		}
	})
	t.Run("Socket.To excludes itself", func(t *testing.T) {
		ch := emit(context.Background(), sockets[0].To("a", "b"))
		answer(1)
		r := receive(t, "the acks", ch)
		if r.timedOut || !slices.Equal(values(r), []string{"1"}) {
			t.Fatalf("acks %v timedOut %v", values(r), r.timedOut)
		}
	})
	t.Run("a socket that disconnects gives no ack", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		ch := emit(ctx, n.To("b"))
		answer(0)
		clients[1].msg()
		clients[1].send("1")
		r := receive(t, "the answer", ch)
		if !r.timedOut || !slices.Equal(values(r), []string{"0"}) {
			t.Fatalf("acks %v timedOut %v: a disconnected socket counted as an ack", values(r), r.timedOut)
		}
	})
}

func TestLocalAdapterOperations(t *testing.T) {
	ts, clients, sockets := broadcastSetup(t)
	n := ts.srv.Namespace("/")
	ctx := context.Background()
	ids := func(rs []RemoteSocket) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		sort.Strings(out)
		return out
	}
	sids := func(idx ...int) []string {
		var out []string
		for _, i := range idx {
			out = append(out, sockets[i].ID())
		}
		sort.Strings(out)
		return out
	}

	t.Run("FetchSockets", func(t *testing.T) {
		rs, err := n.To("a", "b").FetchSockets(ctx)
		if err != nil || !slices.Equal(ids(rs), sids(0, 1)) {
			t.Fatalf("got %v %v, want %v", ids(rs), err, sids(0, 1))
		}
		for _, r := range rs {
			if r.Local == nil || !slices.Equal(r.Rooms, r.Local.Rooms()) || r.Handshake.Address == "" {
				t.Fatalf("remote socket %+v", r)
			}
		}
		all, _ := n.All().FetchSockets(ctx)
		local, _ := n.Except("c").Local().FetchSockets(ctx)
		if len(all) != 4 || !slices.Equal(ids(local), sids(0, 1, 3)) {
			t.Fatalf("all %v, except c %v", ids(all), ids(local))
		}
		sockets[1].SetData(map[string]any{"k": "v"})
		rs, _ = n.To(sockets[1].ID()).FetchSockets(ctx)
		if len(rs) != 1 || fmt.Sprint(rs[0].Data) != "map[k:v]" {
			t.Fatalf("data %v", rs)
		}
	})
	t.Run("SocketsJoin and SocketsLeave", func(t *testing.T) {
		if err := n.To("b").SocketsJoin(ctx, "d", "e"); err != nil {
			t.Fatal(err)
		}
		if n.Local().RoomSize("d") != 2 || !sockets[1].In("e") {
			t.Fatalf("room d has %d", n.Local().RoomSize("d"))
		}
		if err := n.Except("a").SocketsLeave(ctx, "d"); err != nil {
			t.Fatal(err)
		}
		if !sockets[0].In("d") || sockets[1].In("d") {
			t.Fatal("SocketsLeave left the wrong ones")
		}
		if err := n.All().Local().SocketsLeave(ctx, "d", "e"); err != nil {
			t.Fatal(err)
		}
		if err := n.To(sockets[3].ID()).Local().SocketsJoin(ctx, "f"); err != nil {
			t.Fatal(err)
		}
		if n.Local().RoomSize("d")+n.Local().RoomSize("e") != 0 || !slices.Equal(sockets[3].Rooms(), []string{"f"}) {
			t.Fatalf("rooms %v", n.Adapter().Rooms())
		}
	})
	t.Run("DisconnectSockets", func(t *testing.T) {
		discs := make(chan disconnect, 8)
		n.OnDisconnect(func(s *Socket, reason string) { discs <- disconnect{s.ID(), reason} })
		if err := n.To("c").DisconnectSockets(ctx, false); err != nil {
			t.Fatal(err)
		}
		clients[2].expect("1")
		if d := receive(t, "the disconnect", discs); d.sid != sockets[2].ID() || d.reason != ReasonServerDisconnect {
			t.Fatalf("disconnect %+v", d)
		}
		// The connection stays, only the namespace went: it connects again.
		clients[2].connect("/", "")
		clients[2].roundTrip("/", 1)
		if err := n.To(sockets[3].ID()).DisconnectSockets(ctx, true); err != nil {
			t.Fatal(err)
		}
		if got := clients[3].waitClosed(); !slices.Equal(got, []string{"1"}) {
			t.Fatalf("close: got %q", got)
		}
		if d := receive(t, "the disconnect", discs); d.sid != sockets[3].ID() || d.reason != ReasonServerDisconnect {
			t.Fatalf("disconnect %+v", d)
		}
		if n.Len() != 3 {
			t.Fatalf("%d sockets left, want s0, s1 and s2's new one", n.Len())
		}
	})
	t.Run("ServerCount and ServerSideEmit", func(t *testing.T) {
		if c, err := n.Adapter().ServerCount(ctx); c != 1 || err != nil {
			t.Fatalf("ServerCount %d %v", c, err)
		}
		if err := n.ServerSideEmit(ctx, "hello"); err != nil {
			t.Fatal(err)
		}
		if n.ServerSideEvent([]any{"x"}, nil) {
			t.Fatal("a server-side event without handler was taken")
		}
		got := make(chan []any, 1)
		n.OnServerSideEmit(func(args []any, ack func(...any)) { got <- args })
		if !n.ServerSideEvent([]any{"x", 1}, nil) || fmt.Sprint(receive(t, "the event", got)) != "[x 1]" {
			t.Fatal("server-side event not handled")
		}
	})
}

// TestEmitWithAckFromItsOwnHandler: a handler that asks its client something and waits for the
// answer (Node's `await socket.emitWithAck(...)` in a listener). The client's ACK went to the
// socket's queue, behind the handler waiting for it: it waited until its context ended.
func TestEmitWithAckFromItsOwnHandler(t *testing.T) {
	type result struct {
		answer any
		err    error
	}
	results := make(chan result, 1)
	ts := startServer(t, Config{}, func(srv *Server) {
		of(t, srv, "/").OnEvent(func(s *Socket, ev *Event) {
			ctx, cancel := context.WithTimeout(s.Context(), waitTimeout)
			defer cancel()
			a, err := s.EmitWithAck(ctx, "confirm?")
			var v any
			if err == nil {
				v, _ = a.Value(0)
			}
			results <- result{v, err}
			ev.Ack("done")
		})
	})
	c := ts.dial()
	c.connect("/", "")
	c.send(`25["delete"]`)
	p := parsePacket(t, c.msg())
	if p.typ != 2 || p.id < 0 {
		t.Fatalf("got %+v", p)
	}
	start := time.Now()
	c.send(fmt.Sprintf(`3%d["yes"]`, p.id))
	r := receive(t, "the handler", results)
	if r.err != nil || r.answer != "yes" {
		t.Fatalf("got %v %v after %v", r.answer, r.err, time.Since(start))
	}
	c.expect(`35["done"]`)
}

// TestAcksAreNotQueuedBehindEvents: a socket whose queue is full still gets its acks.
func TestAcksAreNotQueuedBehindEvents(t *testing.T) {
	release := make(chan struct{})
	blocked := make(chan *Socket, 1)
	ts := startServer(t, Config{MaxQueue: 2}, func(srv *Server) {
		of(t, srv, "/").OnEvent(func(s *Socket, ev *Event) {
			if ev.Name == "block" {
				blocked <- s
				<-release
			}
		})
	})
	defer close(release)
	c := ts.dial()
	c.connect("/", "")
	c.send(`2["block"]`)
	s := receive(t, "the handler", blocked)
	c.send(`2["a"]`, `2["b"]`, `2["overflow"]`) // the queue is full
	errs := make(chan error, 1)
	go func() {
		_, err := s.EmitWithAck(context.Background(), "q")
		errs <- err
	}()
	p := parsePacket(t, c.msg())
	c.send(fmt.Sprintf(`3%d[]`, p.id))
	if err := receive(t, "the ack", errs); err != nil {
		t.Fatal(err)
	}
}
