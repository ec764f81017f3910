package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// servedBy is what a frontDoor test handler saw: which writer served which request.
type servedBy struct {
	path   string
	byDoor bool // a *handshakeWriter: served by the front door, not net/http
}

// startFrontDoor serves handler through a frontDoor and net/http on 127.0.0.1:0, as Serve does.
func startFrontDoor(t *testing.T, headerTimeout time.Duration, handler http.Handler) (addr string, served <-chan servedBy) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan servedBy, 64)
	record := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, byDoor := w.(*handshakeWriter)
		seen <- servedBy{path: r.URL.Path, byDoor: byDoor}
		handler.ServeHTTP(w, r)
	})
	door := newFrontDoor(ln, record, t.Context(), headerTimeout, zerolog.Nop(), func(fn func()) { fn() })
	srv := &http.Server{Handler: record, ReadHeaderTimeout: headerTimeout}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(door) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
		}
		if _, err := door.Accept(); err == nil {
			t.Errorf("Accept after Close succeeded")
		}
	})
	return ln.Addr().String(), seen
}

func handshakeHead(path, extraHeaders string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + extraHeaders + "\r\n"
}

// upgradeOrRefuse hijacks a websocket handshake and writes a fixed 101 and "hello", unless the
// query says refuse: then it answers 400 with a JSON body, as the engine refuses one.
var upgradeOrRefuse = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Has("refuse") || r.Header.Get("Upgrade") == "" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"code":3,"message":"Bad request"}`)
		return
	}
	if r.URL.Query().Has("panic") {
		panic("handler failed")
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	if brw.Reader.Buffered() > 0 {
		_, _ = io.WriteString(conn, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
		_ = conn.Close()
		return
	}
	_, _ = io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhello")
	_ = conn.Close()
})

// exchange writes parts to a fresh connection to addr, one write each, and reads until EOF.
func exchange(t *testing.T, addr string, parts ...string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(waitTimeout))
	for _, p := range parts {
		if _, err := io.WriteString(c, p); err != nil {
			t.Fatal(err)
		}
	}
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v (got %q)", err, out)
	}
	return string(out)
}

func TestFrontDoorServesWebsocketHandshakes(t *testing.T) {
	addr, served := startFrontDoor(t, waitTimeout, upgradeOrRefuse)
	head := handshakeHead("/socket.io/?EIO=4&transport=websocket", "")
	cases := []struct {
		name  string
		parts []string
	}{
		{"whole", []string{head}},
		{"in pieces", []string{head[:10], head[10 : len(head)-3], head[len(head)-3 : len(head)-1], head[len(head)-1:]}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := exchange(t, addr, tc.parts...)
			if !strings.HasPrefix(got, "HTTP/1.1 101 ") || !strings.HasSuffix(got, "\r\n\r\nhello") {
				t.Fatalf("got %q, want the handler's 101 and hello", got)
			}
			if s := <-served; !s.byDoor || s.path != "/socket.io/" {
				t.Fatalf("served %+v, want /socket.io/ by the front door", s)
			}
		})
	}
}

func TestFrontDoorWritesARefusal(t *testing.T) {
	addr, served := startFrontDoor(t, waitTimeout, upgradeOrRefuse)
	got := exchange(t, addr, handshakeHead("/socket.io/?EIO=4&transport=websocket&refuse", ""))
	res, err := http.ReadResponse(bufio.NewReader(strings.NewReader(got)), nil)
	if err != nil {
		t.Fatalf("not an HTTP response: %v (%q)", err, got)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusBadRequest || string(body) != `{"code":3,"message":"Bad request"}` ||
		res.Header.Get("Content-Type") != "application/json" || !res.Close {
		t.Fatalf("got %d %q %v close=%v, want 400 with the JSON body and Connection: close", res.StatusCode, body, res.Header, res.Close)
	}
	if s := <-served; !s.byDoor {
		t.Fatalf("served %+v by net/http, want the front door", s)
	}
}

func TestFrontDoorLeavesEverythingElseToNetHTTP(t *testing.T) {
	addr, served := startFrontDoor(t, waitTimeout, upgradeOrRefuse)
	bigCookie := "Cookie: c=" + strings.Repeat("x", headBufferSize) + "\r\n"
	cases := []struct {
		name  string
		parts []string
		want  string // prefix of the answer
	}{
		{"plain requests, kept alive", []string{
			"GET /a HTTP/1.1\r\nHost: x\r\n\r\n",
			"GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		}, "HTTP/1.1 400 "},
		{"a head larger than the buffer", []string{handshakeHead("/socket.io/?EIO=4&transport=websocket", bigCookie)}, "HTTP/1.1 101 "},
		{"data behind the handshake", []string{handshakeHead("/socket.io/?EIO=4&transport=websocket", "") + "\x81\x05hello"}, "HTTP/1.1 400 "},
		{"another path", []string{handshakeHead("/other", "")}, "HTTP/1.1 101 "},
		{"not a handshake", []string{"POST /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab"}, "HTTP/1.1 400 "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := exchange(t, addr, strings.Join(tc.parts, ""))
			if !strings.HasPrefix(got, tc.want) {
				t.Fatalf("got %q, want %q…", got, tc.want)
			}
			for range strings.Count(got, "HTTP/1.1 ") {
				if s := <-served; s.byDoor {
					t.Fatalf("served %+v by the front door, want net/http", s)
				}
			}
		})
	}
}

func TestHeadEnd(t *testing.T) {
	tests := []struct {
		head string
		want int
	}{
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27},
		{"GET / HTTP/1.1\nHost: x\n\n", 24},
		{"GET / HTTP/1.1\r\nHost: x\n\r\n", 26},
		{"GET / HTTP/1.1\r\nHost: x\r\n", -1},
		{"GET / HTTP/1.1\r\nHost: x\r\n\r", -1},
		{"", -1},
	}
	for _, tc := range tests {
		if got := headEnd([]byte(tc.head), 0); got != tc.want {
			t.Errorf("headEnd(%q) = %d, want %d", tc.head, got, tc.want)
		}
	}
	// The search resumes two bytes before the new data, so an end split across reads is found.
	b := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	for split := 1; split < len(b); split++ {
		from := max(split-2, 0)
		got := headEnd(b[:split], 0)
		if got < 0 {
			got = headEnd(b[from:], from)
		}
		if got != len(b) {
			t.Fatalf("split at %d: end %d, want %d", split, got, len(b))
		}
	}
}

func TestFrontDoorClosesSilentConnections(t *testing.T) {
	addr, _ := startFrontDoor(t, 50*time.Millisecond, upgradeOrRefuse)
	for _, sent := range []string{"", "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n", "GET /healthz HTTP/1.1\r\n"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, sent)
		_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
		if _, err := io.ReadAll(c); err != nil {
			t.Fatalf("sent %q and stopped: %v, want the server to close the connection", sent, err)
		}
		c.Close()
	}
}

func TestFrontDoorPanicClosesOnlyThatConnection(t *testing.T) {
	addr, served := startFrontDoor(t, waitTimeout, upgradeOrRefuse)
	if got := exchange(t, addr, handshakeHead("/socket.io/?panic", "")); got != "" {
		t.Fatalf("got %q after a panic, want the connection closed", got)
	}
	<-served
	if got := exchange(t, addr, handshakeHead("/socket.io/", "")); !strings.HasPrefix(got, "HTTP/1.1 101 ") {
		t.Fatalf("after a panic got %q, want the next handshake served", got)
	}
	<-served
}

// TestFrontDoorInTheServer checks a node (whose listener is a front door, see Serve) still serves
// a websocket client and refuses a bad handshake with the engine's error (for an upgrade the
// engine answers in plain text, as Node's does). Which side serves what is TestFrontDoor*'s.
func TestFrontDoorInTheServer(t *testing.T) {
	ts := startServer(t, testConfig())
	c := mustRawDial(t, ts, "/") // a websocket through the front door, connected to "/"
	defer c.close()
	if reply := c.call(t, "/", "subscribe", `{"rooms":["r"]}`, 1); errorCode(reply) != "" {
		t.Fatalf("subscribe over a front-door websocket: %v", reply)
	}
	addr := strings.TrimPrefix(ts.URL, "http://")
	got := exchange(t, addr, handshakeHead("/socket.io/?EIO=4&transport=websocket&sid=unknown", ""))
	res, err := http.ReadResponse(bufio.NewReader(strings.NewReader(got)), nil)
	if err != nil {
		t.Fatalf("not an HTTP response: %v (%q)", err, got)
	}
	body, _ := io.ReadAll(res.Body)
	if want := "Session ID unknown"; res.StatusCode != http.StatusBadRequest || strings.TrimSpace(string(body)) != want {
		t.Fatalf("unknown sid over websocket: %d %q, want 400 %s", res.StatusCode, body, want)
	}
}
