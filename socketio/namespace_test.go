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
