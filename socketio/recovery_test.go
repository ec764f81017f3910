package socketio

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// recoverySetup serves "/" with connection state recovery; every socket that did not recover
// joins the rooms its auth lists ("rooms": "a,b").
func recoverySetup(t *testing.T, cfg Config) (*testServer, *recorder) {
	t.Helper()
	if cfg.RecoveryWindow == 0 {
		cfg.RecoveryWindow = time.Minute
	}
	var rec *recorder
	ts := startServer(t, cfg, func(srv *Server) {
		n := of(t, srv, "/")
		n.OnConnection(func(s *Socket) {
			if rooms, _ := s.Handshake().Auth["rooms"].(string); rooms != "" && !s.Recovered() {
				s.Join(strings.Split(rooms, ",")...)
			}
		})
		rec = record(n)
	})
	return ts, rec
}

// sessions is what the namespace's recovery store holds.
func sessions(n *Namespace) (sessions, packets int, bytes int64) {
	return n.Local().sessions.stats()
}

// event reads an event and returns its name, its arguments but the last, and its offset (the last
// argument, "" when it is not a string).
func (c *rawClient) event() (name string, args []any, offset string) {
	c.t.Helper()
	p := parsePacket(c.t, c.msg())
	data, ok := p.data.([]any)
	if p.typ != 2 || !ok || len(data) == 0 {
		c.t.Fatalf("got %+v, want an event", p)
	}
	name, _ = data[0].(string)
	args = data[1:]
	if len(args) > 0 {
		if off, ok := args[len(args)-1].(string); ok {
			return name, args[:len(args)-1], off
		}
	}
	return name, args, ""
}

// drop ends c from the client side and waits until the server kept its session.
func drop(t *testing.T, c *rawClient, rec *recorder, n *Namespace, sid string) {
	t.Helper()
	before, _, _ := sessions(n)
	c.close()
	for {
		d := receive(t, "the disconnect", rec.disconnected)
		if d.sid == sid {
			if d.reason != "transport close" && d.reason != "transport error" { // a write may fail first
				t.Fatalf("reason %q", d.reason)
			}
			break
		}
	}
	if got, _, _ := sessions(n); got != before+1 {
		t.Fatalf("%d sessions kept, want %d", got, before+1)
	}
}

// reconnect sends a CONNECT to "/" with auth and reads its reply, keeping the events that come
// before it for event(): a recovered socket's missed events may precede the reply (Node sends
// them first; socket.io-client holds them until it is connected, then emits them in order).
func (c *rawClient) reconnect(auth string) (sid, pid string) {
	c.t.Helper()
	c.send(connectPacket("/", auth))
	var before []string
	for {
		p := c.msg()
		if strings.HasPrefix(p, "0{") {
			c.early = append(before, c.early...)
			c.early = append([]string{p}, c.early...)
			sid, pid = c.connected("/")
			return sid, pid
		}
		if !strings.HasPrefix(p, "2[") {
			c.t.Fatalf("before the CONNECT reply: %q", p)
		}
		before = append(before, p)
	}
}

func recoverAuth(pid, offset string) string {
	return fmt.Sprintf(`{"pid":%q,"offset":%q}`, pid, offset)
}

func TestRecovery(t *testing.T) {
	ts, rec := recoverySetup(t, Config{})
	n := ts.srv.Namespace("/")
	c := ts.dial()
	sid, pid := c.connect("/", `{"rooms":"a,b"}`)
	old := receive(t, "OnConnection", rec.connected)
	old.SetData(map[string]any{"user": "u1"})
	other := ts.dial()
	other.connect("/", `{"rooms":"z"}`)
	receive(t, "OnConnection", rec.connected)

	// Broadcasts to a room carry an offset, as Node's do; the client keeps the last one.
	if err := n.To("a").Emit("e", 1); err != nil {
		t.Fatal(err)
	}
	name, args, off1 := c.event()
	if name != "e" || fmt.Sprint(args) != "[1]" || off1 == "" {
		t.Fatalf("event %q %v offset %q", name, args, off1)
	}
	if err := n.To("b").Emit("e", 2); err != nil {
		t.Fatal(err)
	}
	_, _, off2 := c.event()
	if off2 == off1 {
		t.Fatalf("two events with offset %q", off1)
	}
	// So does the socket's own emit.
	if err := old.Emit("own", 0); err != nil {
		t.Fatal(err)
	}
	if name, _, off := c.event(); name != "own" || off == "" {
		t.Fatalf("Socket.Emit: %q offset %q", name, off)
	}
	// Volatile and ack'd emits do not.
	if err := n.To("a").Volatile().Emit("vol"); err != nil {
		t.Fatal(err)
	}
	if name, args, off := c.event(); name != "vol" || len(args) != 0 || off != "" {
		t.Fatalf("volatile: %q %v offset %q", name, args, off)
	}
	if err := old.EmitVolatile("svol"); err != nil {
		t.Fatal(err)
	}
	if name, _, off := c.event(); name != "svol" || off != "" {
		t.Fatalf("Socket.EmitVolatile: %q offset %q", name, off)
	}
	c.roundTrip("/", 1)

	// The client got events 1 and 2 but reports the first: it gets everything after it.
	drop(t, c, rec, n, sid)
	emits := []func() error{
		func() error { return n.To("a").Emit("m", 3) },                                   // kept: room a
		func() error { return n.To("z").Emit("not-mine", 0) },                            // another room
		func() error { return n.Emit("m", 4) },                                           // kept: everyone
		func() error { return n.To("a").Except("b").Emit("not-mine", 0) },                // excluded by b
		func() error { return n.To(sid).Emit("m", 5) },                                   // kept: its id
		func() error { return old.Emit("m", 6) },                                         // kept: Socket.Emit
		func() error { return n.To("a").Volatile().Emit("not-kept", 0) },                 // volatile
		func() error { return n.Except(sid).Emit("not-mine", 0) },                        // excluded by id
		func() error { return n.To("b", "z").Emit("m", 7) },                              // kept: room b
		func() error { return old.To("a").Emit("not-mine", 0) },                          // from itself
		func() error { _, _, err := n.To("a").EmitWithAck(ctxNow(), "ack"); return err }, // ack'd
		func() error { old.EmitVolatile("not-kept"); return nil },                        // volatile, gone
	}
	for i, emit := range emits {
		if err := emit(); err != nil {
			t.Fatalf("emit %d: %v", i, err)
		}
	}
	c2 := ts.dial()
	sid2, pid2 := c2.reconnect(recoverAuth(pid, off1))
	if sid2 != sid || pid2 != pid {
		t.Fatalf("recovered as %s/%s, want %s/%s", sid2, pid2, sid, pid)
	}
	want := []string{"e [2]", "own [0]", "m [3]", "m [4]", "m [5]", "m [6]", "m [7]"}
	var got []string
	var last string
	for range want {
		name, args, off := c2.event()
		if off == "" || off == last {
			t.Fatalf("missed event %q without a fresh offset (%q)", name, off)
		}
		last = off
		got = append(got, fmt.Sprint(name, " ", args))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("missed events %q, want %q", got, want)
	}
	if before := c2.roundTrip("/", 2); len(before) != 0 {
		t.Fatalf("more after the missed events: %q", before)
	}
	s := receive(t, "OnConnection of the recovered socket", rec.connected)
	if s.ID() != sid || !s.Recovered() || s == old {
		t.Fatalf("socket %s recovered %v", s.ID(), s.Recovered())
	}
	rooms := s.Rooms()
	slices.Sort(rooms)
	if !slices.Equal(rooms, []string{"a", "b"}) || fmt.Sprint(s.Data()) != "map[user:u1]" || n.Socket(sid) != s {
		t.Fatalf("rooms %v data %v", rooms, s.Data())
	}
	if got, _, _ := sessions(n); got != 0 {
		t.Fatalf("%d sessions left", got)
	}
	// It is in its rooms again.
	if err := n.To("b").Emit("live"); err != nil {
		t.Fatal(err)
	}
	if name, _, _ := c2.event(); name != "live" {
		t.Fatalf("got %q", name)
	}

	t.Run("a session is taken once", func(t *testing.T) {
		c3 := ts.dial()
		sid3, _ := c3.reconnect(recoverAuth(pid, off1))
		if sid3 == sid {
			t.Fatal("recovered twice")
		}
		if s := receive(t, "OnConnection", rec.connected); s.Recovered() {
			t.Fatal("Recovered() on the second try")
		}
		if before := c3.roundTrip("/", 3); len(before) != 0 {
			t.Fatalf("got %q", before)
		}
	})
}

func ctxNow() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	_ = cancel // expires by itself
	return ctx
}

func TestRecoveryRefused(t *testing.T) {
	cases := []struct {
		name   string
		cfg    Config
		before func(t *testing.T, n *Namespace, pid string) // after the drop, before the reconnect
		auth   func(pid, offset string) string
	}{
		{"window expired", Config{}, func(t *testing.T, n *Namespace, pid string) {
			st := n.Local().sessions
			st.mu.Lock()
			st.sessions[pid].DisconnectedAt = time.Now().Add(-2 * time.Minute)
			st.mu.Unlock()
		}, recoverAuth},
		{"unknown pid", Config{}, nil, func(pid, off string) string { return recoverAuth("zz"+pid, off) }},
		{"unknown offset", Config{}, nil, func(pid, off string) string { return recoverAuth(pid, off+"0") }},
		{"no offset", Config{}, nil, func(pid, off string) string { return fmt.Sprintf(`{"pid":%q}`, pid) }},
		{"offset not a string", Config{}, nil, func(pid, off string) string { return fmt.Sprintf(`{"pid":%q,"offset":1}`, pid) }},
		{"offset pushed out by RecoveryMaxBytes", Config{RecoveryMaxBytes: 8 << 10}, func(t *testing.T, n *Namespace, pid string) {
			for i := range 100 {
				if err := n.To("a").Emit("filler", strings.Repeat("x", 200), i); err != nil {
					t.Fatal(err)
				}
			}
			if _, _, b := sessions(n); b > 8<<10 {
				t.Fatalf("the store holds %d bytes, over its bound", b)
			}
		}, recoverAuth},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts, rec := recoverySetup(t, tc.cfg)
			n := ts.srv.Namespace("/")
			c := ts.dial()
			sid, pid := c.connect("/", `{"rooms":"a"}`)
			receive(t, "OnConnection", rec.connected)
			if err := n.To("a").Emit("e", 1); err != nil {
				t.Fatal(err)
			}
			_, _, off := c.event()
			drop(t, c, rec, n, sid)
			if err := n.To("a").Emit("missed", 2); err != nil {
				t.Fatal(err)
			}
			if tc.before != nil {
				tc.before(t, n, pid)
			}
			c2 := ts.dial()
			sid2, pid2 := c2.reconnect(tc.auth(pid, off))
			if sid2 == sid || pid2 == pid || pid2 == "" {
				t.Fatalf("reconnected as %s/%s: recovered", sid2, pid2)
			}
			s := receive(t, "OnConnection", rec.connected)
			if s.Recovered() || s.ID() != sid2 {
				t.Fatal("Recovered()")
			}
			if rooms := s.Rooms(); len(rooms) != 0 {
				t.Fatalf("rooms %v restored without recovery", rooms)
			}
			if before := c2.roundTrip("/", 1); len(before) != 0 {
				t.Fatalf("a socket not recovered got %q", before)
			}
		})
	}
	t.Run("within the bound, the same recovers", func(t *testing.T) {
		ts, rec := recoverySetup(t, Config{RecoveryMaxBytes: 8 << 10})
		n := ts.srv.Namespace("/")
		c := ts.dial()
		sid, pid := c.connect("/", `{"rooms":"a"}`)
		receive(t, "OnConnection", rec.connected)
		_ = n.To("a").Emit("e", 1)
		_, _, off := c.event()
		drop(t, c, rec, n, sid)
		for i := range 5 {
			_ = n.To("a").Emit("filler", strings.Repeat("x", 200), i)
		}
		c2 := ts.dial()
		if sid2, _ := c2.reconnect(recoverAuth(pid, off)); sid2 != sid {
			t.Fatal("not recovered")
		}
		for i := range 5 {
			if name, args, _ := c2.event(); name != "filler" || args[1] != float64(i) {
				t.Fatalf("got %q %v", name, args)
			}
		}
	})
	t.Run("a namespace the client left keeps no session", func(t *testing.T) {
		ts, rec := recoverySetup(t, Config{})
		n := ts.srv.Namespace("/")
		c := ts.dial()
		c.connect("/", "")
		receive(t, "OnConnection", rec.connected)
		c.send("1")
		receive(t, "the disconnect", rec.disconnected)
		if got, _, _ := sessions(n); got != 0 {
			t.Fatalf("%d sessions", got)
		}
	})
}

// TestRecoveryWhileBroadcasting: a socket that drops and recovers while its room gets a steady
// stream of events sees every event once, in order: the missed ones, then the live ones, with
// no gap between them and nothing twice.
func TestRecoveryWhileBroadcasting(t *testing.T) {
	const total = 5000
	ts, rec := recoverySetup(t, Config{})
	n := ts.srv.Namespace("/")
	c := ts.dial()
	sid, pid := c.connect("/", `{"rooms":"a"}`)
	receive(t, "OnConnection", rec.connected)

	var sent atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range total {
			select {
			case <-stop:
				return
			default:
			}
			if err := n.To("a").Emit("seq", i); err != nil {
				return
			}
			sent.Store(int64(i + 1))
		}
	}()
	defer func() { close(stop); <-done }()

	next := 0
	var off string
	read := func(cl *rawClient, until int) {
		t.Helper()
		for next < until {
			name, args, o := cl.event()
			if name != "seq" || len(args) != 1 || args[0] != float64(next) {
				t.Fatalf("got %q %v, want seq %d", name, args, next)
			}
			next++
			off = o
		}
	}
	read(c, 100)
	// Drop while events are still coming; what was in flight is lost with the connection.
	drop(t, c, rec, n, sid)
	c2 := ts.dial()
	atReconnect := sent.Load()
	if sid2, _ := c2.reconnect(recoverAuth(pid, off)); sid2 != sid {
		t.Fatal("not recovered")
	}
	t.Logf("dropped after %d, %d sent at the reconnect, %d after its answer", next, atReconnect, sent.Load())
	read(c2, total)
	if next != total {
		t.Fatalf("read %d of %d", next, total)
	}
}

// TestRecoveryRoomCallbackBroadcasts: an OnRoom callback that broadcasts (presence does) while a
// recovered socket is put back in its rooms. The callback ran under the recovery store's lock
// and its broadcast waited for that lock: the namespace deadlocked.
func TestRecoveryRoomCallbackBroadcasts(t *testing.T) {
	var rec *recorder
	ts := startServer(t, Config{RecoveryWindow: time.Minute}, func(srv *Server) {
		n := of(t, srv, "/")
		n.OnConnection(func(s *Socket) {
			if !s.Recovered() {
				s.Join("a")
			}
		})
		n.OnRoom(func(s *Socket, room string, joined bool) {
			if joined {
				_ = n.To(room).Emit("presence", s.ID())
			}
		})
		rec = record(n)
	})
	n := ts.srv.Namespace("/")
	c := ts.dial()
	sid, pid := c.connect("/", "")
	receive(t, "OnConnection", rec.connected)
	if name, args, _ := c.event(); name != "presence" || args[0] != sid {
		t.Fatalf("got %q %v", name, args)
	}
	_ = n.To("a").Emit("e", 1)
	_, _, off := c.event()
	drop(t, c, rec, n, sid)
	_ = n.To("a").Emit("missed", 2)

	c2 := ts.dial()
	if sid2, _ := c2.reconnect(recoverAuth(pid, off)); sid2 != sid {
		t.Fatal("not recovered")
	}
	var got []string
	for range 2 {
		name, args, off := c2.event()
		if off == "" {
			t.Fatalf("%q without an offset", name)
		}
		got = append(got, fmt.Sprint(name, args))
	}
	if want := []string{"missed[2]", "presence[" + sid + "]"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if before := c2.roundTrip("/", 1); len(before) != 0 {
		t.Fatalf("then %q", before)
	}
}

// TestBroadcastOptionsReaches: the events a recovered socket gets back are those whose options
// reach it, by the rule Node's shouldIncludePacket applies.
func TestBroadcastOptionsReaches(t *testing.T) {
	rooms := []string{"a", "b", "sid1"} // the socket's rooms, its own id among them
	cases := []struct {
		name string
		opts BroadcastOptions
		want bool
	}{
		{"everyone", BroadcastOptions{}, true},
		{"one of its rooms", BroadcastOptions{Rooms: []string{"x", "b"}}, true},
		{"its own id", BroadcastOptions{Rooms: []string{"sid1"}}, true},
		{"other rooms only", BroadcastOptions{Rooms: []string{"x", "y"}}, false},
		{"everyone but one of its rooms", BroadcastOptions{Except: []string{"a"}}, false},
		{"everyone but its own id", BroadcastOptions{Except: []string{"sid1"}}, false},
		{"its room but an excepted one", BroadcastOptions{Rooms: []string{"a"}, Except: []string{"b"}}, false},
		{"its room, other rooms excepted", BroadcastOptions{Rooms: []string{"a"}, Except: []string{"x"}}, true},
		{"flags do not matter", BroadcastOptions{Rooms: []string{"a"}, Volatile: true, Local: true}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.opts.Reaches(rooms); got != tc.want {
				t.Fatalf("Reaches = %v, want %v", got, tc.want)
			}
			if got := tc.opts.Reaches(nil); got != (len(tc.opts.Rooms) == 0) {
				t.Fatalf("a socket in no room: Reaches = %v", got)
			}
		})
	}
}
