package adapters

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/socketio"
)

// stWait bounds every wait of the streams tests.
const stWait = 15 * time.Second

// stNode is one Go node of a redis-streams cluster: a socketio server on httptest with its
// backend.
type stNode struct {
	t   testing.TB
	b   *streamsBackend
	srv *socketio.Server
	nsp *socketio.Namespace
	url string
}

// startStreamsNode starts a node on the Redis at url with prefix; window is the recovery window
// (0: off). setup runs on "/" before the node serves.
func startStreamsNode(t testing.TB, url, prefix string, window time.Duration, setup func(*socketio.Namespace)) *stNode {
	t.Helper()
	be, err := newStreamsBackend(Config{Name: "redis-streams", RedisURL: url, Prefix: prefix, RecoveryWindow: window, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	b := be.(*streamsBackend)
	srv, err := socketio.NewServer(socketio.Config{Adapter: b.Adapter(), RecoveryWindow: window})
	if err != nil {
		t.Fatal(err)
	}
	nsp, err := srv.Of("/")
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(nsp)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Close(ctx)
		hs.Close()
		if err := b.Close(); err != nil {
			t.Logf("close the backend: %v", err)
		}
	})
	return &stNode{t: t, b: b, srv: srv, nsp: nsp, url: hs.URL}
}

// adapter is the node's adapter of "/".
func (n *stNode) adapter() *streamsAdapter { return n.nsp.Adapter().(*streamsAdapter) }

// socket waits for the local socket sid.
func (n *stNode) socket(sid string) *socketio.Socket {
	n.t.Helper()
	var s *socketio.Socket
	waitFor(n.t, "socket "+sid, func() bool { s = n.nsp.Socket(sid); return s != nil })
	return s
}

// stEvent is an event a test client received: its name, its arguments as JSON (binary
// attachments put back as {"$bin": base64}), and its ack id (-1: none).
type stEvent struct {
	Name string
	Args []json.RawMessage
	Ack  int
}

func (e stEvent) arg(i int) string {
	if i < len(e.Args) {
		return string(e.Args[i])
	}
	return ""
}

// stClient is a minimal Socket.IO v5 client over websocket (the default parser, one namespace),
// enough to see what a socket gets: events, binary attachments, disconnects, and to ack.
type stClient struct {
	t    *testing.T
	ws   *websocket.Conn
	wmu  sync.Mutex
	nsp  string
	SID  string
	PID  string
	done chan struct{}

	mu           sync.Mutex
	events       []stEvent
	more         chan struct{}
	disconnected bool
	lastOffset   string
	// autoAck answers the events with an ack id: the value to answer, or nil to leave them.
	autoAck func(e stEvent) any
}

// dialStreams connects a client to the namespace "/" of the server at base, with auth.
func dialStreams(t *testing.T, base string, auth map[string]any) *stClient {
	t.Helper()
	url := "ws" + strings.TrimPrefix(base, "http") + "/socket.io/?EIO=4&transport=websocket"
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	c := &stClient{t: t, ws: ws, nsp: "/", done: make(chan struct{}), more: make(chan struct{}, 1)}
	t.Cleanup(func() { _ = ws.Close() })
	_ = ws.SetReadDeadline(time.Now().Add(stWait))
	_, open, err := ws.ReadMessage()
	if err != nil || len(open) == 0 || open[0] != '0' {
		t.Fatalf("open packet: %q, %v", open, err)
	}
	payload := []byte{}
	if auth != nil {
		payload, _ = json.Marshal(auth)
	}
	c.write("40" + string(payload))
	for c.SID == "" {
		if !c.handle() {
			t.Fatalf("no CONNECT answer")
		}
	}
	_ = ws.SetReadDeadline(time.Time{})
	go c.read()
	return c
}

func (c *stClient) write(s string) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.WriteMessage(websocket.TextMessage, []byte(s))
}

// read takes the server's packets until the connection ends.
func (c *stClient) read() {
	defer close(c.done)
	for c.handle() {
	}
}

// handle reads one packet (with its attachments); false when the connection ended. Events may
// come before the CONNECT answer: Node sends a recovered session's missed events first.
func (c *stClient) handle() bool {
	_, msg, err := c.ws.ReadMessage()
	if err != nil {
		return false
	}
	s := string(msg)
	switch {
	case s == "2":
		c.write("3")
	case strings.HasPrefix(s, "40"):
		var r struct{ SID, PID string }
		if err := json.Unmarshal(msg[2:], &r); err != nil || r.SID == "" {
			c.t.Errorf("CONNECT answer %q: %v", s, err)
			return false
		}
		c.mu.Lock()
		c.SID, c.PID = r.SID, r.PID
		c.mu.Unlock()
	case strings.HasPrefix(s, "44"):
		c.t.Errorf("connect refused: %s", s)
		return false
	case strings.HasPrefix(s, "41"):
		c.mu.Lock()
		c.disconnected = true
		c.mu.Unlock()
		c.signal()
	case strings.HasPrefix(s, "42"):
		c.take(s[2:], nil)
	case strings.HasPrefix(s, "45"):
		head, rest, ok := strings.Cut(s[2:], "-")
		n, err := strconv.Atoi(head)
		if !ok || err != nil {
			return true
		}
		bins := make([][]byte, 0, n)
		for range n {
			_, b, err := c.ws.ReadMessage()
			if err != nil {
				return false
			}
			bins = append(bins, b)
		}
		c.take(rest, bins)
	}
	return true
}

// take records one event: [ack id] JSON array, binary placeholders replaced.
func (c *stClient) take(s string, bins [][]byte) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	ack := -1
	if i > 0 {
		ack, _ = strconv.Atoi(s[:i])
	}
	var arr []json.RawMessage
	if err := json.Unmarshal([]byte(s[i:]), &arr); err != nil || len(arr) == 0 {
		return
	}
	for j := range arr {
		arr[j] = withBins(arr[j], bins)
	}
	var name string
	_ = json.Unmarshal(arr[0], &name)
	e := stEvent{Name: name, Args: arr[1:], Ack: ack}
	c.mu.Lock()
	c.events = append(c.events, e)
	if c.PID != "" && len(e.Args) > 0 {
		var off string
		if json.Unmarshal(e.Args[len(e.Args)-1], &off) == nil {
			c.lastOffset = off
		}
	}
	answer := c.autoAck
	c.mu.Unlock()
	c.signal()
	if ack >= 0 && answer != nil {
		if v := answer(e); v != nil {
			b, _ := json.Marshal([]any{v})
			c.write("43" + strconv.Itoa(ack) + string(b))
		}
	}
}

// withBins puts binary attachments back in place of their placeholders, as {"$bin": base64}.
func withBins(raw json.RawMessage, bins [][]byte) json.RawMessage {
	if len(bins) == 0 {
		return raw
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return raw
	}
	var fill func(any) any
	fill = func(v any) any {
		switch t := v.(type) {
		case map[string]any:
			if p, _ := t["_placeholder"].(bool); p {
				if n, ok := t["num"].(float64); ok && int(n) < len(bins) {
					return map[string]any{"$bin": base64.StdEncoding.EncodeToString(bins[int(n)])}
				}
			}
			for k, e := range t {
				t[k] = fill(e)
			}
		case []any:
			for i, e := range t {
				t[i] = fill(e)
			}
		}
		return v
	}
	b, _ := json.Marshal(fill(v))
	return b
}

// ackWith sets what the client answers to events with an ack id (nil: no answer).
func (c *stClient) ackWith(f func(e stEvent) any) {
	c.mu.Lock()
	c.autoAck = f
	c.mu.Unlock()
}

func (c *stClient) signal() {
	select {
	case c.more <- struct{}{}:
	default:
	}
}

// list returns the events so far.
func (c *stClient) list() []stEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]stEvent(nil), c.events...)
}

// named returns the events called name so far.
func (c *stClient) named(name string) []stEvent {
	var out []stEvent
	for _, e := range c.list() {
		if e.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// waitEvent waits for the n-th (from 1) event called name and returns it.
func (c *stClient) waitEvent(name string, n int) stEvent {
	c.t.Helper()
	deadline := time.NewTimer(stWait)
	defer deadline.Stop()
	for {
		if got := c.named(name); len(got) >= n {
			return got[n-1]
		}
		select {
		case <-c.more:
		case <-deadline.C:
			c.t.Fatalf("client %s: no event %q (#%d) within %v; got %v", c.SID, name, n, stWait, c.list())
		}
	}
}

// waitDisconnect waits for the server's DISCONNECT.
func (c *stClient) waitDisconnect() {
	c.t.Helper()
	deadline := time.NewTimer(stWait)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		d := c.disconnected
		c.mu.Unlock()
		if d {
			return
		}
		select {
		case <-c.more:
		case <-deadline.C:
			c.t.Fatalf("client %s: no disconnect within %v", c.SID, stWait)
		}
	}
}

// offset is the last offset the client got (what socket.io-client sends back to recover).
func (c *stClient) offset() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastOffset
}

// drop cuts the connection without a word, as a network failure does ("transport close" on
// the server: a session kept for recovery).
func (c *stClient) drop() {
	_ = c.ws.UnderlyingConn().Close()
	<-c.done
}

// sessionKept waits until the session of pid is in Redis (a socket's session is written as it
// closes).
func sessionKept(t *testing.T, b *streamsBackend, pid string) {
	t.Helper()
	waitFor(t, "the session kept", func() bool {
		n, err := b.conn.Client().Exists(t.Context(), b.sessionPrefix+pid).Result()
		return err == nil && n == 1
	})
}

// jsonOf is v as JSON, for comparing with what a client got.
func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprint(err))
	}
	return string(b)
}
