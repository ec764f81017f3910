package socketio

import (
	"context"
	"errors"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/wstest"
)

// disconnectSetup serves "/" and "/custom", both recorded, and connects one client to both.
func disconnectSetup(t *testing.T, cfg Config) (ts *testServer, c *rawClient, recs map[string]*recorder, sockets map[string]*Socket) {
	t.Helper()
	recs = map[string]*recorder{}
	ts = startServer(t, cfg, func(srv *Server) {
		for _, name := range []string{"/", "/custom"} {
			recs[name] = record(of(t, srv, name))
		}
	})
	c = ts.dial()
	sockets = map[string]*Socket{}
	for _, name := range []string{"/", "/custom"} {
		c.connect(name, "")
		sockets[name] = receive(t, "OnConnection", recs[name].connected)
		sockets[name].Join("room-" + name)
	}
	return ts, c, recs, sockets
}

// reasonOf waits for the disconnect of s and returns its reason.
func reasonOf(t *testing.T, rec *recorder, s *Socket) string {
	t.Helper()
	for {
		d := receive(t, "OnDisconnect", rec.disconnected)
		if d.sid == s.ID() {
			return d.reason
		}
	}
}

// checkGone checks what a disconnected socket no longer has.
func checkGone(t *testing.T, s *Socket) {
	t.Helper()
	if s.Connected() {
		t.Fatal("still connected")
	}
	select {
	case <-s.Context().Done():
	default:
		t.Fatal("its context is not done")
	}
	n := s.Namespace()
	if n.Socket(s.ID()) != nil || n.Local().RoomSize("room-"+n.Name()) != 0 {
		t.Fatal("its namespace still has it")
	}
}

// allGone waits for the disconnect of each socket, checks its reason and what it no longer has.
func allGone(t *testing.T, recs map[string]*recorder, sockets map[string]*Socket, reason string) {
	t.Helper()
	for name, s := range sockets {
		if r := reasonOf(t, recs[name], s); r != reason {
			t.Fatalf("%s: reason %q, want %q", name, r, reason)
		}
		checkGone(t, s)
	}
}

func TestDisconnectReasons(t *testing.T) {
	t.Run("client namespace disconnect", func(t *testing.T) {
		_, c, recs, sockets := disconnectSetup(t, Config{})
		c.send("1/custom,")
		if r := reasonOf(t, recs["/custom"], sockets["/custom"]); r != "client namespace disconnect" {
			t.Fatalf("reason %q", r)
		}
		checkGone(t, sockets["/custom"])
		c.roundTrip("/", 1) // the rest of the connection goes on
		c.send("1")
		if r := reasonOf(t, recs["/"], sockets["/"]); r != "client namespace disconnect" {
			t.Fatalf("reason %q", r)
		}
	})
	t.Run("Socket.Disconnect(false)", func(t *testing.T) {
		_, c, recs, sockets := disconnectSetup(t, Config{})
		ctx := sockets["/custom"].Context()
		sockets["/custom"].Disconnect(false)
		c.expect("1/custom,")
		if r := reasonOf(t, recs["/custom"], sockets["/custom"]); r != "server namespace disconnect" {
			t.Fatalf("reason %q", r)
		}
		if ctx.Err() == nil {
			t.Fatal("the context taken before is not done")
		}
		checkGone(t, sockets["/custom"])
		sockets["/custom"].Disconnect(false) // twice: nothing more
		c.roundTrip("/", 1)
		c.connect("/custom", "") // the client may come back
	})
	t.Run("Socket.Disconnect(true)", func(t *testing.T) {
		_, c, recs, sockets := disconnectSetup(t, Config{})
		sockets["/"].Disconnect(true)
		got := c.waitClosed()
		sort.Strings(got)
		if !slices.Equal(got, []string{"1", "1/custom,"}) {
			t.Fatalf("got %q before the close, want a DISCONNECT per namespace", got)
		}
		allGone(t, recs, sockets, "server namespace disconnect")
	})
	for _, tc := range []struct {
		name  string
		close func(c *rawClient)
	}{
		{"engine close packet", func(c *rawClient) { c.sendEngine("1") }},
		{"websocket close frame", func(c *rawClient) { c.write(wstest.Frame(wstest.OpClose, []byte{0x03, 0xe8})) }},
		{"the TCP connection ends", func(c *rawClient) { c.close() }},
	} {
		t.Run("transport close: "+tc.name, func(t *testing.T) {
			_, c, recs, sockets := disconnectSetup(t, Config{})
			tc.close(c)
			allGone(t, recs, sockets, "transport close")
		})
	}
	t.Run("ping timeout", func(t *testing.T) {
		cfg := Config{}
		cfg.Engine.PingInterval = 20 * time.Millisecond
		cfg.Engine.PingTimeout = 20 * time.Millisecond
		_, c, recs, sockets := disconnectSetup(t, cfg)
		c.pong.Store(false)
		allGone(t, recs, sockets, "ping timeout")
		c.waitClosed()
	})
	t.Run("ping answered: no timeout", func(t *testing.T) {
		cfg := Config{}
		cfg.Engine.PingInterval = 5 * time.Millisecond
		cfg.Engine.PingTimeout = 50 * time.Millisecond
		_, c, recs, _ := disconnectSetup(t, cfg)
		for i := 0; c.pings.Load() < 10; i++ {
			c.roundTrip("/", i)
		}
		if len(recs["/"].disconnected) != 0 {
			t.Fatal("disconnected")
		}
	})
	t.Run("Server.Close", func(t *testing.T) {
		ts, c, recs, sockets := disconnectSetup(t, Config{})
		other := ts.dial()
		other.connect("/", "")
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		ts.srv.Close(ctx)
		allGone(t, recs, sockets, "server shutting down")
		for _, cl := range []*rawClient{c, other} {
			if got := cl.waitClosed(); len(got) != 0 {
				t.Fatalf("got %q before the close", got)
			}
		}
		if ts.srv.Connections() != 0 {
			t.Fatalf("%d connections after Close", ts.srv.Connections())
		}
	})
}

func TestServerCloseTwice(t *testing.T) {
	ts := startServer(t, Config{}, func(srv *Server) { record(of(t, srv, "/")) })
	ts.dial().connect("/", "")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ts.srv.Close(ctx)
	ts.srv.Close(ctx) // and the test's cleanup a third time
}

func TestDisconnectFailsPendingAcks(t *testing.T) {
	_, c, recs, sockets := disconnectSetup(t, Config{})
	s := sockets["/"]
	errs := make(chan error, 1)
	go func() {
		_, err := s.EmitWithAck(context.Background(), "ask")
		errs <- err
	}()
	c.msg()
	c.close()
	if err := receive(t, "EmitWithAck", errs); !errors.Is(err, ErrDisconnected) {
		t.Fatalf("got %v", err)
	}
	if r := reasonOf(t, recs["/"], s); r != "transport close" {
		t.Fatalf("reason %q", r)
	}
}
