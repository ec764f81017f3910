package adapters

// helpers_test.go: what every test of the package shares: the local Redis, Go nodes on a
// backend, and a raw Socket.IO client that records what a socket gets.

import (
	"context"
	"encoding/base64"
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

	"github.com/switchboard/switchboard/internal/nodepeer"
	"github.com/switchboard/switchboard/socketio"
)

// waitTimeout bounds every wait of these tests; nothing sleeps to wait for a condition.
const waitTimeout = 15 * time.Second

// localRedis is the machine's Redis (make setup starts it); tests that use it take a prefix of
// their own.
const localRedis = "redis://127.0.0.1:6379/0"

var prefixSafe = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// uniquePrefix is a Redis prefix no other test (or run) uses.
func uniquePrefix(t testing.TB) string {
	return "sbt-" + prefixSafe.ReplaceAllString(t.Name(), "_") + "-" + randomID(4)
}

// waitFor polls cond until it holds, waitTimeout at most.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
}

// recvValue waits for a value on ch.
func recvValue[T any](t testing.TB, what string, ch <-chan T) T {
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

// jsonOf is v in JSON, for comparing and for messages.
func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// dialTest connects to the Redis at url, closed when the test ends.
func dialTest(t testing.TB, url string) *Conn {
	t.Helper()
	c, err := DialRedis(ConnConfig{URL: url, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("dial %s: %v (make setup starts Redis on 127.0.0.1:6379)", url, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// serve is a socketio server on b (recovery on with a window), and its namespace "/".
func serve(t testing.TB, b Backend, window time.Duration, log zerolog.Logger) (*socketio.Server, *socketio.Namespace) {
	t.Helper()
	srv, err := socketio.NewServer(socketio.Config{Adapter: b.Adapter(), RecoveryWindow: window, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	nsp, err := srv.Of("/")
	if err != nil {
		t.Fatal(err)
	}
	return srv, nsp
}

// rootNamespace is namespace "/" of a server on no backend, for the tests of the adapters'
// encoders (which name their namespace).
func rootNamespace(t testing.TB) *socketio.Namespace {
	t.Helper()
	b, err := New(Config{Name: "memory"})
	if err != nil {
		t.Fatal(err)
	}
	srv, nsp := serve(t, b, 0, zerolog.Nop())
	t.Cleanup(func() { srv.Close(context.Background()) })
	return nsp
}

// node is a Switchboard node for the tests: a socketio server on a backend, served on
// 127.0.0.1:0.
type node struct {
	t   testing.TB
	b   Backend
	srv *socketio.Server
	url string
	nsp *socketio.Namespace
	sse chan sseCall // what answerAsGo recorded
}

// sseCall is a serverSideEmit a test node's namespace received.
type sseCall struct {
	args    []any
	withAck bool
}

// startNode starts a node on the backend cfg names (cfg.RecoveryWindow is the server's too),
// closed when the test ends; setup, if any, prepares it before it serves.
func startNode(t testing.TB, cfg Config, setup func(*node)) *node {
	t.Helper()
	cfg.Logger = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	b, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%s): %v", cfg.Name, err)
	}
	n := &node{t: t, b: b, sse: make(chan sseCall, 100)}
	n.srv, n.nsp = serve(t, b, cfg.RecoveryWindow, cfg.Logger)
	if setup != nil {
		setup(n)
	}
	hs := httptest.NewServer(n.srv)
	n.url = hs.URL
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.srv.Close(ctx)
		hs.Close()
		if err := b.Close(); err != nil {
			t.Errorf("close backend: %v", err)
		}
	})
	return n
}

// answerAsGo is the node setup of the interop tests: every serverSideEmit is recorded on n.sse
// and, when it asks, acked with {"from": "go", "args": args} and a second argument (that only
// the first crosses the cluster is Node's rule); a socket that did not recover a session keeps
// socketData{Who: "go", N: 1}.
func (n *node) answerAsGo() {
	n.nsp.OnServerSideEmit(func(args []any, ack func(...any)) {
		n.sse <- sseCall{args: args, withAck: ack != nil}
		if ack != nil {
			ack(map[string]any{"from": "go", "args": args}, "ignored")
		}
	})
	n.nsp.OnConnection(func(s *socketio.Socket) {
		if !s.Recovered() {
			s.SetData(socketData{Who: "go", N: 1})
		}
	})
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

// streams is the node's backend when it is redis-streams.
func (n *node) streams() *streamsBackend { return n.b.(*streamsBackend) }

// nextSSE waits for the next serverSideEmit answerAsGo recorded.
func nextSSE(t testing.TB, n *node) sseCall {
	t.Helper()
	return recvValue(t, "a serverSideEmit", n.sse)
}

// peerSocket is a socket as the Node peer lists it (its sockets and fetchSockets commands).
type peerSocket struct {
	ID        string         `json:"id"`
	Rooms     []string       `json:"rooms"`
	Data      map[string]any `json:"data"`
	Handshake map[string]any `json:"handshake"`
}

// peerSockets is the Node peer's own sockets.
func peerSockets(p *nodepeer.Peer) []peerSocket {
	var out []peerSocket
	p.Must("sockets", nil, &out)
	return out
}

// event is an event a test client received: its name, its arguments as JSON (binary
// attachments put back as {"$bin": base64}), and its ack id (-1: none). The server's
// DISCONNECT is an event named "$disconnect".
type event struct {
	Name string
	Args []json.RawMessage
	Ack  int
}

func (e event) arg(i int) string {
	if i < len(e.Args) {
		return string(e.Args[i])
	}
	return ""
}

// values is the event decoded: its name, then its arguments (numbers as float64).
func (e event) values() []any {
	out := []any{e.Name}
	for _, a := range e.Args {
		var v any
		_ = json.Unmarshal(a, &v)
		out = append(out, v)
	}
	return out
}

// client is a minimal Socket.IO v5 client over websocket (the default parser, namespace "/"):
// it records what its socket gets, in order, and acks the events that ask, by default with
// [{"sid": <its id>, "event": <event name>}, "more"] (a second argument that only this node's
// acks carry across: Node forwards the first).
type client struct {
	t    testing.TB
	name string // for messages; the socket id when empty
	ws   *websocket.Conn
	wmu  sync.Mutex
	sid  string
	pid  string
	done chan struct{}

	mu         sync.Mutex
	events     []event
	taken      int // the events next returned
	more       chan struct{}
	lastOffset string
	// autoAck gives the arguments of the ack to an event that asks for one (nil: no answer).
	autoAck func(e event) []any
}

// dial connects a client to the server at base (http://host:port).
func dial(t testing.TB, base, name string) *client { return dialAuth(t, base, name, nil) }

// dialAuth is dial with the CONNECT packet's auth.
func dialAuth(t testing.TB, base, name string, auth map[string]any) *client {
	t.Helper()
	url := "ws" + strings.TrimPrefix(base, "http") + "/socket.io/?EIO=4&transport=websocket"
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	c := &client{t: t, name: name, ws: ws, done: make(chan struct{}), more: make(chan struct{}, 1)}
	c.autoAck = func(e event) []any { return []any{map[string]any{"sid": c.sid, "event": e.Name}, "more"} }
	t.Cleanup(func() { _ = ws.Close() })
	_ = ws.SetReadDeadline(time.Now().Add(waitTimeout))
	_, open, err := ws.ReadMessage()
	if err != nil || len(open) == 0 || open[0] != '0' {
		t.Fatalf("open packet: %q, %v", open, err)
	}
	payload := []byte{}
	if auth != nil {
		payload, _ = json.Marshal(auth)
	}
	c.write("40" + string(payload))
	for c.sid == "" {
		if !c.handle() {
			t.Fatalf("no CONNECT answer")
		}
	}
	_ = ws.SetReadDeadline(time.Time{})
	go c.read()
	t.Cleanup(func() { _ = ws.Close(); <-c.done })
	return c
}

func (c *client) String() string {
	if c.name != "" {
		return c.name
	}
	return c.sid
}

func (c *client) write(s string) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.WriteMessage(websocket.TextMessage, []byte(s))
}

// read takes the server's packets until the connection ends.
func (c *client) read() {
	defer close(c.done)
	for c.handle() {
	}
}

// handle reads one packet (with its attachments); false when the connection ended. Events may
// come before the CONNECT answer: Node sends a recovered session's missed events first.
func (c *client) handle() bool {
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
		c.sid, c.pid = r.SID, r.PID
		c.mu.Unlock()
	case strings.HasPrefix(s, "44"):
		c.t.Errorf("connect refused: %s", s)
		return false
	case strings.HasPrefix(s, "41"):
		c.record(event{Name: "$disconnect", Ack: -1})
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

// take records one event: [ack id] JSON array, binary placeholders replaced, and acks it.
func (c *client) take(s string, bins [][]byte) {
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
		c.t.Errorf("client %s: event %q: %v", c, s, err)
		return
	}
	for j := range arr {
		arr[j] = withBins(arr[j], bins)
	}
	var name string
	_ = json.Unmarshal(arr[0], &name)
	e := event{Name: name, Args: arr[1:], Ack: ack}
	answer := c.record(e)
	if ack >= 0 && answer != nil {
		if args := answer(e); args != nil {
			b, _ := json.Marshal(args)
			c.write("43" + strconv.Itoa(ack) + string(b))
		}
	}
}

// record keeps e (and the offset it carries, with recovery on) and returns the ack answerer.
func (c *client) record(e event) func(event) []any {
	c.mu.Lock()
	c.events = append(c.events, e)
	if c.pid != "" && len(e.Args) > 0 {
		var off string
		if json.Unmarshal(e.Args[len(e.Args)-1], &off) == nil {
			c.lastOffset = off
		}
	}
	answer := c.autoAck
	c.mu.Unlock()
	select {
	case c.more <- struct{}{}:
	default:
	}
	return answer
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

// ackWith sets what the client answers to events with an ack id: one argument, or nothing for
// nil.
func (c *client) ackWith(f func(e event) any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.autoAck = func(e event) []any {
		if v := f(e); v != nil {
			return []any{v}
		}
		return nil
	}
}

// list returns the events so far.
func (c *client) list() []event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]event(nil), c.events...)
}

// named returns the events called name so far.
func (c *client) named(name string) []event {
	var out []event
	for _, e := range c.list() {
		if e.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// until waits, waitTimeout at most, until f (called with c.mu held) holds.
func (c *client) until(what string, f func() bool) {
	c.t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		ok := f()
		c.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-c.more:
		case <-deadline.C:
			c.t.Fatalf("client %s: no %s within %v; got %v", c, what, waitTimeout, c.list())
		}
	}
}

// next returns the next event the client got (each once, in order).
func (c *client) next() event {
	c.t.Helper()
	c.until("event", func() bool { return c.taken < len(c.events) })
	c.mu.Lock()
	defer c.mu.Unlock()
	c.taken++
	return c.events[c.taken-1]
}

// expect checks that the next events are exactly names, in order.
func (c *client) expect(names ...string) {
	c.t.Helper()
	for _, want := range names {
		if e := c.next(); e.Name != want {
			c.t.Fatalf("client %s: got event %s %v, want %q", c, e.Name, e.Args, want)
		}
	}
}

// waitEvent waits for the n-th (from 1) event called name and returns it.
func (c *client) waitEvent(name string, n int) event {
	c.t.Helper()
	c.until(fmt.Sprintf("event %q (#%d)", name, n), func() bool {
		got := 0
		for _, e := range c.events {
			if e.Name == name {
				got++
			}
		}
		return got >= n
	})
	return c.named(name)[n-1]
}

// waitDisconnect waits for the server's DISCONNECT.
func (c *client) waitDisconnect() {
	c.t.Helper()
	c.waitEvent("$disconnect", 1)
}

// offset is the last offset the client got (what socket.io-client sends back to recover).
func (c *client) offset() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastOffset
}

// drop cuts the connection without a word, as a network failure does ("transport close" on
// the server: a session kept for recovery).
func (c *client) drop() {
	_ = c.ws.UnderlyingConn().Close()
	<-c.done
}
