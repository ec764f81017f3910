package engineio

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/wstest"
)

// waitTimeout bounds every wait in these tests: nothing sleeps, everything waits for an event.
const waitTimeout = 10 * time.Second

// recorder is a Receiver that records what it gets and can echo it.
type recorder struct {
	echo bool

	mu       sync.Mutex
	messages []string
	closed   chan string
	opened   chan *Conn
	onMsg    func(c *Conn, data []byte, binary bool)
}

func newRecorder(echo bool) *recorder {
	return &recorder{echo: echo, closed: make(chan string, 16), opened: make(chan *Conn, 16)}
}

func (r *recorder) OnMessage(c *Conn, data []byte, binary bool) {
	r.mu.Lock()
	r.messages = append(r.messages, string(data))
	fn := r.onMsg
	r.mu.Unlock()
	if fn != nil {
		fn(c, data, binary)
	}
	if r.echo {
		if binary {
			_ = c.Send(NewBinaryMessage(data))
		} else {
			_ = c.Send(NewTextMessage(string(data)))
		}
	}
}

func (r *recorder) OnClose(c *Conn, reason string) { r.closed <- reason }

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.messages...)
}

// startEngine serves an engine at /engine.io/ until the test ends.
func startEngine(t *testing.T, cfg Config, rec *recorder) (*Server, string) {
	t.Helper()
	cfg.Open = func(c *Conn, r *http.Request) Receiver {
		rec.opened <- c
		return rec
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		ctx, cancel := contextWithTimeout(time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv, hs.URL
}

func receive[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// poll does a long-polling request and returns status and body.
func poll(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// openPolling starts a long-polling session and returns its sid.
func openPolling(t *testing.T, base string) string {
	t.Helper()
	code, body := poll(t, "GET", base+"/?EIO=4&transport=polling", "")
	if code != 200 || !strings.HasPrefix(body, "0") {
		t.Fatalf("handshake: %d %q", code, body)
	}
	var open struct{ SID string }
	if err := json.Unmarshal([]byte(body[1:]), &open); err != nil {
		t.Fatal(err)
	}
	return open.SID
}

// wsClient is a websocket of wstest's: masked frames out, frames in.
type wsClient struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dialWS(t *testing.T, base, query string) *wsClient {
	t.Helper()
	nc, br, err := wstest.Dial(strings.TrimPrefix(base, "http://"), "/?"+query)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &wsClient{t: t, nc: nc, br: br}
}

// openWS opens a websocket session on base and reads its open packet.
func openWS(t *testing.T, base string) *wsClient {
	t.Helper()
	ws := dialWS(t, base, "EIO=4&transport=websocket")
	if open := ws.next(); !strings.HasPrefix(open, `0{"sid":"`) {
		t.Fatalf("open packet %q", open)
	}
	return ws
}

func (c *wsClient) send(op byte, payload []byte) {
	if _, err := c.nc.Write(clientFrame(true, op, payload)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *wsClient) text(s string) { c.send(opText, []byte(s)) }

// read returns the next frame's opcode and payload; err at the end of the connection.
func (c *wsClient) read() (byte, string, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(waitTimeout))
	op, p, err := wstest.ReadFrame(c.br)
	return op, string(p), err
}

// next returns the next frame's payload, failing the test on an error.
func (c *wsClient) next() string {
	c.t.Helper()
	_, p, err := c.read()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return p
}
