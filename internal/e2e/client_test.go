package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// A raw Socket.IO client over websocket, speaking the wire by hand so that a test can send what
// no well-behaved client would and count exactly what arrives.

// packet is one decoded Socket.IO packet (binary attachments are not used here).
type packet struct {
	Type byte // '0' CONNECT … '6' BINARY_ACK
	Nsp  string
	ID   int // -1 without an ack id
	Data json.RawMessage
}

// parsePacket decodes the Socket.IO packet in an Engine.IO message's data.
func parsePacket(s string) (packet, error) {
	if s == "" {
		return packet{}, errors.New("empty packet")
	}
	p := packet{Type: s[0], Nsp: "/", ID: -1}
	s = s[1:]
	if strings.HasPrefix(s, "/") {
		nsp, rest, _ := strings.Cut(s, ",")
		p.Nsp, s = nsp, rest
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i > 0 {
		p.ID, _ = strconv.Atoi(s[:i])
		s = s[i:]
	}
	p.Data = json.RawMessage(s)
	return p, nil
}

// nspPrefix is a namespace as a packet carries it: nothing for "/", "/chat," otherwise.
func nspPrefix(nsp string) string {
	if nsp == "/" || nsp == "" {
		return ""
	}
	return nsp + ","
}

// sioClient is one Engine.IO connection over websocket with its reader. Pings are answered;
// acks go to their callers; events go to OnEvent (when set before they arrive) or Events.
type sioClient struct {
	t      testing.TB
	conn   *websocket.Conn
	EIOSid string

	// OnEvent, when set, receives every EVENT on the reader goroutine.
	OnEvent func(p packet)
	Events  chan packet // events when OnEvent is nil
	control chan packet // CONNECT, CONNECT_ERROR, DISCONNECT
	closed  chan struct{}
	closeAt atomic.Int64 // unix nanos of the close seen by the reader
	readErr error        // why the reader stopped, set before closed is closed

	wmu    sync.Mutex
	nextID atomic.Int32
	acksMu sync.Mutex
	acks   map[string]chan json.RawMessage // "nsp#id" → waiter
}

// wsURL is the websocket URL of a node's Engine.IO endpoint with extra query.
func wsURL(n *node, query string) string {
	u := "ws://" + n.Addr + "/socket.io/?EIO=4&transport=websocket"
	if query != "" {
		u += "&" + query
	}
	return u
}

// dialer keeps handshakes bounded.
var dialer = &websocket.Dialer{HandshakeTimeout: 5 * time.Second}

// dialSIO opens a websocket and reads the Engine.IO open packet; the connection is closed when
// the test ends.
func dialSIO(t testing.TB, n *node, query string, header http.Header) (*sioClient, error) {
	c, err := openSIO(t, n, query, header)
	if err == nil {
		t.Cleanup(func() { _ = c.conn.Close() })
	}
	return c, err
}

// openSIO is dialSIO for a caller that closes the connection itself (many short ones).
func openSIO(t testing.TB, n *node, query string, header http.Header) (*sioClient, error) {
	conn, res, err := dialer.Dial(wsURL(n, query), header)
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		return nil, fmt.Errorf("dial (HTTP %d): %w", status, err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, open, err := conn.ReadMessage()
	if err != nil || len(open) == 0 || open[0] != '0' {
		_ = conn.Close()
		return nil, fmt.Errorf("open packet %q: %v", open, err)
	}
	_ = conn.SetReadDeadline(time.Time{})
	var hs struct{ Sid string }
	_ = json.Unmarshal(open[1:], &hs)
	c := &sioClient{t: t, conn: conn, EIOSid: hs.Sid, Events: make(chan packet, 4096), control: make(chan packet, 64),
		closed: make(chan struct{}), acks: map[string]chan json.RawMessage{}}
	go c.readLoop()
	return c, nil
}

// mustDial is dialSIO whose error fails the test.
func mustDial(t testing.TB, n *node) *sioClient {
	t.Helper()
	c, err := dialSIO(t, n, "", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return c
}

func (c *sioClient) readLoop() {
	defer close(c.closed)
	defer func() { c.closeAt.Store(time.Now().UnixNano()) }()
	for {
		kind, data, err := c.conn.ReadMessage()
		if err != nil {
			c.readErr = err
			return
		}
		if kind != websocket.TextMessage || len(data) == 0 {
			continue
		}
		switch data[0] {
		case '2':
			_ = c.write("3")
			continue
		case '4':
		default:
			continue
		}
		p, err := parsePacket(string(data[1:]))
		if err != nil {
			continue
		}
		switch p.Type {
		case '2':
			if c.OnEvent != nil {
				c.OnEvent(p)
			} else {
				c.Events <- p
			}
		case '3':
			c.acksMu.Lock()
			ch := c.acks[p.Nsp+"#"+strconv.Itoa(p.ID)]
			delete(c.acks, p.Nsp+"#"+strconv.Itoa(p.ID))
			c.acksMu.Unlock()
			if ch != nil {
				ch <- p.Data
			}
		default:
			select {
			case c.control <- p:
			default:
			}
		}
	}
}

func (c *sioClient) write(msg string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.conn.WriteMessage(websocket.TextMessage, []byte(msg))
}

// send writes Socket.IO packets (without the Engine.IO "4"), one websocket message each.
func (c *sioClient) send(packets ...string) error {
	for _, p := range packets {
		if err := c.write("4" + p); err != nil {
			return err
		}
	}
	return nil
}

// connectReply is the server's answer to a CONNECT.
type connectReply struct {
	OK      bool
	SID     string
	PID     string
	Message string // a CONNECT_ERROR's message
	Data    map[string]any
}

// connect joins nsp with auth (nil for none) and waits for the answer.
func (c *sioClient) connect(nsp string, auth any) (connectReply, error) {
	msg := "0" + strings.TrimSuffix(nspPrefix(nsp), ",")
	if auth != nil {
		b, _ := json.Marshal(auth)
		if nsp != "/" {
			msg += ","
		}
		msg += string(b)
	} else if nsp != "/" {
		msg += ","
	}
	if err := c.send(msg); err != nil {
		return connectReply{}, err
	}
	for {
		select {
		case p := <-c.control:
			if p.Nsp != nsp {
				continue
			}
			var r connectReply
			switch p.Type {
			case '0':
				var body struct{ Sid, Pid string }
				_ = json.Unmarshal(p.Data, &body)
				r = connectReply{OK: true, SID: body.Sid, PID: body.Pid}
			case '4':
				var body struct {
					Message string
					Data    map[string]any
				}
				_ = json.Unmarshal(p.Data, &body)
				r = connectReply{Message: body.Message, Data: body.Data}
			default:
				continue
			}
			return r, nil
		case <-c.closed:
			return connectReply{}, errors.New("connection closed before the CONNECT answer")
		case <-time.After(waitTimeout):
			return connectReply{}, errors.New("no answer to the CONNECT")
		}
	}
}

// mustConnect is connect that must succeed.
func (c *sioClient) mustConnect(nsp string, auth any) connectReply {
	c.t.Helper()
	r, err := c.connect(nsp, auth)
	if err != nil || !r.OK {
		c.t.Fatalf("connect %s: %v %+v", nsp, err, r)
	}
	return r
}

// emit sends an event without an ack.
func (c *sioClient) emit(nsp, event string, args ...any) error {
	data, _ := json.Marshal(append([]any{event}, args...))
	return c.send("2" + nspPrefix(nsp) + string(data))
}

// callAsync sends an event with an ack id; the channel gets the ack's arguments.
func (c *sioClient) callAsync(nsp, event string, args ...any) (<-chan json.RawMessage, error) {
	id := int(c.nextID.Add(1))
	ch := make(chan json.RawMessage, 1)
	c.acksMu.Lock()
	c.acks[nsp+"#"+strconv.Itoa(id)] = ch
	c.acksMu.Unlock()
	data, _ := json.Marshal(append([]any{event}, args...))
	if err := c.send("2" + nspPrefix(nsp) + strconv.Itoa(id) + string(data)); err != nil {
		return nil, err
	}
	return ch, nil
}

// ackReply is a request event's ack: {data} or {error:{code,message}}.
type ackReply struct {
	Data  json.RawMessage
	Error *struct{ Code, Message string }
}

// call sends a request event and waits for its ack (SPEC §2's shape).
func (c *sioClient) call(nsp, event string, payload any) (ackReply, error) {
	ch, err := c.callAsync(nsp, event, payload)
	if err != nil {
		return ackReply{}, err
	}
	select {
	case raw := <-ch:
		var args []ackReply
		if err := json.Unmarshal(raw, &args); err != nil || len(args) != 1 {
			return ackReply{}, fmt.Errorf("ack %s: %v", raw, err)
		}
		return args[0], nil
	case <-c.closed:
		return ackReply{}, errors.New("connection closed before the ack")
	case <-time.After(waitTimeout):
		return ackReply{}, errors.New("no ack")
	}
}

// mustCall is call that must be acked with data.
func (c *sioClient) mustCall(nsp, event string, payload any) json.RawMessage {
	c.t.Helper()
	r, err := c.call(nsp, event, payload)
	if err != nil || r.Error != nil {
		c.t.Fatalf("%s %s: %v %+v", nsp, event, err, r.Error)
	}
	return r.Data
}

// nextEvent waits for the next event (OnEvent unset).
func (c *sioClient) nextEvent(limit time.Duration) (packet, error) {
	select {
	case p := <-c.Events:
		return p, nil
	case <-time.After(limit):
		return packet{}, errors.New("no event")
	}
}

// waitClosed waits up to limit for the server to close the connection and tells how long after
// since it was seen closed.
func (c *sioClient) waitClosed(limit time.Duration, since time.Time) (time.Duration, bool) {
	select {
	case <-c.closed:
		return time.Unix(0, c.closeAt.Load()).Sub(since), true
	case <-time.After(limit):
		return 0, false
	}
}

// close drops the TCP connection without a word, as a vanished client does.
func (c *sioClient) close() { _ = c.conn.UnderlyingConn().Close() }

// eventArgs splits an EVENT's data into its name and arguments.
func eventArgs(p packet) (string, []json.RawMessage) {
	var arr []json.RawMessage
	if json.Unmarshal(p.Data, &arr) != nil || len(arr) == 0 {
		return "", nil
	}
	var name string
	_ = json.Unmarshal(arr[0], &name)
	return name, arr[1:]
}
