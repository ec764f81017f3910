package socketio

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestDynamicNamespaces(t *testing.T) {
	var setups atomic.Int32
	ts := startServer(t, Config{}, func(srv *Server) {
		record(of(t, srv, "/"))
		srv.OfFunc(func(name string) bool { return strings.HasPrefix(name, "/dyn-") }, func(n *Namespace) {
			setups.Add(1)
			record(n)
		})
	})
	c := ts.dial()
	c.connect("/dyn-1", "")
	c.roundTrip("/dyn-1", 1)
	other := ts.dial()
	other.connect("/dyn-1", "")
	other.connect("/dyn-2", "")
	c.send("0/static-only,")
	c.expect(`4/static-only,{"message":"Invalid namespace"}`)
	if n := setups.Load(); n != 2 {
		t.Fatalf("setup ran %d times for 2 namespaces", n)
	}
	if ts.srv.Namespace("/dyn-1").Len() != 2 || ts.srv.Namespace("/static-only") != nil {
		t.Fatal("namespaces")
	}
}

// TestDynamicNamespaceSetupBeforeUse: a second client connecting while the first one's CONNECT
// is still setting the namespace up must meet the namespace as setup leaves it (here, with a
// middleware that refuses everyone), not before: it was connected past the middleware.
func TestDynamicNamespaceSetupBeforeUse(t *testing.T) {
	inSetup := make(chan struct{})
	release := make(chan struct{})
	ts := startServer(t, Config{}, func(srv *Server) {
		srv.OfFunc(func(name string) bool { return name == "/dyn" }, func(n *Namespace) {
			close(inSetup)
			<-release
			n.Use(func(s *Socket) error { return errors.New("closed") })
		})
	})
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	t.Cleanup(open) // before the server's cleanup: a failure must not leave setup blocked
	first := ts.dial()
	first.send("0/dyn,")
	receive(t, "the setup", inSetup)
	second := ts.dial()
	second.send("0/dyn,")
	// The defect answered the second CONNECT at once; give it the time to show.
	if f, ok := second.tryFrame(200 * time.Millisecond); ok {
		t.Fatalf("answered %q while the namespace was being set up", f.data)
	}
	open()
	for _, c := range []*rawClient{first, second} {
		c.expect(`4/dyn,{"message":"closed"}`)
	}
}

func TestEventMiddlewares(t *testing.T) {
	var order []string
	var mu sync.Mutex
	note := func(s string) {
		mu.Lock()
		order = append(order, s)
		mu.Unlock()
	}
	ts := startServer(t, Config{}, func(srv *Server) {
		n := of(t, srv, "/")
		n.UseEvents(func(s *Socket, ev *Event) bool { note("mw1 " + ev.Name); return true })
		n.UseEvents(func(s *Socket, ev *Event) bool {
			note("mw2 " + ev.Name)
			if ev.Name == "stop" {
				ev.Ack("stopped")
				return false
			}
			return true
		})
		n.OnEvent(func(s *Socket, ev *Event) {
			note("handler " + ev.Name)
			ev.Ack("handled")
		})
	})
	c := ts.dial()
	c.connect("/", "")
	c.send(`21["go"]`, `22["stop"]`)
	c.expect(`31["handled"]`, `32["stopped"]`)
	mu.Lock()
	defer mu.Unlock()
	want := "mw1 go|mw2 go|handler go|mw1 stop|mw2 stop"
	if got := strings.Join(order, "|"); got != want {
		t.Fatalf("ran %s, want %s", got, want)
	}
}

// TestHandlerPanic: a handler that panics loses its event; its socket, its connection and the
// server go on.
func TestHandlerPanic(t *testing.T) {
	ts, rec := startRecorded(t, Config{}, func(n *Namespace) {
		n.UseEvents(func(s *Socket, ev *Event) bool {
			if ev.Name == "boom" {
				panic("boom")
			}
			return true
		})
		n.OnDisconnect(func(s *Socket, reason string) { panic("in OnDisconnect") })
	})
	c := ts.dial()
	c.connect("/", "")
	c.send(`2["boom"]`, `2["after"]`)
	if ev := receive(t, "the next event", rec.events); ev.Name != "after" {
		t.Fatalf("got %q", ev.Name)
	}
	c.roundTrip("/", 1)
	c.send("1")
	receive(t, "the disconnect", rec.disconnected)
	other := ts.dial()
	other.connect("/", "")
	other.roundTrip("/", 2)
}
