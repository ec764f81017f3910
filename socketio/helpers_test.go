package socketio

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/engineio"
	"github.com/switchboard/switchboard/internal/wstest"
)

// waitTimeout bounds every wait in these tests: nothing sleeps, everything waits for an event.
const waitTimeout = 10 * time.Second

// testServer is a Server on httptest, with the clients (Engine.IO connections) it opened.
type testServer struct {
	t   *testing.T
	srv *Server
	url string // http://127.0.0.1:port

	mu      sync.Mutex
	clients []*client
}

// startServer builds a server with cfg, lets setup add its namespaces, and serves it on
// 127.0.0.1:0 until the test ends. The engine is rebuilt around the server's own Open so that
// tests can look at every client it made.
func startServer(t *testing.T, cfg Config, setup func(srv *Server)) *testServer {
	t.Helper()
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{t: t, srv: srv}
	ecfg := srv.cfg.Engine
	ecfg.Open = func(c *engineio.Conn, r *http.Request) engineio.Receiver {
		rc := srv.open(c, r)
		ts.mu.Lock()
		ts.clients = append(ts.clients, rc.(*client))
		ts.mu.Unlock()
		return rc
	}
	first := srv.engine
	if srv.engine, err = engineio.NewServer(ecfg); err != nil {
		t.Fatal(err)
	}
	first.Shutdown(closedContext())
	if setup != nil {
		setup(srv)
	}
	hs := httptest.NewServer(srv)
	ts.url = hs.URL
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Close(ctx)
		hs.Close()
	})
	return ts
}

// startRecorded serves a server with cfg whose "/" is recorded; setup, when not nil, then adds to
// "/" (middlewares, more handlers, after the recorder's) and may serve other namespaces of
// root.srv.
func startRecorded(t *testing.T, cfg Config, setup func(root *Namespace)) (*testServer, *recorder) {
	t.Helper()
	var rec *recorder
	ts := startServer(t, cfg, func(srv *Server) {
		root := of(t, srv, "/")
		rec = record(root)
		if setup != nil {
			setup(root)
		}
	})
	return ts, rec
}

// connectRoot dials ts and connects to "/", returning the client and its socket, as the recorder
// of "/" heard of it.
func (ts *testServer) connectRoot(rec *recorder) (*rawClient, *Socket) {
	ts.t.Helper()
	c := ts.dial()
	c.connect("/", "")
	return c, receive(ts.t, "OnConnection", rec.connected)
}

func closedContext() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// of returns the namespace name of srv, failing the test if it cannot be made.
func of(t *testing.T, srv *Server, name string) *Namespace {
	t.Helper()
	n, err := srv.Of(name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// clientList is a copy of the clients the server opened.
func (ts *testServer) clientList() []*client {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]*client(nil), ts.clients...)
}

// socketsKept counts the sockets the server's clients still hold, connecting ones included.
func (ts *testServer) socketsKept() int {
	n := 0
	for _, cl := range ts.clientList() {
		cl.mu.Lock()
		n += len(cl.sockets)
		cl.mu.Unlock()
	}
	return n
}

// waitFor polls cond until it holds or the wait times out.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtimeYield()
	}
}

// runtimeYield is the pause between two polls of a condition (waitFor's deadline bounds them).
func runtimeYield() { <-time.After(time.Millisecond) }

// receive waits for a value on ch.
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

// The raw client: a websocket carrying Engine.IO packets, written by hand so that the tests see
// exactly what is on the wire and can send what no real client would.

type wsFrame struct {
	binary bool
	data   []byte
}

type rawClient struct {
	t      *testing.T
	nc     net.Conn
	sid    string // the Engine.IO session id
	frames chan wsFrame
	done   chan struct{} // closed when the connection ended (close frame, EOF or error)
	pong   atomic.Bool   // answer the engine's pings (on by default)
	pings  atomic.Int32  // pings received

	closeFrame atomic.Bool // the server sent a websocket close frame
	wmu        sync.Mutex

	early []string // packets read ahead (before a CONNECT reply), returned first by msg
}

// dial opens a websocket session on ts and reads its Engine.IO open packet.
func (ts *testServer) dial() *rawClient {
	ts.t.Helper()
	return dialURL(ts.t, ts.url)
}

func dialURL(t *testing.T, base string) *rawClient {
	t.Helper()
	nc, br, err := wstest.Dial(strings.TrimPrefix(base, "http://"), "/socket.io/?EIO=4&transport=websocket")
	if err != nil {
		t.Fatal(err)
	}
	c := &rawClient{t: t, nc: nc, frames: make(chan wsFrame, 4096), done: make(chan struct{})}
	c.pong.Store(true)
	t.Cleanup(func() { c.nc.Close() })
	go c.read(br)
	f := c.frame()
	if f.binary || len(f.data) == 0 || f.data[0] != '0' {
		t.Fatalf("open packet: %q", f.data)
	}
	var open struct{ SID string }
	if err := json.Unmarshal(f.data[1:], &open); err != nil {
		t.Fatalf("open packet %q: %v", f.data, err)
	}
	c.sid = open.SID
	return c
}

// read is the client's reader: it answers pings and hands every other frame over.
func (c *rawClient) read(br *bufio.Reader) {
	defer close(c.done)
	defer c.nc.Close()
	for {
		op, p, err := wstest.ReadFrame(br)
		if err != nil {
			return
		}
		switch op {
		case wstest.OpText:
			if string(p) == "2" {
				c.pings.Add(1)
				if c.pong.Load() {
					c.write(wstest.Frame(wstest.OpText, []byte("3")))
				}
				continue
			}
			c.frames <- wsFrame{data: p}
		case wstest.OpBinary:
			c.frames <- wsFrame{binary: true, data: p}
		case wstest.OpClose:
			c.closeFrame.Store(true)
			c.write(wstest.Frame(wstest.OpClose, p))
			return
		case wstest.OpPing:
			c.write(wstest.Frame(wstest.OpPong, p))
		}
	}
}

func (c *rawClient) write(b []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(waitTimeout))
	_, _ = c.nc.Write(b) // a write to a closed connection shows as the connection's end
}

// send writes Socket.IO text packets (each an Engine.IO message) in one burst.
func (c *rawClient) send(packets ...string) {
	var b []byte
	for _, p := range packets {
		b = append(b, wstest.Frame(wstest.OpText, []byte("4"+p))...)
	}
	c.write(b)
}

// sendEngine writes raw Engine.IO text packets in one burst.
func (c *rawClient) sendEngine(packets ...string) {
	var b []byte
	for _, p := range packets {
		b = append(b, wstest.Frame(wstest.OpText, []byte(p))...)
	}
	c.write(b)
}

// sendBinary writes binary messages in one burst.
func (c *rawClient) sendBinary(msgs ...[]byte) {
	var b []byte
	for _, m := range msgs {
		b = append(b, wstest.Frame(wstest.OpBinary, m)...)
	}
	c.write(b)
}

// frame returns the next frame the server sent.
func (c *rawClient) frame() wsFrame {
	c.t.Helper()
	f, ok := c.tryFrame(waitTimeout)
	if !ok {
		c.t.Fatalf("no frame: the connection %s", c.state())
	}
	return f
}

func (c *rawClient) state() string {
	select {
	case <-c.done:
		return "closed"
	default:
		return "stayed silent"
	}
}

// tryFrame returns the next frame within d; false when the connection ended or d passed.
func (c *rawClient) tryFrame(d time.Duration) (wsFrame, bool) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case f := <-c.frames:
		return f, true
	case <-c.done:
		select {
		case f := <-c.frames:
			return f, true
		default:
			return wsFrame{}, false
		}
	case <-timer.C:
		return wsFrame{}, false
	}
}

// msg returns the next Socket.IO text packet (Engine.IO noops skipped).
func (c *rawClient) msg() string {
	c.t.Helper()
	if len(c.early) > 0 {
		p := c.early[0]
		c.early = c.early[1:]
		return p
	}
	for {
		f := c.frame()
		if f.binary {
			c.t.Fatalf("binary frame % x where a text packet was expected", f.data)
		}
		s := string(f.data)
		if s == "6" {
			continue
		}
		if !strings.HasPrefix(s, "4") {
			c.t.Fatalf("engine packet %q where a message was expected", s)
		}
		return s[1:]
	}
}

// bin returns the next binary message.
func (c *rawClient) bin() []byte {
	c.t.Helper()
	f := c.frame()
	if !f.binary {
		c.t.Fatalf("text frame %q where a binary message was expected", f.data)
	}
	return f.data
}

// expect reads packets and fails unless they are want, in order.
func (c *rawClient) expect(want ...string) {
	c.t.Helper()
	for _, w := range want {
		if got := c.msg(); got != w {
			c.t.Fatalf("got %q, want %q", got, w)
		}
	}
}

// waitClosed waits for the server to end the connection, returning the Socket.IO text packets it
// sent before (binary ones as "<binary>").
func (c *rawClient) waitClosed() []string {
	c.t.Helper()
	var got []string
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for {
		select {
		case f := <-c.frames:
			if f.binary {
				got = append(got, "<binary>")
			} else if s := string(f.data); strings.HasPrefix(s, "4") {
				got = append(got, s[1:])
			}
		case <-c.done:
			for {
				select {
				case f := <-c.frames:
					if !f.binary && strings.HasPrefix(string(f.data), "4") {
						got = append(got, string(f.data[1:]))
					}
				default:
					return got
				}
			}
		case <-timer.C:
			c.t.Fatalf("the server did not close the connection (got %q)", got)
		}
	}
}

// isClosed reports whether the connection ended.
func (c *rawClient) isClosed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// close ends the connection from the client, without a word.
func (c *rawClient) close() { c.nc.Close() }

// connect sends a CONNECT to nsp with the JSON auth (empty for none) and returns the reply's
// sid and pid, failing on anything else.
func (c *rawClient) connect(nsp, auth string) (sid, pid string) {
	c.t.Helper()
	c.send(connectPacket(nsp, auth))
	return c.connected(nsp)
}

// connected reads a CONNECT reply for nsp.
func (c *rawClient) connected(nsp string) (sid, pid string) {
	c.t.Helper()
	p := c.msg()
	prefix := "0"
	if nsp != "/" {
		prefix = "0" + nsp + ","
	}
	if !strings.HasPrefix(p, prefix+"{") {
		c.t.Fatalf("CONNECT reply %q, want %s{...}", p, prefix)
	}
	var reply map[string]any
	if err := json.Unmarshal([]byte(p[len(prefix):]), &reply); err != nil {
		c.t.Fatalf("CONNECT reply %q: %v", p, err)
	}
	sid, _ = reply["sid"].(string)
	pid, _ = reply["pid"].(string)
	if len(sid) != 20 {
		c.t.Fatalf("CONNECT reply %q: sid %q", p, sid)
	}
	for k := range reply {
		if k != "sid" && k != "pid" {
			c.t.Fatalf("CONNECT reply %q: unexpected key %q", p, k)
		}
	}
	return sid, pid
}

func connectPacket(nsp, auth string) string {
	p := "0"
	if nsp != "/" {
		p += nsp + ","
	}
	return p + auth
}

// sioPacket is a decoded default-parser packet, read by the tests independently of the server's
// decoder.
type sioPacket struct {
	typ         int
	attachments int
	nsp         string
	id          int64 // -1 when absent
	data        any
}

func parsePacket(t *testing.T, s string) sioPacket {
	t.Helper()
	fail := func() { t.Fatalf("malformed packet %q", s) }
	if s == "" || s[0] < '0' || s[0] > '6' {
		fail()
	}
	p := sioPacket{typ: int(s[0] - '0'), nsp: "/", id: -1}
	s = s[1:]
	if p.typ == 5 || p.typ == 6 {
		i := strings.IndexByte(s, '-')
		if i < 0 {
			fail()
		}
		n, err := strconv.Atoi(s[:i])
		if err != nil {
			fail()
		}
		p.attachments, s = n, s[i+1:]
	}
	if strings.HasPrefix(s, "/") {
		i := strings.IndexByte(s, ',')
		if i < 0 {
			p.nsp, s = s, ""
		} else {
			p.nsp, s = s[:i], s[i+1:]
		}
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i > 0 {
		id, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil {
			fail()
		}
		p.id, s = id, s[i:]
	}
	if s != "" {
		if err := json.Unmarshal([]byte(s), &p.data); err != nil {
			fail()
		}
	}
	return p
}

// jsonEqual reports whether two JSON texts hold the same value.
func jsonEqual(t *testing.T, got, want string) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("not JSON: %q", got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want: %q", want)
	}
	return reflect.DeepEqual(g, w)
}

// mustHex decodes a hex literal.
func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// recorder is a namespace's callbacks recording what happened, as channels.
type recorder struct {
	connected    chan *Socket
	events       chan *Event
	disconnected chan disconnect
}

type disconnect struct {
	sid    string
	reason string
}

// record sets n's callbacks: connections, events (an "echo" event is acked with its own
// arguments) and disconnects are reported on the recorder's channels.
func record(n *Namespace) *recorder {
	r := &recorder{
		connected:    make(chan *Socket, 1024),
		events:       make(chan *Event, 1<<14),
		disconnected: make(chan disconnect, 1024),
	}
	n.OnConnection(func(s *Socket) { r.connected <- s })
	n.OnEvent(func(s *Socket, ev *Event) {
		if ev.Name == "echo" {
			vals, err := ev.Values()
			if err == nil {
				ev.Ack(vals...)
			}
			return
		}
		r.events <- ev
	})
	n.OnDisconnect(func(s *Socket, reason string) { r.disconnected <- disconnect{s.ID(), reason} })
	return r
}

// roundTrip sends an "echo" event with an ack on nsp and waits for its answer: everything the
// server had sent before it has then been read.
func (c *rawClient) roundTrip(nsp string, id int) []string {
	c.t.Helper()
	prefix := ""
	if nsp != "/" {
		prefix = nsp + ","
	}
	c.send(fmt.Sprintf(`2%s%d["echo","sync"]`, prefix, id))
	want := fmt.Sprintf(`3%s%d["sync"]`, prefix, id)
	var before []string
	for {
		p := c.msg()
		if p == want {
			return before
		}
		before = append(before, p)
	}
}
