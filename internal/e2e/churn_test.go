package e2e

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// churnWays are the ways a churning client leaves: each connects, then goes. Only a failed
// handshake is an error: the API's disconnects may end a connection at any step.
var churnWays = []struct {
	name string
	run  func(t testing.TB, n *node) error
}{
	{"drop after two namespaces", func(t testing.TB, n *node) error {
		c, err := openSIO(t, n, "", nil)
		if err != nil {
			return err
		}
		defer c.close()
		_, _ = c.connect("/", nil)
		_, _ = c.connect("/chat", nil)
		return nil
	}},
	{"engine close packet", func(t testing.TB, n *node) error {
		c, err := openSIO(t, n, "", nil)
		if err != nil {
			return err
		}
		defer c.close()
		_, _ = c.connect("/", nil)
		_ = c.write("1")
		return nil
	}},
	{"namespace disconnect, then drop", func(t testing.TB, n *node) error {
		c, err := openSIO(t, n, "", nil)
		if err != nil {
			return err
		}
		defer c.close()
		_, _ = c.connect("/", nil)
		_, _ = c.connect("/chat", nil)
		_ = c.send("1/chat,")
		return nil
	}},
	{"drop before the CONNECT answer", func(t testing.TB, n *node) error {
		c, err := openSIO(t, n, "", nil)
		if err != nil {
			return err
		}
		defer c.close()
		_ = c.send("0", "0/chat,")
		return nil
	}},
	{"joined a room, dropped", func(t testing.TB, n *node) error {
		c, err := openSIO(t, n, "", nil)
		if err != nil {
			return err
		}
		defer c.close()
		if r, _ := c.connect("/chat", map[string]any{"name": "churner"}); r.OK {
			_, _ = c.call("/chat", "chat:join", map[string]any{"room": "churn"})
		}
		return nil
	}},
	{"polling, then close packet", func(t testing.TB, n *node) error {
		sid := pollingSession(t, n)
		if status, _ := postPolling(t, n, sid, "40"); status != http.StatusOK {
			return nil // refused as the session went: counted or not, both sides agree
		}
		postPolling(t, n, sid, "1")
		return nil
	}},
}

// TestDisconnectsEqualConnectsAfterChurn (issue 22 item 7): after a churn of connects left in
// every way (drops, close packets, namespace disconnects, drops before the answer, polling,
// server-side disconnects from the API meanwhile), switchboard_disconnects_total equals
// switchboard_connects_total once no socket is left: each socket is counted out exactly once
// (20,000 connects counted 21,417 disconnects). 3,000 rounds of the six ways (about 4,000
// sockets): the 20,000 would be slow under -race.
func TestDisconnectsEqualConnectsAfterChurn(t *testing.T) {
	rounds := 3000
	if testing.Short() {
		rounds = 600
	}
	n := startNode(t, "--api-keys", apiKey)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // server-side disconnects racing the clients' own
		defer wg.Done()
		for ctx.Err() == nil {
			_, _ = n.post(ctx, "/sockets/disconnect", `{"namespace":"/","close":false}`)
			_, _ = n.post(ctx, "/sockets/disconnect", `{"namespace":"/chat","close":true}`)
		}
	}()
	var next atomic.Int64
	var failed atomic.Value
	var workers sync.WaitGroup
	for range 8 {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for i := next.Add(1); i <= int64(rounds) && failed.Load() == nil; i = next.Add(1) {
				if err := churnWays[i%int64(len(churnWays))].run(t, n); err != nil {
					failed.Store(err)
				}
			}
		}()
	}
	workers.Wait()
	stop()
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}

	var connects, disconnects, left float64
	deadline := time.Now().Add(waitTimeout)
	for {
		connects, disconnects = n.metric("switchboard_connects_total"), n.metric("switchboard_disconnects_total")
		left = n.metric("switchboard_sockets_connected")
		if disconnects > connects {
			t.Fatalf("switchboard_disconnects_total = %v > switchboard_connects_total = %v", disconnects, connects)
		}
		if left == 0 && disconnects == connects {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v after the churn: %v connects, %v disconnects, %v sockets still counted connected; want them equal and none left",
				waitTimeout, connects, disconnects, left)
		}
		time.Sleep(50 * time.Millisecond) // polling the metrics with a deadline
	}
	t.Logf("%d rounds: %v sockets connected and disconnected", rounds, connects)
	if connects < float64(rounds) {
		t.Fatalf("only %v connects counted for %d rounds", connects, rounds)
	}
}
