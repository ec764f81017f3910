package server

import (
	"net"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"
	"golang.org/x/sys/unix"
)

// busyConn is a connection whose client sent fairAfter messages within brief waits: its next brief
// wait is in the fair poller's set.
func busyConn(t *testing.T, settle time.Duration) (*wsConn, net.Conn) {
	t.Helper()
	c, client := tcpPair(t)
	frame := clientFrame(true, ws.TextMessage, []byte("hi"))
	for range fairAfter {
		if _, err := client.Write(frame); err != nil {
			t.Fatal(err)
		}
		if !c.waitBriefly(settle) {
			t.Fatal("waitBriefly missed the client's frame")
		}
		c.release() // as if gorilla had taken the frame
	}
	return c, client
}

// TestFairPollerReportsArrivalOrder: the poller's set reports a batch of ready connections in the
// order their data arrived, each under its waiter's id (the runtime's poller readies them in the
// reverse order; see fairpoll.go). A poller of the test's own, so that nothing else takes the
// events.
func TestFairPollerReportsArrivalOrder(t *testing.T) {
	p, err := newFairPoller()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.file.Close() })
	const n = 8
	var waiters []*fairWaiter
	var clients []net.Conn
	var conns []*wsConn
	for range n {
		c, client := tcpPair(t)
		w := p.add(c.raw, time.Now().Add(time.Hour))
		if w == nil {
			t.Fatal("add refused a TCP connection")
		}
		t.Cleanup(func() { p.remove(c.raw, w) })
		waiters = append(waiters, w)
		clients = append(clients, client)
		conns = append(conns, c)
	}
	// Written last to first: the arrival order is not the order of the ids. Each write is in the
	// server's socket (and so in the set's ready list) before the next one is made.
	for i := n - 1; i >= 0; i-- {
		if _, err := clients[i].Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the write to arrive", func() bool { return unreadBytes(conns[i].raw) > 0 })
	}
	events := make([]unix.EpollEvent, fairBatch)
	got, err := unix.EpollWait(p.epfd, events, 0)
	if err != nil || got != n {
		t.Fatalf("epoll_wait: %d events, %v; want %d", got, err, n)
	}
	for k := range got {
		if want := waiters[n-1-k].id; eventID(&events[k]) != want {
			t.Fatalf("event %d is waiter %d, want %d (arrival order)", k, eventID(&events[k]), want)
		}
	}
	if p.fairWaiters() != n {
		t.Fatalf("%d waiters, want %d", p.fairWaiters(), n)
	}
}

// briefWait runs c.waitBriefly(settle) on a goroutine of its own, as the reader does.
func briefWait(c *wsConn, settle time.Duration) <-chan bool {
	out := make(chan bool, 1)
	go func() { out <- c.waitBriefly(settle) }()
	return out
}

// inFairSet waits until c's reader waits in the fair poller's set.
func inFairSet(t *testing.T, c *wsConn) {
	t.Helper()
	waitFor(t, "the reader to wait in the fair poller's set", func() bool { return c.fair.Load() != nil })
}

// TestFairWaitWakesOnData: a busy client's reader waits in the fair poller's set and wakes when
// the client sends.
func TestFairWaitWakesOnData(t *testing.T) {
	c, client := busyConn(t, time.Hour)
	done := briefWait(c, time.Hour)
	inFairSet(t, c)
	if _, err := client.Write(clientFrame(true, ws.TextMessage, []byte("hi"))); err != nil {
		t.Fatal(err)
	}
	if !<-done || c.empty() {
		t.Fatal("the fair wait did not return the client's frame")
	}
	c.release()
	if c.fair.Load() == nil {
		t.Fatal("a busy client left the fair poller's set between messages")
	}
}

// TestFairWaitEnds: a brief wait the busy client lets pass ends (the waiter's timer wakes the
// reader) and takes the connection out of the fair poller's set.
func TestFairWaitEnds(t *testing.T) {
	const settle = 50 * time.Millisecond
	c, _ := busyConn(t, settle)
	if <-briefWait(c, settle) {
		t.Fatal("waitBriefly returned true; the client sent nothing")
	}
	if c.fair.Load() != nil || c.quick != 0 || !c.briefUntil.IsZero() {
		t.Fatal("a client quiet for the brief wait is still in the fair poller's set")
	}
}

// TestFairWaitWakesOnClose: closing the connection wakes a reader waiting in the fair poller's
// set (its descriptor left the set, so no event would), and the read reports the close.
func TestFairWaitWakesOnClose(t *testing.T) {
	c, _ := busyConn(t, time.Hour)
	done := briefWait(c, time.Hour)
	inFairSet(t, c)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("waitBriefly returned false; the connection was closed, not quiet")
		}
	case <-time.After(waitTimeout):
		t.Fatal("a reader in the fair poller's set did not wake when its connection closed")
	}
	if _, err := c.Read(make([]byte, 8)); err == nil {
		t.Fatal("Read after Close returned no error")
	}
}
