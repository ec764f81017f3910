package server

import (
	"encoding/json"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestHookFaults: a backend that is down, slow (beyond --hook-timeout), answering garbage or
// 10 MB: every forwarded event is acked unavailable or internal, a socket that does not need the
// backend is not held up meanwhile, and three rounds leave no more goroutines or heap than the
// first did.
func TestHookFaults(t *testing.T) {
	huge := `{"ack":["` + strings.Repeat("x", 10<<20) + `"]}`
	tests := []struct {
		name   string
		answer answerOf
		down   bool
		want   string
		// perSender is each sender's events a round: the 10 MB case sends fewer, as the test's
		// own backend writing 10 MB answers would otherwise take the machine's CPU.
		perSender int
	}{
		{name: "down", down: true, want: "unavailable", perSender: 10},
		{name: "slow", answer: answerOf{hang: true}, want: "unavailable", perSender: 10},
		{name: "garbage", answer: answerOf{status: 200, body: `{"ack": [1,`}, want: "internal", perSender: 10},
		{name: "10 MB", answer: answerOf{status: 200, body: huge}, want: "internal", perSender: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newTestBackend(t)
			b.onEvent(func(eventBody) answerOf { return tt.answer })
			b.onEvents(func([]json.RawMessage) int {
				if tt.answer.hang {
					time.Sleep(time.Second) // slow for the webhook too, within its timeout or not
				}
				return 200
			})
			cfg := hookConfig(b, false)
			cfg.HookTimeout = 5 * time.Second // 10 MB answers take their time under -race
			if tt.answer.hang {
				cfg.HookTimeout = 300 * time.Millisecond
			}
			if tt.down {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				cfg.HookURL = "http://" + ln.Addr().String()
				ln.Close()
			}
			ts := startServer(t, cfg)

			const senders = 10
			perSender := tt.perSender
			clients := make([]*rawClient, senders)
			for i := range clients {
				clients[i] = mustRawDial(t, ts, "/")
			}
			probe := mustRawDial(t, ts, "/")
			round := func(r int) {
				var wg sync.WaitGroup
				for _, c := range clients {
					wg.Go(func() {
						for i := range perSender {
							id := r*perSender + i
							if err := c.emit("/", "work", fmt.Sprint(id), id); err != nil {
								t.Error(err)
								return
							}
						}
						for i := range perSender {
							id := r*perSender + i
							var reply map[string]any
							ack := c.ackArgs(t, "/", id)
							if json.Unmarshal(ack[0], &reply); errorCode(reply) != tt.want {
								t.Errorf("event %d: ack %s, want %s", id, compact(ack), tt.want)
							}
						}
					})
				}
				// Meanwhile a socket that needs no backend is served at once.
				for i := range 20 {
					start := time.Now()
					if reply := probe.call(t, "/", "subscribe", `{"rooms":["free"]}`, r*100+i); errorCode(reply) != "" {
						t.Errorf("subscribe: %v", reply)
					}
					if d := time.Since(start); d > time.Second {
						t.Errorf("subscribe took %v while the backend is %s", d, tt.name)
					}
				}
				wg.Wait()
			}
			round(0) // the hooks client's connections to the backend stay, to be reused
			baseGoroutines, baseHeap := runtime.NumGoroutine(), heapInuse()
			round(1)
			round(2)
			waitFor(t, "goroutines back to the first round's", func() bool {
				return runtime.NumGoroutine() <= baseGoroutines+10
			})
			const heapSlack = 4 << 20
			waitFor(t, "heap back to the first round's", func() bool { return heapInuse() <= baseHeap+heapSlack })
			t.Logf("goroutines %d → %d, heap in use %d KiB → %d KiB", baseGoroutines, runtime.NumGoroutine(), baseHeap>>10, heapInuse()>>10)
		})
	}
}
