package server

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// pollingCycle connects to "/" over long-polling, subscribes, and closes the session.
func pollingCycle(ts *testServer) error {
	baseURL := ts.URL
	res, err := http.Get(baseURL + "/socket.io/?EIO=4&transport=polling")
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	_, rest, ok := strings.Cut(string(body), `"sid":"`)
	if !ok {
		return fmt.Errorf("handshake: %q", body)
	}
	sid, _, _ := strings.Cut(rest, `"`)
	url := baseURL + "/socket.io/?EIO=4&transport=polling&sid=" + sid
	post := func(payload string) error {
		res, err := http.Post(url, "text/plain;charset=UTF-8", strings.NewReader(payload))
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("POST %q: %d", payload, res.StatusCode)
		}
		return nil
	}
	// getUntil long-polls until a payload containing want arrives.
	getUntil := func(want string) error {
		for {
			res, err := http.Get(url)
			if err != nil {
				return err
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				return fmt.Errorf("GET: %d %q", res.StatusCode, b)
			}
			if strings.Contains(string(b), want) {
				return nil
			}
		}
	}
	// Send events only once the namespace connect is acknowledged and registered: the library
	// closes a connection that sends an event for a namespace it is still connecting (see
	// rawClient.join).
	if err := post("40"); err != nil {
		return err
	}
	if err := getUntil(`40{"sid"`); err != nil {
		return err
	}
	if err := waitRegistered(ts, sid, "/"); err != nil {
		return err
	}
	if err := post(`421["subscribe",{"rooms":["soak"]}]`); err != nil {
		return err
	}
	if err := getUntil("431["); err != nil {
		return err
	}
	return post("1") // Engine.IO close
}

// websocketCycle connects to "/" over websocket, subscribes and closes the TCP connection.
func websocketCycle(ts *testServer) error {
	c, _, err := rawDial(ts, "/", 0)
	if err != nil {
		return err
	}
	defer c.close()
	if err := c.emit("/", "subscribe", `{"rooms":["soak"]}`, 1); err != nil {
		return err
	}
	for {
		msg, err := c.read()
		if err != nil {
			return err
		}
		if strings.HasPrefix(msg, "431[") {
			return nil
		}
	}
}

// TestChurnSoak runs thousands of connect/subscribe/disconnect cycles over both transports
// and checks that the node returns to where it started: no connection, socket, tracker entry,
// goroutine or heap left behind.
func TestChurnSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak: skipped with -short")
	}
	const (
		wsCycles      = 3000
		pollingCycles = 300
		workers       = 8
		budget        = 2 * time.Minute // the whole churn, under -race on 2 shared cores
	)
	cfg := testConfig()
	cfg.Limits.ConnRate = 0 // every client comes from 127.0.0.1
	// Connection state recovery holds every abruptly closed session for the recovery window by
	// design (README: Operating Switchboard); with it on, the heap returns to its baseline only
	// once the window has passed.
	cfg.RecoveryWindow = 0
	ts := startServer(t, cfg)
	http.DefaultClient.CloseIdleConnections()

	settled := func() bool {
		return ts.IO().Connections() == 0 &&
			counterValue(t, ts.metrics, "switchboard_sockets_connected", "namespace=/", "transport=websocket") == 0 &&
			counterValue(t, ts.metrics, "switchboard_sockets_connected", "namespace=/", "transport=polling") == 0
	}
	// Warm up, so that pools and lazily started goroutines are part of the baseline.
	for range 50 {
		if err := websocketCycle(ts); err != nil {
			t.Fatal(err)
		}
		if err := pollingCycle(ts); err != nil {
			t.Fatal(err)
		}
	}
	http.DefaultClient.CloseIdleConnections()
	waitFor(t, "the warm-up to settle", settled)
	baseGoroutines := runtime.NumGoroutine()
	baseHeap := heapInuse()

	start := time.Now()
	jobs := make(chan func(*testServer) error)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for job := range jobs {
				if err := job(ts); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for i := range wsCycles + pollingCycles {
		if i%((wsCycles+pollingCycles)/pollingCycles) == 0 {
			jobs <- pollingCycle
		} else {
			jobs <- websocketCycle
		}
	}
	close(jobs)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatalf("cycle failed: %v", err)
	}
	elapsed := time.Since(start)
	if elapsed > budget {
		t.Fatalf("%d cycles took %v, budget %v", wsCycles+pollingCycles, elapsed, budget)
	}
	http.DefaultClient.CloseIdleConnections()
	waitFor(t, "every connection to be gone", settled)

	waitFor(t, "goroutines to return to the baseline", func() bool {
		return runtime.NumGoroutine() <= baseGoroutines+5
	})
	const heapSlack = 4 << 20
	waitFor(t, "the heap to return to the baseline", func() bool { return heapInuse() <= baseHeap+heapSlack })
	connects := counterValue(t, ts.metrics, "switchboard_connects_total", "namespace=/", "transport=websocket") +
		counterValue(t, ts.metrics, "switchboard_connects_total", "namespace=/", "transport=polling")
	if want := float64(wsCycles + pollingCycles + 100); connects != want {
		t.Fatalf("connects counted %v, want %v", connects, want)
	}
	t.Logf("%d cycles in %v; goroutines %d → %d; heap in use %d KiB → %d KiB", wsCycles+pollingCycles, elapsed,
		baseGoroutines, runtime.NumGoroutine(), baseHeap>>10, heapInuse()>>10)
}
