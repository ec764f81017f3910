package server

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tickPayload is a 16 KiB argument, so a client that stops reading fills the TCP buffers fast.
var tickPayload = strings.Repeat("x", 16<<10)

// readTicks reads "tick" events on c, checking that they arrive in order, until "end" arrives;
// it reports how many ticks it read.
func readTicks(c *rawClient) <-chan error {
	done := make(chan error, 1)
	go func() {
		next := 0
		for {
			msg, err := c.read()
			if err != nil {
				done <- fmt.Errorf("after %d ticks: %w", next, err)
				return
			}
			if rest, ok := strings.CutPrefix(msg, `42["end",`); ok {
				total, err := leadingInt(rest)
				if err != nil || total != next {
					done <- fmt.Errorf("read %d ticks, %d were sent (%v)", next, total, err)
					return
				}
				done <- nil
				return
			}
			rest, ok := strings.CutPrefix(msg, `42["tick",`)
			if !ok {
				continue
			}
			seq, err := leadingInt(rest)
			if err != nil || seq != next {
				done <- fmt.Errorf("tick %d arrived as number %d (%v)", next, seq, err)
				return
			}
			next++
		}
	}()
	return done
}

// leadingInt parses the number rest starts with (the first argument of an event; with
// connection state recovery an offset follows the arguments).
func leadingInt(rest string) (int, error) {
	end := strings.IndexAny(rest, ",]")
	if end < 0 {
		end = len(rest)
	}
	return strconv.Atoi(rest[:end])
}

// heapInuse is the heap in use after a collection.
func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func TestSlowConsumer(t *testing.T) {
	tests := []struct {
		name   string
		buffer int64
		write  time.Duration
		limit  string // the limit that must drop the stuck client
	}{
		// The buffer bound: at most 1 MiB waits for a connection whose write is blocked.
		{name: "write buffer", buffer: 1 << 20, write: time.Minute, limit: "write_buffer"},
		// The write deadline: no write blocks longer than 300ms, however little waits.
		{name: "write timeout", buffer: 0, write: 300 * time.Millisecond, limit: "write_timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.MaxPayload = 1 << 20
			cfg.Limits.MaxWriteBuffer = tt.buffer
			cfg.Limits.WriteTimeout = tt.write
			ts := startServer(t, cfg)

			stuck, _, err := rawDial(ts, "/", 4096)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(stuck.close)
			good := mustRawDial(t, ts, "/")
			for i, c := range []*rawClient{stuck, good} {
				if got := c.call(t, "/", "subscribe", `{"rooms":["feed"]}`, i); errorCode(got) != "" {
					t.Fatalf("subscribe: %v", got)
				}
			}
			stuckSock := serverSocket(ts, stuck.sid)
			dropped := make(chan struct{})
			go func(done <-chan struct{}) { <-done; close(dropped) }(stuckSock.Context().Done())
			baseline := heapInuse()
			goodDone := readTicks(good)

			// From here on the stuck client never reads. Broadcast until it has been dropped,
			// then as many again; the good client must get every tick, in order.
			const afterDrop = 200
			// The producer is paced at 500 broadcasts (8 MB) a second: a reader keeps up with
			// that even under -race, so only the stuck client may hit a bound (an unpaced
			// firehose makes any reader a slow consumer).
			tick := time.NewTicker(2 * time.Millisecond)
			defer tick.Stop()
			pace := tick.C
			sent := 0
			deadline := time.Now().Add(waitTimeout)
			for extra := -1; extra < afterDrop; sent++ {
				<-pace
				ts.IO().Namespace("/").To("feed").Emit("tick", sent, tickPayload)
				if extra < 0 {
					select {
					case <-dropped:
						extra = 0
					default:
						if time.Now().After(deadline) {
							t.Fatalf("the stuck client was not dropped after %d broadcasts", sent)
						}
					}
				} else {
					extra++
				}
			}
			ts.IO().Namespace("/").To("feed").Emit("end", sent)
			if err := receive(t, "every tick at the good client", goodDone); err != nil {
				t.Fatal(err)
			}
			if got := counterValue(t, ts.metrics, "switchboard_limit_rejections_total", "limit="+tt.limit); got != 1 {
				t.Fatalf("%s drops = %v, want 1", tt.limit, got)
			}
			if got := counterValue(t, ts.metrics, "switchboard_sockets_connected", "namespace=/", "transport=websocket"); got != 1 {
				t.Fatalf("sockets connected = %v, want 1 (the good client)", got)
			}
			// What the stuck connection held is released.
			const slack = 8 << 20
			waitFor(t, "the heap to return to its baseline", func() bool { return heapInuse() < baseline+slack })
			t.Logf("%d broadcasts of 16 KiB; the stuck client was dropped by %s", sent, tt.limit)
		})
	}
}

// TestPausedReaderGetsEverythingInOrder stops reading until the kernel refuses the server's
// writes (the transport hands its frames to the writer goroutine), sends more meanwhile, then
// reads again: every message arrives once and in the order sent — broadcasts (shared frames) and
// direct emits interleaved — and once the backlog is written the transport writes directly again.
func TestPausedReaderGetsEverythingInOrder(t *testing.T) {
	cfg := testConfig()
	cfg.MaxPayload = 1 << 20
	cfg.Limits.MaxWriteBuffer = 0
	cfg.Limits.WriteTimeout = time.Minute
	ts := startServer(t, cfg)

	// Default socket buffers: with a tiny receive buffer a loopback connection that reads again
	// advances by zero-window probes only.
	c := mustRawDial(t, ts, "/")
	if got := c.call(t, "/", "subscribe", `{"rooms":["feed"]}`, 0); errorCode(got) != "" {
		t.Fatalf("subscribe: %v", got)
	}
	sock := serverSocket(ts, c.sid)
	conn := ts.IO().Engine().Conn(sock.ConnID())
	busy := func() bool { return !conn.Writable() }
	sent := 0
	send := func() {
		if sent%2 == 0 {
			ts.IO().Namespace("/").To("feed").Emit("tick", sent, tickPayload)
		} else {
			sock.Emit("tick", sent, tickPayload)
		}
		sent++
	}
	for !busy() {
		if sent > 10_000 { // 160 MB: no kernel buffers that much
			t.Fatal("the transport never handed a write to its writer goroutine")
		}
		send()
	}
	for range 100 { // queued behind the writer goroutine
		send()
	}
	ts.IO().Namespace("/").To("feed").Emit("end", sent)
	if err := receive(t, "every tick, in order", readTicks(c)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the writer goroutine to hand the socket back", func() bool { return !busy() })
	sock.Emit("end", 0)
	msg, err := c.read()
	if err != nil || !strings.HasPrefix(msg, `42["end",0`) {
		t.Fatalf("after the backlog: %q, %v", msg, err)
	}
	t.Logf("%d messages of 16 KiB, the writer goroutine took over after %d", sent, sent-100)
}
