package namespaces

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/engineio"
	"github.com/switchboard/switchboard/socketio"
)

// waitTimeout bounds every wait of the relay tests: nothing sleeps, everything waits for an event.
const waitTimeout = 10 * time.Second

// relayEnv is a socketio.Server on httptest with the relay registered on "/relay".
type relayEnv struct {
	t     *testing.T
	srv   *socketio.Server
	nsp   *socketio.Namespace
	relay *Relay
	addr  string // 127.0.0.1:port
	slow  atomic.Int64
}

type relayEnvOptions struct {
	cfg      RelayConfig
	state    RelayState
	presence socketio.Presence
	adapter  socketio.AdapterFactory
	manual   bool // the test runs the ticks (relay.step)
	// sndbuf sets the kernel send buffer of the server's connections (0: the system's).
	sndbuf         int
	maxWriteBuffer int
	recovery       time.Duration // connection state recovery's window (0: off)
}

// startRelay serves a relay until the test ends. Sockets are identified by the handshake's
// auth.user (id and name), as the server's authentication would.
func startRelay(t *testing.T, o relayEnvOptions) *relayEnv {
	t.Helper()
	env := &relayEnv{t: t}
	cfg := socketio.Config{
		Adapter:        o.adapter,
		Logger:         zerolog.Nop(),
		RecoveryWindow: o.recovery,
		Engine:         engineio.Config{MaxWriteBuffer: o.maxWriteBuffer, OnSlowClient: func() { env.slow.Add(1) }},
	}
	srv, err := socketio.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	nsp, err := srv.Of("/relay")
	if err != nil {
		t.Fatal(err)
	}
	nsp.Use(func(s *socketio.Socket) error {
		if u, ok := s.Handshake().Auth["user"].(string); ok {
			SetIdentity(s, Identity{User: User{ID: u, Name: u}})
		}
		return nil
	})
	if o.state == nil {
		o.state = NewMemoryRelayState()
	}
	if o.presence == nil {
		o.presence = socketio.NewMemoryPresence()
	}
	r := NewRelay(zerolog.Nop(), o.cfg, o.state, o.presence, nil)
	r.manual = o.manual
	r.Register(nsp)
	hs := httptest.NewUnstartedServer(srv)
	if o.sndbuf > 0 {
		hs.Listener = &sndbufListener{Listener: hs.Listener, size: o.sndbuf}
	}
	hs.Start()
	env.srv, env.nsp, env.relay, env.addr = srv, nsp, r, strings.TrimPrefix(hs.URL, "http://")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Close(ctx)
		r.Close()
		hs.Close()
	})
	return env
}

// sndbufListener shrinks the kernel send buffer of accepted connections, so that a client that
// stops reading is seen as slow after a few frames instead of megabytes.
type sndbufListener struct {
	net.Listener
	size int
}

func (l *sndbufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(l.size)
	}
	return c, err
}

// socket returns the server's socket of c.
func (env *relayEnv) socket(c *rawClient) *socketio.Socket {
	env.t.Helper()
	s := env.nsp.Socket(c.sid)
	if s == nil {
		env.t.Fatalf("no socket %s on the server", c.sid)
	}
	return s
}

// rawClient is a websocket carrying Engine.IO and Socket.IO packets for "/relay", written by
// hand so that a test can stop reading its socket (pause) and see exactly what arrives.
type rawClient struct {
	t    *testing.T
	env  *relayEnv
	user string
	nc   net.Conn
	sid  string // the socket id in /relay
	// pollURL is the session's long-polling URL when the client polls instead of using a
	// websocket.
	pollURL string
	pid     string // its session id, with recovery on

	wmu    sync.Mutex
	nextID int

	mu      sync.Mutex
	log     []rawEvent // events and acks, in arrival order
	hold    chan struct{}
	changed chan struct{}
	closed  chan struct{}
}

// rawEvent is an event (name set) or an ack (ack >= 0) the client received.
type rawEvent struct {
	name   string
	ack    int
	arg    json.RawMessage
	offset string // with recovery on, the offset the server appended
}

type dialOptions struct {
	rcvbuf int            // the client's kernel receive buffer (0: the system's)
	auth   map[string]any // more of the CONNECT's auth
}

// dial connects user to "/relay" over websocket.
func (env *relayEnv) dial(user string, opts ...dialOptions) *rawClient {
	env.t.Helper()
	var o dialOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	d := net.Dialer{}
	if o.rcvbuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, o.rcvbuf)
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	nc, err := d.Dial("tcp", env.addr)
	if err != nil {
		env.t.Fatal(err)
	}
	env.t.Cleanup(func() { _ = nc.Close() })
	var key [16]byte
	_, _ = rand.Read(key[:])
	fmt.Fprintf(nc, "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
		env.addr, base64.StdEncoding.EncodeToString(key[:]))
	br := bufio.NewReader(nc)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		env.t.Fatalf("websocket handshake: %v %v", res, err)
	}
	c := &rawClient{t: env.t, env: env, user: user, nc: nc, changed: make(chan struct{}, 1), closed: make(chan struct{})}
	open, err := readFrame(br)
	if err != nil || !bytes.HasPrefix(open, []byte("0{")) {
		env.t.Fatalf("engine open packet: %q %v", open, err)
	}
	c.connect(o.auth)
	for {
		f, err := readFrame(br)
		if err != nil {
			env.t.Fatalf("connect %s: %v", user, err)
		}
		if c.connectReply(string(f)) {
			break
		}
		if bytes.HasPrefix(f, []byte("44/relay,")) {
			env.t.Fatalf("connect refused: %q", f)
		}
	}
	go c.read(br)
	return c
}

// dialPolling connects user to "/relay" over long-polling.
func (env *relayEnv) dialPolling(user string) *rawClient {
	env.t.Helper()
	base := "http://" + env.addr + "/socket.io/?EIO=4&transport=polling"
	first, err := pollOnce(base)
	if err != nil || len(first) == 0 || !strings.HasPrefix(first[0], "0{") {
		env.t.Fatalf("polling handshake: %q %v", first, err)
	}
	var open struct{ SID string }
	if err := json.Unmarshal([]byte(first[0][1:]), &open); err != nil {
		env.t.Fatal(err)
	}
	c := &rawClient{t: env.t, env: env, user: user, pollURL: base + "&sid=" + open.SID,
		changed: make(chan struct{}, 1), closed: make(chan struct{})}
	c.connect(nil)
	for c.sid == "" {
		packets, err := pollOnce(c.pollURL)
		if err != nil {
			env.t.Fatalf("connect %s: %v", user, err)
		}
		for _, p := range packets {
			if !c.connectReply(p) {
				c.handle(p)
			}
		}
	}
	go c.poll()
	return c
}

// connect sends the CONNECT of "/relay", whose auth names the client's user, and more.
func (c *rawClient) connect(more map[string]any) {
	auth := map[string]any{"user": c.user}
	for k, v := range more {
		auth[k] = v
	}
	b, _ := json.Marshal(auth)
	c.write("40/relay," + string(b))
}

// connectReply takes p as the answer to the CONNECT if it is one.
func (c *rawClient) connectReply(p string) bool {
	s, ok := strings.CutPrefix(p, "40/relay,")
	if !ok {
		return false
	}
	var reply struct{ SID, PID string }
	if err := json.Unmarshal([]byte(s), &reply); err != nil || reply.SID == "" {
		c.t.Fatalf("connect reply %q", p)
	}
	c.sid, c.pid = reply.SID, reply.PID
	return true
}

// pollOnce GETs one long-polling payload and splits it into its packets.
func pollOnce(url string) ([]string, error) {
	res, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("poll: %s %v", res.Status, err)
	}
	return strings.Split(string(body), "\x1e"), nil
}

// poll is read for a long-polling client: one GET after another.
func (c *rawClient) poll() {
	defer close(c.closed)
	for {
		c.whilePaused()
		packets, err := pollOnce(c.pollURL)
		if err != nil {
			return
		}
		for _, p := range packets {
			c.handle(p)
		}
	}
}

// readFrame reads one unfragmented websocket frame from the server (unmasked) and returns its
// payload; a close frame is io.EOF.
func readFrame(br *bufio.Reader) ([]byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 1<<24 {
		return nil, fmt.Errorf("frame of %d bytes", n)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(br, payload); err != nil {
		return nil, err
	}
	if h[0]&0x0f == 0x8 {
		return nil, io.EOF
	}
	return payload, nil
}

// write sends one Engine.IO packet as a masked text frame.
func (c *rawClient) write(packet string) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.writeLocked(packet)
}

func (c *rawClient) writeLocked(packet string) {
	if c.pollURL != "" {
		res, err := http.Post(c.pollURL, "text/plain;charset=UTF-8", strings.NewReader(packet))
		if err != nil {
			c.t.Logf("%s: post: %v", c.user, err)
			return
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		return
	}
	p := []byte(packet)
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	b := []byte{0x81}
	switch n := len(p); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n < 1<<16:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, mask[:]...)
	for i, x := range p {
		b = append(b, x^mask[i%4])
	}
	if _, err := c.nc.Write(b); err != nil {
		c.t.Logf("%s: write: %v", c.user, err)
	}
}

// read records what arrives until the connection ends, answering the engine's pings. While the
// client is paused it reads nothing: the server's writes pile up in the kernel, then refuse.
func (c *rawClient) read(br *bufio.Reader) {
	defer close(c.closed)
	for {
		c.whilePaused()
		f, err := readFrame(br)
		if err != nil {
			return
		}
		c.handle(string(f))
	}
}

// handle records one Engine.IO packet from the server.
func (c *rawClient) handle(s string) {
	switch {
	case s == "2":
		c.write("3")
	case strings.HasPrefix(s, "42/relay,"):
		var arr []json.RawMessage
		if json.Unmarshal([]byte(s[len("42/relay,"):]), &arr) != nil || len(arr) == 0 {
			c.t.Errorf("%s: bad event %q", c.user, s)
			return
		}
		var name string
		_ = json.Unmarshal(arr[0], &name)
		ev := rawEvent{name: name, ack: -1}
		if len(arr) > 1 {
			ev.arg = arr[1]
		}
		if len(arr) > 2 {
			_ = json.Unmarshal(arr[len(arr)-1], &ev.offset)
		}
		c.record(ev)
	case strings.HasPrefix(s, "43/relay,"):
		rest := s[len("43/relay,"):]
		i := strings.IndexByte(rest, '[')
		id, err := strconv.Atoi(rest[:max(i, 0)])
		var arr []json.RawMessage
		if i < 0 || err != nil || json.Unmarshal([]byte(rest[i:]), &arr) != nil || len(arr) == 0 {
			c.t.Errorf("%s: bad ack %q", c.user, s)
			return
		}
		c.record(rawEvent{ack: id, arg: arr[0]})
	}
}

func (c *rawClient) record(ev rawEvent) {
	c.mu.Lock()
	c.log = append(c.log, ev)
	c.mu.Unlock()
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// whilePaused waits while the client is paused.
func (c *rawClient) whilePaused() {
	c.mu.Lock()
	hold := c.hold
	c.mu.Unlock()
	if hold != nil {
		<-hold
	}
}

// pause stops reading the socket; resume reads on.
func (c *rawClient) pause() {
	c.mu.Lock()
	c.hold = make(chan struct{})
	c.mu.Unlock()
}

func (c *rawClient) resume() {
	c.mu.Lock()
	close(c.hold)
	c.hold = nil
	c.mu.Unlock()
}

// emit sends an event without an ack.
func (c *rawClient) emit(event string, arg any) {
	b, _ := json.Marshal([]any{event, arg})
	c.write("42/relay," + string(b))
}

// call sends an event with an ack and returns the ack's argument.
func (c *rawClient) call(event string, arg any) json.RawMessage {
	c.t.Helper()
	b, _ := json.Marshal([]any{event, arg})
	return c.ack(fmt.Sprintf("the ack of %s %s", event, b), c.send(event, arg))
}

// send sends an event with an ack id and returns the id, without waiting for the ack.
func (c *rawClient) send(event string, arg any) int {
	b, _ := json.Marshal([]any{event, arg})
	c.wmu.Lock()
	defer c.wmu.Unlock()
	id := c.nextID
	c.nextID++
	c.writeLocked("42/relay," + strconv.Itoa(id) + string(b))
	return id
}

// ack waits for the ack of id (what says which) and returns its argument.
func (c *rawClient) ack(what string, id int) json.RawMessage {
	c.t.Helper()
	var got json.RawMessage
	c.waitFor(what, func(log []rawEvent) bool {
		for _, ev := range log {
			if ev.name == "" && ev.ack == id {
				got = ev.arg
				return true
			}
		}
		return false
	})
	return got
}

// waitFor waits until cond holds for what the client received.
func (c *rawClient) waitFor(what string, cond func(log []rawEvent) bool) {
	c.t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		ok := cond(c.log)
		c.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-c.changed:
		case <-c.closed:
			c.mu.Lock()
			ok := cond(c.log)
			c.mu.Unlock()
			if !ok {
				c.t.Fatalf("%s: connection closed waiting for %s", c.user, what)
			}
			return
		case <-deadline.C:
			c.t.Fatalf("%s: timed out waiting for %s", c.user, what)
		}
	}
}

// received returns a copy of what the client received.
func (c *rawClient) received() []rawEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]rawEvent(nil), c.log...)
}

// events returns the arguments of the events called name, from index from of the log on.
func (c *rawClient) events(name string, from int) []json.RawMessage {
	var out []json.RawMessage
	for _, ev := range c.received()[from:] {
		if ev.name == name {
			out = append(out, ev.arg)
		}
	}
	return out
}

// messages decodes the relay:message events received from index from on.
func (c *rawClient) messages(from int) []RelayMessage {
	var out []RelayMessage
	for _, raw := range c.events(RelayMessageEvent, from) {
		var m RelayMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			c.t.Fatalf("%s: relay:message %s: %v", c.user, raw, err)
		}
		out = append(out, m)
	}
	return out
}

// sync makes sure everything sent to c before now has arrived: from sends c an unkeyed message
// (they share room), which is written behind whatever the server wrote to c before.
func (c *rawClient) sync(from *rawClient, room string) {
	c.t.Helper()
	var tag [8]byte
	_, _ = rand.Read(tag[:])
	marker := base64.RawURLEncoding.EncodeToString(tag[:])
	mustData(c.t, from.call(RelayPublishEvent, map[string]any{"room": room, "event": "sync", "data": marker}))
	c.waitFor("sync "+marker, func(log []rawEvent) bool {
		for _, ev := range log {
			if ev.name == RelayMessageEvent && bytes.Contains(ev.arg, []byte(marker)) {
				return true
			}
		}
		return false
	})
}

// close ends the connection as a closed tab would.
func (c *rawClient) close() {
	if c.pollURL != "" {
		c.write("1")
		return
	}
	_ = c.nc.Close()
}

// mustData returns the data of an ack, failing on an error reply.
func mustData(t *testing.T, ack json.RawMessage) json.RawMessage {
	t.Helper()
	var r struct {
		Data  json.RawMessage `json:"data"`
		Error *Error          `json:"error"`
	}
	if err := json.Unmarshal(ack, &r); err != nil || r.Error != nil || r.Data == nil {
		t.Fatalf("ack %s, want {data}", ack)
	}
	return r.Data
}

// ackCode returns the error code of an ack ("" for {data}).
func ackCode(t *testing.T, ack json.RawMessage) string {
	t.Helper()
	var r struct {
		Data  json.RawMessage `json:"data"`
		Error *Error          `json:"error"`
	}
	if err := json.Unmarshal(ack, &r); err != nil {
		t.Fatalf("ack %s: %v", ack, err)
	}
	if r.Error != nil {
		if r.Data != nil || r.Error.Message == "" {
			t.Fatalf("ack %s: an error with data or without message", ack)
		}
		return r.Error.Code
	}
	if r.Data == nil {
		t.Fatalf("ack %s has neither data nor error", ack)
	}
	return ""
}
