package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// stalledRequest opens a connection and sends an API request's head and the start of its body,
// then nothing more: header holds the header lines the body needs.
func stalledRequest(t *testing.T, ts *testServer, header, start string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := fmt.Fprintf(c, "POST /api/v1/emit HTTP/1.1\r\nHost: switchboard\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n%s\r\n%s", testAPIKey, header, start); err != nil {
		t.Fatalf("send: %v", err)
	}
	return c
}

// readTimeoutAnswer reads the answer to a stalled request, which must be a 408 request_timeout
// in the API's error shape.
func readTimeoutAnswer(t *testing.T, c net.Conn, deadline time.Time) {
	t.Helper()
	_ = c.SetReadDeadline(deadline)
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var body struct {
		Error struct{ Code, Message string }
	}
	if res.StatusCode != http.StatusRequestTimeout || json.Unmarshal(raw, &body) != nil || body.Error.Code != codeRequestTimeout || body.Error.Message == "" {
		t.Fatalf("stalled body answered %d %s, want 408 with code %s", res.StatusCode, raw, codeRequestTimeout)
	}
	if !res.Close {
		t.Fatalf("a 408 keeps the connection, whose stream is broken: want Connection: close")
	}
}

// TestAPIStalledBodies: a body that stops arriving is answered 408 once its deadline passes, and
// what the server allocates for it is what arrived, not what was declared: 100 requests
// declaring 1 MB each and sending 9 bytes would cost 100 MB if the declared length were
// allocated up front.
func TestAPIStalledBodies(t *testing.T) {
	cfg := apiConfig()
	cfg.bodyTimeout = 100 * time.Millisecond
	ts := startServer(t, cfg)

	const stalled, declared = 100, 1_000_000 // the default --max-payload: allowed
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	conns := make([]net.Conn, stalled)
	for i := range conns {
		conns[i] = stalledRequest(t, ts, fmt.Sprintf("Content-Length: %d\r\n", declared), `{"event":`)
	}
	sent := time.Now()
	deadline := sent.Add(waitTimeout)
	for _, c := range conns {
		readTimeoutAnswer(t, c, deadline)
	}
	answered := time.Since(sent)
	runtime.ReadMemStats(&after)

	if limit := cfg.bodyTimeout + 3*time.Second; answered > limit {
		t.Errorf("stalled bodies answered within %v of the last one sent, want at most %v", answered, limit)
	}
	if grown, limit := after.TotalAlloc-before.TotalAlloc, uint64(stalled*declared/10); grown > limit {
		t.Errorf("%d stalled bodies declaring %d bytes allocated %d bytes in all, want at most %d", stalled, declared, grown, limit)
	}

	t.Run("chunked", func(t *testing.T) {
		c := stalledRequest(t, ts, "Transfer-Encoding: chunked\r\n", "9\r\n{\"event\":\r\n")
		readTimeoutAnswer(t, c, time.Now().Add(waitTimeout))
	})
	t.Run("not answered before the deadline", func(t *testing.T) {
		start := time.Now()
		c := stalledRequest(t, ts, "Content-Length: 100\r\n", `{"event":`) // small: net/http would wait for the rest to keep the connection
		readTimeoutAnswer(t, c, time.Now().Add(waitTimeout))
		if waited := time.Since(start); waited < cfg.bodyTimeout {
			t.Fatalf("answered after %v, before the %v deadline", waited, cfg.bodyTimeout)
		}
	})
}

// TestAPIBodyDeadlineLiftedOnceRead: the body's deadline ends with the body. An emit waiting for
// acks longer than the deadline still waits its whole ackTimeoutMs (a deadline left on the
// connection would cancel the request when net/http's read-ahead hits it). It fails only if
// neither decodeBody nor net/http lifts the deadline.
func TestAPIBodyDeadlineLiftedOnceRead(t *testing.T) {
	cfg := apiConfig()
	cfg.bodyTimeout = 100 * time.Millisecond
	ts := startServer(t, cfg)
	mustRawDial(t, ts, "/") // gets the event and never acks

	const ackTimeout = 500 * time.Millisecond
	start := time.Now()
	res := post("/emit", fmt.Sprintf(`{"event":"e","ackTimeoutMs":%d}`, ackTimeout.Milliseconds())).do(t, ts.URL)
	waited := time.Since(start)
	if res.status != http.StatusOK || strings.TrimSpace(res.raw) != `{"acks":[],"timedOut":true}` {
		t.Fatalf("got %d %s, want 200 with no acks, timed out", res.status, res.raw)
	}
	if waited < ackTimeout {
		t.Fatalf("the emit answered after %v, before its ackTimeoutMs (%v): the body deadline cut it short", waited, ackTimeout)
	}
}
