package socketio

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestCloseLeavesNoGoroutines: after a busy life (connections in two namespaces, events, acks,
// broadcasts, a handler blocked until its socket's context ends, a pending EmitWithAck), Close
// leaves no goroutine of the server behind.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	blocked := make(chan struct{}, 16)
	srv, err := NewServer(Config{RecoveryWindow: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var rec *recorder
	for _, name := range []string{"/", "/custom"} {
		n := of(t, srv, name)
		n.UseEvents(func(s *Socket, ev *Event) bool {
			if ev.Name != "wait" {
				return true
			}
			blocked <- struct{}{}
			<-s.Context().Done()
			return false
		})
		r := record(n)
		if name == "/" {
			rec = r
		}
	}
	hs := httptest.NewServer(srv)
	var clients []*rawClient
	for i := range 10 {
		c := dialURL(t, hs.URL)
		c.connect("/", "")
		c.connect("/custom", "")
		c.send(fmt.Sprintf(`2%d["echo",%d]`, i, i), `2/custom,["wait"]`)
		c.expect(fmt.Sprintf(`3%d[%d]`, i, i))
		clients = append(clients, c)
	}
	for range clients {
		receive(t, "a blocked handler", blocked)
	}
	s := receive(t, "a socket", rec.connected)
	go func() { _, _ = s.EmitWithAck(context.Background(), "never-answered") }()
	if err := srv.Namespace("/").Emit("news", []byte{1}); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	srv.Close(ctx)
	hs.Close()
	for _, c := range clients {
		c.waitClosed()
	}
	goleak.VerifyNone(t, ignore)
}

// TestWorkersExitWhenIdle: the goroutines that ran the sockets' work go once there is none.
func TestWorkersExitWhenIdle(t *testing.T) {
	ts := startServer(t, Config{}, func(srv *Server) { record(of(t, srv, "/")) })
	var clients []*rawClient
	for range 20 {
		c := ts.dial()
		c.connect("/", "")
		clients = append(clients, c)
	}
	for round := range 5 {
		for i, c := range clients {
			c.send(fmt.Sprintf(`2%d["echo"]`, round*100+i))
		}
		for i, c := range clients {
			c.expect(fmt.Sprintf(`3%d[]`, round*100+i))
		}
	}
	if n := workerGoroutines(); n == 0 {
		t.Fatal("no worker ran the events")
	}
	// Workers wait workerIdle for more work, then exit.
	deadline := time.Now().Add(workerIdle + waitTimeout)
	for workerGoroutines() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d workers still there %v after the last event", workerGoroutines(), workerIdle+waitTimeout)
		}
		runtimeYield()
	}
	// And new work finds new ones.
	clients[0].roundTrip("/", 1)
}

// workerGoroutines counts the goroutines in workers.work.
func workerGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return bytes.Count(buf[:n], []byte("socketio.(*workers).work("))
		}
		buf = make([]byte, 2*len(buf))
	}
}
