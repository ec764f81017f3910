package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The deadlines SPEC §6/§7 set and the README documents: a request's head and body each have
// 10 s to arrive.
const (
	headDeadline = 10 * time.Second
	bodyDeadline = 10 * time.Second
)

// pollingSession opens a long-polling Engine.IO session and gives its sid.
func pollingSession(t testing.TB, n *node) string {
	t.Helper()
	status, body, err := httpGet(n.URL + "/socket.io/?EIO=4&transport=polling")
	if err != nil || status != http.StatusOK || !strings.HasPrefix(body, "0") {
		t.Fatalf("polling handshake: %d %q %v", status, body, err)
	}
	var open struct{ Sid string }
	if err := json.Unmarshal([]byte(body[1:]), &open); err != nil {
		t.Fatal(err)
	}
	return open.Sid
}

// stall opens a connection and sends request (a head, maybe a body's start), then nothing.
func stall(t testing.TB, n *node, request string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", n.Addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatalf("send: %v", err)
	}
	return c
}

// answer reads what the server answers on a stalled connection before deadline: the response,
// or nil if it closed the connection without one.
func answer(c net.Conn, deadline time.Time) (*http.Response, string, error) {
	_ = c.SetReadDeadline(deadline)
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, "", nil
		}
		return nil, "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b), nil
}

// TestStalledBodiesAndHeads (issue 22 item 2): 500 long-polling POSTs and 500 API POSTs that
// declare Content-Length: 1000000, send a few bytes and stall, and 100 heads that stall, are each
// ended by their deadline: the API answers 408 request_timeout, the polling POST 408 with its
// session closed, the head's connection is closed; nothing is allocated from the declared
// lengths meanwhile (1,000 × 1 MB), and the heap, descriptors and goroutines go back to their
// baseline. Before, a stalled polling POST held its goroutine, buffer and descriptor forever
// (4,100 of them exhausted the descriptors) and the API allocated the declared length up front.
func TestStalledBodiesAndHeads(t *testing.T) {
	const polls, posts, heads, declared = 500, 500, 100, 1_000_000
	n := startNode(t, "--api-keys", apiKey)
	n.mustPost("/emit", `{"event":"warm"}`)
	pollingSession(t, n)
	base, baseFDs, baseG := n.heap(), n.fds(), n.goroutines()

	sids := make([]string, polls)
	for i := range sids {
		sids[i] = pollingSession(t, n)
	}
	start := time.Now()
	var pollConns, apiConns, headConns []net.Conn
	for _, sid := range sids {
		pollConns = append(pollConns, stall(t, n, fmt.Sprintf("POST /socket.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\n"+
			"Host: switchboard\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: %d\r\n\r\n42[\"chat", sid, declared)))
	}
	for range posts {
		apiConns = append(apiConns, stall(t, n, fmt.Sprintf("POST /api/v1/emit HTTP/1.1\r\nHost: switchboard\r\n"+
			"Authorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"event\":", apiKey, declared)))
	}
	for range heads {
		headConns = append(headConns, stall(t, n, "GET /healthz HTTP/1.1\r\nHost: switchboard\r\nX-Slow: "))
	}

	// While they stall: what the node holds is per connection, not per declared byte.
	waitFor(t, "every stalled request read by the node", func() bool { return n.fds() >= baseFDs+polls+posts+heads })
	during := n.heap()
	t.Logf("baseline: %v; %d stalled requests: %v", base, polls+posts+heads, during)
	if grown := during.TotalAlloc - base.TotalAlloc; grown > (polls+posts)*declared/10 {
		t.Errorf("the stalled requests allocated %.1f MiB, want at most a tenth of the %.0f MiB they declared", mib(grown), mib((polls+posts)*declared))
	}

	deadline := start.Add(bodyDeadline + 10*time.Second)
	for i, c := range pollConns {
		res, body, err := answer(c, deadline)
		if err != nil || res == nil || res.StatusCode != http.StatusRequestTimeout || !strings.Contains(body, `"message"`) {
			t.Fatalf("stalled polling POST %d: %v %q %v; want 408 with a reason", i, res, body, err)
		}
	}
	for i, c := range apiConns {
		res, body, err := answer(c, deadline)
		var e struct{ Error struct{ Code string } }
		if err != nil || res == nil || res.StatusCode != http.StatusRequestTimeout || json.Unmarshal([]byte(body), &e) != nil || e.Error.Code != "request_timeout" {
			t.Fatalf("stalled API POST %d: %v %q %v; want 408 request_timeout", i, res, body, err)
		}
	}
	for i, c := range headConns {
		res, _, err := answer(c, start.Add(headDeadline+10*time.Second))
		if err != nil || (res != nil && res.StatusCode != http.StatusRequestTimeout) {
			t.Fatalf("stalled head %d: %v %v; want the connection closed (or 408)", i, res, err)
		}
	}
	if took := time.Since(start); took < bodyDeadline-time.Second {
		t.Errorf("the stalled requests were ended %v after they were sent, before the %v deadline", took, bodyDeadline)
	}
	for _, sid := range sids[:10] {
		status, body, err := httpGet(n.URL + "/socket.io/?EIO=4&transport=polling&sid=" + sid)
		if err != nil || status != http.StatusBadRequest {
			t.Fatalf("a poll of a session whose POST stalled: %d %q %v; want 400, the session closed", status, body, err)
		}
	}
	for _, c := range append(append(pollConns, apiConns...), headConns...) {
		_ = c.Close()
	}

	waitFor(t, "the descriptors back at their baseline", func() bool { return n.fds() <= baseFDs })
	waitFor(t, "the goroutines back at their baseline", func() bool { return n.goroutines() <= baseG+2 })
	var after memStats
	waitFor(t, "the live heap back at its baseline (+2 MiB)", func() bool {
		after = n.heap()
		return after.HeapAlloc <= base.HeapAlloc+2<<20
	})
	t.Logf("after: %v", after)
}
