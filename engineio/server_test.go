package engineio

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestPollingRoundTrip(t *testing.T) {
	rec := newRecorder(true)
	_, base := startEngine(t, Config{}, rec)
	sid := openPolling(t, base)
	url := base + "/?EIO=4&transport=polling&sid=" + sid
	if code, body := poll(t, "POST", url, "4hello\x1e4world\x1ebAQID"); code != 200 || body != "ok" {
		t.Fatalf("POST: %d %q", code, body)
	}
	if code, body := poll(t, "GET", url, ""); code != 200 || body != "4hello\x1e4world\x1ebAQID" {
		t.Fatalf("GET: %d %q", code, body)
	}
	if got := rec.got(); strings.Join(got, "|") != "hello|world|\x01\x02\x03" {
		t.Fatalf("received %q", got)
	}
}

func TestPollingRefusals(t *testing.T) {
	rec := newRecorder(false)
	_, base := startEngine(t, Config{MaxPayload: 100}, rec)
	cases := []struct {
		name, method, query, body string
		code                      int
		message                   string
	}{
		{"no EIO", "GET", "transport=polling", "", 400, "Unsupported protocol version"},
		{"EIO 3", "GET", "EIO=3&transport=polling", "", 400, "Unsupported protocol version"},
		{"unknown transport", "GET", "EIO=4&transport=carrier-pigeon", "", 400, "Transport unknown"},
		{"unknown sid", "GET", "EIO=4&transport=polling&sid=nope", "", 400, "Session ID unknown"},
		{"handshake by POST", "POST", "EIO=4&transport=polling", "", 400, "Bad handshake method"},
		{"websocket without upgrade", "GET", "EIO=4&transport=websocket", "", 400, "Bad request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := poll(t, tc.method, base+"/?"+tc.query, tc.body)
			if code != tc.code || !strings.Contains(body, tc.message) {
				t.Fatalf("%d %q, want %d with %q", code, body, tc.code, tc.message)
			}
		})
	}
}

func TestPollingBadPostClosesTheSession(t *testing.T) {
	cases := []struct {
		name   string
		body   string
		code   int
		reason string
	}{
		{"malformed", "abc", 400, ReasonParseError},
		{"bad base64", "b!!!", 400, ReasonParseError},
		{"too large", strings.Repeat("x", 101), 413, ReasonTransportError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder(false)
			_, base := startEngine(t, Config{MaxPayload: 100}, rec)
			sid := openPolling(t, base)
			url := base + "/?EIO=4&transport=polling&sid=" + sid
			code, body := poll(t, "POST", url, tc.body)
			if code != tc.code || !strings.Contains(body, `"code":3`) {
				t.Fatalf("POST: %d %q, want %d with an engine error", code, body, tc.code)
			}
			if r := receive(t, "close", rec.closed); r != tc.reason {
				t.Fatalf("closed with %q, want %q", r, tc.reason)
			}
			if code, _ := poll(t, "GET", url, ""); code != 400 {
				t.Fatalf("GET after the bad POST: %d, want 400", code)
			}
		})
	}
}

// A POST whose body does not come is answered 408 once the body timeout passes, and costs no
// more than the bytes that came.
func TestPollingStalledBodyTimesOut(t *testing.T) {
	rec := newRecorder(false)
	_, base := startEngine(t, Config{BodyTimeout: 100 * time.Millisecond}, rec)
	sid := openPolling(t, base)
	nc, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	fmt.Fprintf(nc, "POST /?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n4par", sid)
	_ = nc.SetReadDeadline(time.Now().Add(waitTimeout))
	buf := make([]byte, 512)
	n, _ := nc.Read(buf)
	if !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 408") {
		t.Fatalf("answer %q, want 408", buf[:n])
	}
	if r := receive(t, "close", rec.closed); r != ReasonTransportError {
		t.Fatalf("closed with %q", r)
	}
}

// A request that comes while a poll waits: a second GET is refused and ends the session (the
// waiting poll gets the close packet); the client's close packet ends it too (the waiting poll
// gets a noop).
func TestPollingWhileAPollWaits(t *testing.T) {
	cases := []struct {
		name, method, body string
		code               int
		pending            string // what the waiting poll gets
		reason             string
	}{
		{"overlapping GET", "GET", "", 400, "1", ReasonTransportError},
		{"client close", "POST", "1", 200, "6", ReasonTransportClose},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder(false)
			srv, base := startEngine(t, Config{}, rec)
			url, _, pending := waitingPoll(t, srv, base)
			if code, _ := poll(t, tc.method, url, tc.body); code != tc.code {
				t.Fatalf("%s: %d, want %d", tc.method, code, tc.code)
			}
			if body := receive(t, "the waiting poll", pending); body != tc.pending {
				t.Fatalf("the waiting poll got %q, want %q", body, tc.pending)
			}
			if r := receive(t, "close", rec.closed); r != tc.reason {
				t.Fatalf("closed with %q, want %q", r, tc.reason)
			}
		})
	}
}

// waitingPoll opens a long-polling session and a GET that waits on the server for its packets.
// It returns the session's polling URL, its Conn, and the channel the GET's body comes on.
func waitingPoll(t *testing.T, srv *Server, base string) (string, *Conn, <-chan string) {
	t.Helper()
	sid := openPolling(t, base)
	url := base + "/?EIO=4&transport=polling&sid=" + sid
	pending := make(chan string, 1)
	go func() { _, body := poll(t, "GET", url, ""); pending <- body }()
	c := srv.lookup(sid)
	waitUntil(t, "the poll to wait", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.poll.waiter != nil
	})
	return url, c, pending
}

func TestWebsocketEcho(t *testing.T) {
	rec := newRecorder(true)
	_, base := startEngine(t, Config{}, rec)
	ws := dialWS(t, base, "EIO=4&transport=websocket")
	if open := ws.next(); !strings.HasPrefix(open, `0{"sid":"`) || !strings.Contains(open, `"upgrades":[]`) {
		t.Fatalf("open packet %q", open)
	}
	ws.text("4hello")
	if got := ws.next(); got != "4hello" {
		t.Fatalf("echo %q", got)
	}
	ws.send(opBinary, []byte{1, 2, 3})
	if op, got, _ := ws.read(); op != opBinary || got != "\x01\x02\x03" {
		t.Fatalf("binary echo %d %q", op, got)
	}
	ws.send(opPing, []byte("hi"))
	if op, got, _ := ws.read(); op != opPong || got != "hi" {
		t.Fatalf("websocket pong %d %q", op, got)
	}
	ws.send(opClose, []byte{3, 232})
	if op, _, _ := ws.read(); op != opClose {
		t.Fatalf("no close frame back (op %d)", op)
	}
	if r := receive(t, "close", rec.closed); r != ReasonTransportClose {
		t.Fatalf("closed with %q", r)
	}
}

func TestWebsocketProtocolViolationCloses(t *testing.T) {
	rec := newRecorder(false)
	_, base := startEngine(t, Config{MaxPayload: 10}, rec)
	cases := []struct {
		name   string
		frame  []byte
		code   string
		reason string
	}{
		{"too big", clientFrame(true, opText, []byte("4"+strings.Repeat("x", 20))), "\x03\xf1", ReasonTransportError},
		{"unmasked", []byte{0x81, 0x02, '4', 'a'}, "\x03\xea", ReasonTransportError},
		{"bad packet", clientFrame(true, opText, []byte("9")), "", ReasonParseError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ws := openWS(t, base)
			if _, err := ws.nc.Write(tc.frame); err != nil {
				t.Fatal(err)
			}
			if r := receive(t, "close", rec.closed); r != tc.reason {
				t.Fatalf("closed with %q, want %q", r, tc.reason)
			}
			if tc.code != "" {
				op, p, _ := ws.read()
				if op != opClose || p != tc.code {
					t.Fatalf("close frame %d %q, want code %q", op, p, tc.code)
				}
			}
		})
	}
}

func TestHeartbeat(t *testing.T) {
	rec := newRecorder(false)
	_, base := startEngine(t, Config{PingInterval: 50 * time.Millisecond, PingTimeout: 50 * time.Millisecond}, rec)
	ws := openWS(t, base)
	for range 3 {
		if got := ws.next(); got != "2" {
			t.Fatalf("got %q, want a ping", got)
		}
		ws.text("3")
	}
	select {
	case r := <-rec.closed:
		t.Fatalf("closed (%q) although it answered every ping", r)
	default:
	}
	if got := ws.next(); got != "2" {
		t.Fatalf("got %q, want a ping", got)
	}
	// No pong this time.
	if r := receive(t, "close", rec.closed); r != ReasonPingTimeout {
		t.Fatalf("closed with %q", r)
	}
}

// A poll that arrives once the ping timeout passed ends the session even if the timer heap has
// not got to it yet.
func TestPollAfterPingTimeout(t *testing.T) {
	rec := newRecorder(false)
	srv, base := startEngine(t, Config{PingInterval: time.Hour, PingTimeout: time.Hour}, rec)
	sid := openPolling(t, base)
	c := srv.lookup(sid)
	// The ping went out and its pong is overdue, but the heap's timer is set for an hour.
	srv.timers.mu.Lock()
	c.timer.kind, c.timer.when = timerPong, srv.timers.now()-1
	srv.timers.mu.Unlock()
	code, _ := poll(t, "GET", base+"/?EIO=4&transport=polling&sid="+sid, "")
	if code != 400 {
		t.Fatalf("poll after the ping timeout: %d, want 400", code)
	}
	if r := receive(t, "close", rec.closed); r != ReasonPingTimeout {
		t.Fatalf("closed with %q", r)
	}
}

func TestUpgrade(t *testing.T) {
	rec := newRecorder(false)
	srv, base := startEngine(t, Config{}, rec)
	url, c, pending := waitingPoll(t, srv, base)
	ws := dialWS(t, base, "EIO=4&transport=websocket&sid="+c.ID())
	ws.text("2probe")
	if got := ws.next(); got != "3probe" {
		t.Fatalf("probe answer %q", got)
	}
	if body := receive(t, "pending poll", pending); body != "6" {
		t.Fatalf("pending poll got %q, want a noop", body)
	}
	// Sent while upgrading: must reach the websocket, in order, after the upgrade.
	for i := range 3 {
		if err := c.Send(NewTextMessage("m" + strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	ws.text("5")
	for i := range 3 {
		if got := ws.next(); got != "4m"+strconv.Itoa(i) {
			t.Fatalf("message %d after the upgrade: %q", i, got)
		}
	}
	if tr := c.Transport(); tr != "websocket" {
		t.Fatalf("transport %q", tr)
	}
	if code, _ := poll(t, "GET", url, ""); code != 400 {
		t.Fatalf("poll after the upgrade: %d, want 400", code)
	}
	ws.text("4after")
	waitUntil(t, "the message over the websocket", func() bool {
		got := rec.got()
		return len(got) > 0 && got[len(got)-1] == "after"
	})
}

// Whatever the goroutines sending and however slowly the client reads, each sender's messages
// arrive in the order it sent them, and none is lost.
func TestSendOrder(t *testing.T) {
	rec := newRecorder(false)
	_, base := startEngine(t, Config{}, rec)
	ws := openWS(t, base)
	c := receive(t, "open", rec.opened)
	const senders, each = 4, 2000
	pad := strings.Repeat("x", 900)
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := c.Send(NewTextMessage(fmt.Sprintf("%d:%d:%s", s, i, pad))); err != nil {
					t.Errorf("send: %v", err)
					return
				}
			}
		}()
	}
	next := make([]int, senders)
	for range senders * each {
		_, p, err := ws.read()
		if err != nil {
			select {
			case r := <-rec.closed:
				t.Fatalf("read: %v (closed: %q)", err, r)
			default:
				t.Fatalf("read: %v", err)
			}
		}
		parts := strings.SplitN(p[1:], ":", 3)
		s, _ := strconv.Atoi(parts[0])
		i, _ := strconv.Atoi(parts[1])
		if i != next[s] {
			t.Fatalf("sender %d: got message %d, want %d", s, i, next[s])
		}
		next[s]++
	}
	wg.Wait()
}

// A client that does not read is dropped once its queue passes the write buffer limit.
func TestSlowClientIsDropped(t *testing.T) {
	rec := newRecorder(false)
	var slow atomic.Int32
	_, base := startEngine(t, Config{MaxWriteBuffer: 64 << 10, OnSlowClient: func() { slow.Add(1) }}, rec)
	openWS(t, base) // and never read from it again
	c := receive(t, "open", rec.opened)
	msg := NewTextMessage(strings.Repeat("x", 16<<10))
	var err error
	for i := 0; i < 100000 && err == nil; i++ {
		err = c.Send(msg)
	}
	if err == nil {
		t.Fatal("sending to a client that never reads never failed")
	}
	if r := receive(t, "close", rec.closed); r != ReasonTransportError {
		t.Fatalf("closed with %q", r)
	}
	if slow.Load() != 1 {
		t.Fatalf("OnSlowClient called %d times", slow.Load())
	}
}

// Close delivers what was sent before it, then the close frame.
func TestGracefulClose(t *testing.T) {
	rec := newRecorder(false)
	_, base := startEngine(t, Config{}, rec)
	ws := openWS(t, base)
	c := receive(t, "open", rec.opened)
	_ = c.Send(NewTextMessage("last"))
	c.Close()
	if got := ws.next(); got != "4last" {
		t.Fatalf("got %q", got)
	}
	if op, _, _ := ws.read(); op != opClose {
		t.Fatalf("op %d, want close", op)
	}
	if r := receive(t, "close", rec.closed); r != ReasonForcedClose {
		t.Fatalf("closed with %q", r)
	}
}

// TestGracefulCloseWhileTheClientSends: a handler that closes the connection while the client
// still sends (a refused CONNECT past the bound, with more pipelined behind it) loses none of
// the frames written before the close. The close used to end the connection at once when the
// next frame came in: the frames still queued for a slow reader were dropped, and with the
// client's bytes unread the kernel reset the connection, losing what it had not read yet.
func TestGracefulCloseWhileTheClientSends(t *testing.T) {
	const answers = 128
	big := strings.Repeat("x", 64<<10) // 8 MiB in all: more than the socket buffers hold
	rec := newRecorder(false)
	rec.onMsg = func(c *Conn, data []byte, _ bool) {
		if string(data) != "bye" {
			return
		}
		for i := range answers {
			_ = c.Send(NewTextMessage(fmt.Sprintf("m%d %s", i, big)))
		}
		c.Close()
	}
	_, base := startEngine(t, Config{}, rec)
	ws := openWS(t, base)
	_ = ws.nc.(*net.TCPConn).SetReadBuffer(16 << 10) // a slow reader: the answers queue on the server
	burst := clientFrame(true, opText, []byte("4bye"))
	for range 1000 {
		burst = append(burst, clientFrame(true, opText, []byte("4more"))...)
	}
	wrote := make(chan struct{})
	go func() { _, _ = ws.nc.Write(burst); close(wrote) }() // the server may stop reading: no error checked
	receive(t, "the client's burst written (or refused)", wrote)
	for i := range answers {
		_, got, err := ws.read()
		if want := fmt.Sprintf("4m%d %s", i, big); err != nil || got != want {
			t.Fatalf("frame %d: %d bytes, %v; want %d bytes", i, len(got), err, len(want))
		}
	}
	if op, _, err := ws.read(); err != nil || op != opClose {
		t.Fatalf("after the answers: op %d, %v; want the close frame", op, err)
	}
}

func TestShutdownLeavesNoGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rec := newRecorder(true)
	cfg := Config{Open: func(*Conn, *http.Request) Receiver { return rec }}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	ws := openWS(t, hs.URL)
	sid := openPolling(t, hs.URL)
	_ = sid
	ctx, cancel := contextWithTimeout(100 * time.Millisecond) // the polling session's next poll never comes
	defer cancel()
	srv.Shutdown(ctx)
	hs.Close()
	ws.nc.Close()
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// FuzzPayload decodes arbitrary long-polling payloads: no panic, only packets of the seven
// types, and a payload that decodes re-encodes (text as type and data, binary as "b" and base64)
// to one that decodes to the same packets.
func FuzzPayload(f *testing.F) {
	f.Add([]byte("4hello\x1e4world"))
	f.Add([]byte("bAQID\x1e2\x1e3probe"))
	f.Add([]byte("b====\x1e"))
	f.Add([]byte("bAQ\r\nID"))
	decode := func(t *testing.T, payload []byte) ([]packet, error) {
		var got []packet
		err := decodePayload(payload, func(p packet) bool {
			if p.typ < PacketOpen || p.typ > PacketNoop {
				t.Fatalf("delivered packet type %q", p.typ)
			}
			got = append(got, packet{typ: p.typ, data: append([]byte(nil), p.data...), binary: p.binary})
			return true
		})
		return got, err
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		first, err := decode(t, payload)
		if err != nil {
			return
		}
		var again []byte
		for i, p := range first {
			switch {
			case p.binary:
				again = appendPolling(again, NewBinaryMessage(p.data), i == 0)
			case p.typ == PacketMessage:
				again = appendPolling(again, NewTextMessage(string(p.data)), i == 0)
			default: // the engine's own packets: the type digit and the data
				if i > 0 {
					again = append(again, recordSeparator)
				}
				again = append(append(again, byte(p.typ)), p.data...)
			}
		}
		second, err := decode(t, again)
		if err != nil {
			t.Fatalf("%q decoded, its re-encoding %q does not: %v", payload, again, err)
		}
		if len(first) != len(second) {
			t.Fatalf("%q: %d packets, re-encoded %q: %d", payload, len(first), again, len(second))
		}
		for i := range first {
			a, b := first[i], second[i]
			if a.typ != b.typ || a.binary != b.binary || string(a.data) != string(b.data) {
				t.Fatalf("%q: packet %d %+v, re-encoded %+v", payload, i, a, b)
			}
		}
	})
}

// FuzzParseQuery: the engine's query reader agrees with net/url on EIO, transport and sid
// wherever net/url accepts the query and each of them is given at most once.
func FuzzParseQuery(f *testing.F) {
	f.Add("EIO=4&transport=polling&sid=abc")
	f.Add("EIO=4&transport=websocket&t=%41&sid=a%2Bb+c")
	f.Add("sid=%zz&EIO")
	f.Fuzz(func(t *testing.T, raw string) {
		got := parseQuery(raw) // never panics
		want, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		for k, v := range map[string]string{"EIO": got.eio, "transport": got.transport, "sid": got.sid} {
			if len(want[k]) > 1 || strings.ContainsAny(raw, ";") {
				continue
			}
			for _, kv := range strings.Split(raw, "&") { // keys are compared as written
				if key, _, _ := strings.Cut(kv, "="); key != k && strings.ContainsAny(key, "%+") {
					return
				}
			}
			if w := want.Get(k); w != v {
				t.Fatalf("%q: %s = %q, net/url says %q", raw, k, v, w)
			}
		}
	})
}

// A session closed while the layer above is still in Open (it may hand the connection to
// another goroutine, or refuse it there) is reported once Open returns, and not kept.
func TestCloseDuringOpen(t *testing.T) {
	for _, transport := range []string{"websocket", "polling"} {
		t.Run(transport, func(t *testing.T) {
			rec := newRecorder(false)
			srv, err := NewServer(Config{Open: func(c *Conn, r *http.Request) Receiver {
				c.Close()
				return rec
			}})
			if err != nil {
				t.Fatal(err)
			}
			hs := httptest.NewServer(srv)
			defer hs.Close()
			if transport == "websocket" {
				ws := openWS(t, hs.URL)
				if op, _, _ := ws.read(); op != opClose {
					t.Fatalf("op %d, want close", op)
				}
			} else {
				code, body := poll(t, "GET", hs.URL+"/?EIO=4&transport=polling", "")
				if code != 200 || !strings.HasPrefix(body, "0") {
					t.Fatalf("handshake: %d %q", code, body)
				}
			}
			if r := receive(t, "close", rec.closed); r != ReasonForcedClose {
				t.Fatalf("closed with %q", r)
			}
			select {
			case r := <-rec.closed:
				t.Fatalf("OnClose called twice (%q)", r)
			default:
			}
			if n := srv.Count(); n != 0 {
				t.Fatalf("%d sessions kept", n)
			}
		})
	}
}
