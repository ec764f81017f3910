package adapters

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/socketio"
)

// waitTimeout bounds every wait of these tests; nothing sleeps to wait for a condition.
const waitTimeout = 15 * time.Second

// localRedis is the machine's Redis; tests that use it take a prefix of their own.
const localRedis = "redis://127.0.0.1:6379/0"

var prefixSafe = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// uniquePrefix is a Redis prefix no other test (or run) uses.
func uniquePrefix(t testing.TB) string {
	return "sbt-" + prefixSafe.ReplaceAllString(t.Name(), "_") + "-" + randomID(4)
}

// sseCall is a serverSideEmit a test node's namespace received.
type sseCall struct {
	args    []any
	withAck bool
}

// node is a Switchboard node for the tests: a socketio server on a backend, served on
// 127.0.0.1:0.
type node struct {
	t   testing.TB
	b   Backend
	srv *socketio.Server
	url string
	nsp *socketio.Namespace
	sse chan sseCall
}

func startNode(t testing.TB, cfg Config) *node {
	t.Helper()
	cfg.Logger = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	b, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%s): %v", cfg.Name, err)
	}
	srv, err := socketio.NewServer(socketio.Config{Adapter: b.Adapter(), Logger: cfg.Logger})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, b: b, srv: srv, sse: make(chan sseCall, 100)}
	n.nsp, err = srv.Of("/")
	if err != nil {
		t.Fatal(err)
	}
	n.nsp.OnServerSideEmit(func(args []any, ack func(...any)) {
		n.sse <- sseCall{args: args, withAck: ack != nil}
		if ack != nil {
			ack(map[string]any{"from": "go", "args": args})
		}
	})
	n.nsp.OnConnection(func(s *socketio.Socket) {
		s.SetData(socketData{Who: "go", N: 1})
	})
	hs := httptest.NewServer(srv)
	n.url = hs.URL
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Close(ctx)
		hs.Close()
		if err := b.Close(); err != nil {
			t.Errorf("close backend: %v", err)
		}
	})
	return n
}

// socketData is what Go sockets keep, a struct with json tags as the product's are.
type socketData struct {
	Who string `json:"who"`
	N   int    `json:"n"`
}

// socket returns the local socket with id, waiting until it is connected.
func (n *node) socket(id string) *socketio.Socket {
	n.t.Helper()
	var s *socketio.Socket
	waitFor(n.t, "socket "+id, func() bool { s = n.nsp.Socket(id); return s != nil && s.Connected() })
	return s
}

// client is a minimal Socket.IO v5 client over websocket (default parser): it records the
// events it gets and acks those that ask, with [{"sid": <its id>, "event": <event name>}, "more"]
// (a second argument that only this node's acks carry across: Node forwards the first).
type client struct {
	t      testing.TB
	name   string
	conn   *websocket.Conn
	sid    string
	events chan []any
	closed chan struct{}
	wmu    sync.Mutex
}

// dial connects a client to the server at base (http://host:port) on namespace /.
func dial(t testing.TB, base, name string) *client {
	t.Helper()
	u := "ws" + strings.TrimPrefix(base, "http") + "/socket.io/?EIO=4&transport=websocket"
	conn, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	c := &client{t: t, name: name, conn: conn, events: make(chan []any, 20000), closed: make(chan struct{})}
	t.Cleanup(func() { _ = conn.Close(); <-c.closed })
	_ = conn.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, msg, err := conn.ReadMessage(); err != nil || len(msg) == 0 || msg[0] != '0' {
		t.Fatalf("open packet: %q, %v", msg, err)
	}
	c.write("40")
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		if string(msg) == "2" {
			c.write("3")
			continue
		}
		if !bytes.HasPrefix(msg, []byte("40")) {
			t.Fatalf("connect answer: %q", msg)
		}
		var r struct {
			SID string `json:"sid"`
		}
		if err := json.Unmarshal(msg[2:], &r); err != nil || r.SID == "" {
			t.Fatalf("connect answer %q: %v", msg, err)
		}
		c.sid = r.SID
		break
	}
	_ = conn.SetReadDeadline(time.Time{})
	go c.read()
	return c
}

func (c *client) write(s string) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.WriteMessage(websocket.TextMessage, []byte(s))
}

// read decodes what the server sends: pings, events (binary ones with their attachments),
// disconnects.
func (c *client) read() {
	defer close(c.closed)
	var pending []byte // a binary event waiting for attachments
	var want int
	var bins [][]byte
	for {
		typ, msg, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		if typ == websocket.BinaryMessage {
			bins = append(bins, msg)
			if len(bins) == want {
				c.event(pending, bins)
				pending, bins, want = nil, nil, 0
			}
			continue
		}
		switch {
		case string(msg) == "2":
			c.write("3")
		case bytes.HasPrefix(msg, []byte("42")):
			c.event(msg[2:], nil)
		case bytes.HasPrefix(msg, []byte("45")):
			rest := msg[2:]
			i := bytes.IndexByte(rest, '-')
			n, _ := strconv.Atoi(string(rest[:i]))
			pending, want = rest[i+1:], n
		case bytes.HasPrefix(msg, []byte("41")):
			c.events <- []any{"$disconnect"}
		}
	}
}

// event handles an event's payload: [id]json.
func (c *client) event(p []byte, bins [][]byte) {
	i := 0
	for i < len(p) && p[i] >= '0' && p[i] <= '9' {
		i++
	}
	id := string(p[:i])
	var data []any
	if err := json.Unmarshal(p[i:], &data); err != nil {
		c.t.Errorf("client %s: event %q: %v", c.name, p, err)
		return
	}
	if bins != nil {
		for k, v := range data {
			data[k] = fill(v, bins)
		}
	}
	if id != "" {
		name, _ := data[0].(string)
		ack, _ := json.Marshal([]any{map[string]any{"sid": c.sid, "event": name}, "more"})
		c.write("43" + id + string(ack))
	}
	c.events <- data
}

func fill(v any, bins [][]byte) any {
	switch t := v.(type) {
	case map[string]any:
		if t["_placeholder"] == true {
			return bins[int(t["num"].(float64))]
		}
		for k, e := range t {
			t[k] = fill(e, bins)
		}
	case []any:
		for k, e := range t {
			t[k] = fill(e, bins)
		}
	}
	return v
}

// next returns the next event the client got.
func (c *client) next() []any {
	c.t.Helper()
	select {
	case ev := <-c.events:
		return ev
	case <-time.After(waitTimeout):
		c.t.Fatalf("client %s: no event within %v", c.name, waitTimeout)
		return nil
	}
}

// expect checks that the next events are exactly names, in order (by event name).
func (c *client) expect(names ...string) {
	c.t.Helper()
	for _, want := range names {
		ev := c.next()
		if got, _ := ev[0].(string); got != want {
			c.t.Fatalf("client %s: got event %v, want %q", c.name, ev, want)
		}
	}
}

// disconnect closes the client's connection.
func (c *client) disconnect() { _ = c.conn.Close() }

// mustJSON is v in JSON, for messages.
func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
