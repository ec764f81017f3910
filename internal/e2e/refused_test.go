package e2e

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// maxRefused is the bound SPEC §7 and the README document: a connection's 33rd refused CONNECT
// closes it.
const maxRefused = 32

// refusalCase is one way to have a namespace CONNECT refused.
type refusalCase struct {
	name string
	args []string
	// pipelined: the CONNECTs are sent at once (each to a namespace of its own); otherwise one
	// at a time, each after the previous one's answer (a second CONNECT to a namespace whose
	// first is still pending is a protocol error, which closes the connection anyway).
	pipelined bool
	nsp       func(i int) string
}

var refusalCases = []refusalCase{
	{name: "unknown namespaces", pipelined: true, nsp: func(i int) string { return "/ns" + strconv.Itoa(i) }},
	{name: "no token with --jwt-secret", args: []string{"--jwt-secret", "e2e-secret"},
		nsp: func(i int) string { return []string{"/", "/chat", "/relay"}[i%3] }},
}

// refuse sends CONNECTs on a new connection until the server closes it (at most limit), and
// counts the CONNECT_ERRORs it answered.
func refuse(t testing.TB, n *node, tc refusalCase, limit int) (refused int, closed bool, err error) {
	c, err := openSIO(t, n, "", nil)
	if err != nil {
		return 0, false, err
	}
	defer c.close()
	connect := func(i int) string {
		if nsp := tc.nsp(i); nsp != "/" {
			return "0" + nsp + ","
		}
		return "0"
	}
	if tc.pipelined {
		msgs := make([]string, limit)
		for i := range msgs {
			msgs[i] = connect(i)
		}
		_ = c.send(msgs...) // the server may close the connection before the last ones
	}
	for i := range limit {
		if !tc.pipelined && c.send(connect(i)) != nil {
			break
		}
		select {
		case p := <-c.control:
			if p.Type != '4' {
				return refused, false, fmt.Errorf("CONNECT %d answered %c%s, want a CONNECT_ERROR", i, p.Type, p.Data)
			}
			refused++
			continue
		case <-c.closed:
		case <-time.After(5 * time.Second):
			return refused, false, nil
		}
		break
	}
	if _, ok := c.waitClosed(5*time.Second, time.Now()); !ok {
		return refused, false, nil
	}
	// CONNECT_ERRORs written before the close still count.
	for {
		select {
		case p := <-c.control:
			if p.Type == '4' {
				refused++
			}
			continue
		default:
		}
		return refused, true, nil
	}
}

// TestRefusedConnectsKeepNothing (issue 22 item 1): a connection is closed at its 33rd refused
// CONNECT, having been answered the first 32, and 200,000 refused CONNECTs leave the heap,
// descriptors and goroutines at their baseline. Before the bound, one connection could make
// any number of refusals and each was kept until it closed (10 connections × 200,000: 760 MiB).
func TestRefusedConnectsKeepNothing(t *testing.T) {
	total := 200_000
	if testing.Short() {
		total = 20_000
	}
	for _, tc := range refusalCases {
		t.Run(tc.name, func(t *testing.T) {
			n := startNode(t, tc.args...)

			// One connection asking far more than the bound: answered 32 times, then closed.
			refused, closed, err := refuse(t, n, tc, 200)
			if err != nil {
				t.Fatal(err)
			}
			if !closed || refused != maxRefused {
				t.Fatalf("a connection sending 200 refused CONNECTs got %d refusals, closed %v; want %d, then closed", refused, closed, maxRefused)
			}

			base, baseFDs, baseG := n.heap(), n.fds(), n.goroutines()
			var sum, conns atomic.Int64
			var failed atomic.Value
			var wg sync.WaitGroup
			start := time.Now()
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for sum.Load() < int64(total) && failed.Load() == nil {
						refused, closed, err := refuse(t, n, tc, maxRefused+8)
						if err == nil && (!closed || refused != maxRefused) {
							err = fmt.Errorf("a connection got %d refusals, closed %v; want %d, then closed", refused, closed, maxRefused)
						}
						if err != nil {
							failed.Store(err)
							return
						}
						sum.Add(int64(refused))
						conns.Add(1)
					}
				}()
			}
			wg.Wait()
			if err, _ := failed.Load().(error); err != nil {
				t.Fatal(err)
			}
			t.Logf("%d refused CONNECTs on %d connections in %v", sum.Load(), conns.Load(), time.Since(start).Round(time.Millisecond))

			waitFor(t, "the descriptors back at their baseline", func() bool { return n.fds() <= baseFDs })
			waitFor(t, "the goroutines back at their baseline", func() bool { return n.goroutines() <= baseG+2 })
			// A closed websocket lingers up to 2 s (its close frame's answer), so the heap is
			// polled until it is back.
			var after memStats
			waitFor(t, "the live heap back at its baseline (+2 MiB)", func() bool {
				after = n.heap()
				return after.HeapAlloc <= base.HeapAlloc+2<<20
			})
			t.Logf("before: %v; after: %v", base, after)
			if got := n.metric("switchboard_limit_rejections_total", `limit="refused_connect"`); got < float64(sum.Load()) {
				t.Errorf("switchboard_limit_rejections_total{limit=\"refused_connect\"} = %v, want at least %d", got, sum.Load())
			}
		})
	}
}

// TestEventAfterRefusedConnect (issue 22 item 7): an event for a namespace whose CONNECT was
// refused is a protocol error that closes the connection at once, not after the connect
// timeout (it stalled the connection's reader for 5 s).
func TestEventAfterRefusedConnect(t *testing.T) {
	for _, tc := range refusalCases {
		t.Run(tc.name, func(t *testing.T) {
			n := startNode(t, tc.args...)
			c := mustDial(t, n)
			nsp := tc.nsp(1)
			r, err := c.connect(nsp, nil)
			if err != nil || r.OK {
				t.Fatalf("CONNECT %s: %+v %v, want refused", nsp, r, err)
			}
			sent := time.Now()
			if err := c.emit(nsp, "subscribe", map[string]any{"rooms": []string{"r"}}); err != nil {
				t.Fatal(err)
			}
			took, closed := c.waitClosed(10*time.Second, sent)
			if !closed || took > time.Second {
				t.Fatalf("the connection closed %v (closed: %v) after the event, want within 1 s", took, closed)
			}
		})
	}
}
