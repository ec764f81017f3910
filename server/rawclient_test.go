package server

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// rawClient speaks Engine.IO v4 / Socket.IO v5 over a bare websocket, so that tests can send
// what no well-behaved client sends, stop reading, or churn connections cheaply.
type rawClient struct {
	ts     *testServer
	conn   *websocket.Conn
	engine string // the Engine.IO session id
	sid    string // the socket id in the last namespace joined

	writeMu sync.Mutex // pongs (from read) and emits may come from different goroutines
}

// rawDial opens a websocket to the server and connects to nsp ("/" or "/chat"; "" for none, the
// Engine.IO session only). readBuffer, when
// positive, shrinks the client's TCP receive buffer (for slow-consumer tests).
func rawDial(ts *testServer, nsp string, readBuffer int) (*rawClient, *http.Response, error) {
	baseURL := ts.URL
	d := websocket.Dialer{HandshakeTimeout: waitTimeout}
	if readBuffer > 0 {
		d.NetDial = func(network, addr string) (net.Conn, error) {
			c, err := net.Dial(network, addr)
			if err == nil {
				_ = c.(*net.TCPConn).SetReadBuffer(readBuffer)
			}
			return c, err
		}
	}
	u := "ws" + strings.TrimPrefix(baseURL, "http") + "/socket.io/?EIO=4&transport=websocket"
	conn, res, err := d.Dial(u, nil)
	if err != nil {
		return nil, res, err
	}
	c := &rawClient{ts: ts, conn: conn}
	open, err := c.read()
	if err != nil || !strings.HasPrefix(open, "0") {
		conn.Close()
		return nil, res, fmt.Errorf("engine open: %q, %v", open, err)
	}
	var handshake struct{ Sid string }
	_ = json.Unmarshal([]byte(open[1:]), &handshake)
	c.engine = handshake.Sid
	if nsp == "" {
		return c, res, nil
	}
	if err := c.join(nsp); err != nil {
		conn.Close()
		return nil, res, err
	}
	return c, res, nil
}

// join connects the client to one more namespace and waits until the server has set the socket
// up; the socket id of the last namespace joined is kept in sid.
//
// join also waits for the server's connection handlers (the metrics' one runs last), so that a
// test may read the server's state right away. (Events sent at once are safe anyway: see
// connectgate.go.)
func (c *rawClient) join(nsp string) error {
	if err := c.write("40" + nspPrefix(nsp)); err != nil {
		return err
	}
	answer, _, err := c.awaitConnect(nsp)
	if err != nil {
		return err
	}
	c.sid, _ = answer["sid"].(string)
	return waitRegistered(c.ts, c.engine, nsp)
}

// awaitConnect reads until the server answers a CONNECT to nsp and returns the answer's payload
// and the messages that came before it (a recovered session's missed events are sent first, as
// Node's server does; the client buffers them until it is connected). A CONNECT_ERROR is an error.
func (c *rawClient) awaitConnect(nsp string) (map[string]any, []string, error) {
	var before []string
	for {
		msg, err := c.read()
		if err != nil {
			return nil, before, err
		}
		if rest, ok := strings.CutPrefix(msg, "40"+nspPrefix(nsp)); ok {
			var answer map[string]any
			if err := json.Unmarshal([]byte(rest), &answer); err != nil {
				return nil, before, fmt.Errorf("CONNECT answer %q: %w", msg, err)
			}
			return answer, before, nil
		}
		if strings.HasPrefix(msg, "44"+nspPrefix(nsp)) {
			return nil, before, fmt.Errorf("connect_error: %s", msg)
		}
		before = append(before, msg)
	}
}

// waitRegistered polls, with a deadline, until the socket in nsp of the Engine.IO session
// engineID is connected on the server.
func waitRegistered(ts *testServer, engineID, nsp string) error {
	deadline := time.Now().Add(waitTimeout)
	for {
		if n := ts.IO().Namespace(nsp); n != nil {
			for _, s := range n.Sockets() {
				if s.ConnID() == engineID && s.Connected() {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("socket of %s never registered", nsp)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// mustRawDial is rawDial that fails the test and closes the client at the end.
func mustRawDial(t testing.TB, ts *testServer, nsp string) *rawClient {
	t.Helper()
	c, _, err := rawDial(ts, nsp, 0)
	if err != nil {
		t.Fatalf("raw dial %s: %v", nsp, err)
	}
	t.Cleanup(c.close)
	return c
}

func nspPrefix(nsp string) string {
	if nsp == "" || nsp == "/" {
		return ""
	}
	return nsp + ","
}

func (c *rawClient) write(msg string) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(waitTimeout))
	return c.conn.WriteMessage(websocket.TextMessage, []byte(msg))
}

// read returns the next Engine.IO message that is not a ping (pings are answered).
func (c *rawClient) read() (string, error) {
	for {
		_ = c.conn.SetReadDeadline(time.Now().Add(waitTimeout))
		_, b, err := c.conn.ReadMessage()
		if err != nil {
			return "", err
		}
		if string(b) == "2" {
			if err := c.write("3"); err != nil {
				return "", err
			}
			continue
		}
		return string(b), nil
	}
}

// emit sends event with raw JSON arguments (a comma list, may be empty) and ack id id (<0: none).
func (c *rawClient) emit(nsp, event, args string, id int) error {
	ack := ""
	if id >= 0 {
		ack = fmt.Sprint(id)
	}
	name, _ := json.Marshal(event)
	body := string(name)
	if args != "" {
		body += "," + args
	}
	return c.write("42" + nspPrefix(nsp) + ack + "[" + body + "]")
}

// ack reads until the ack with id arrives and returns its first argument.
func (c *rawClient) ack(t testing.TB, nsp string, id int) map[string]any {
	t.Helper()
	prefix := fmt.Sprintf("43%s%d[", nspPrefix(nsp), id)
	for {
		msg, err := c.read()
		if err != nil {
			t.Fatalf("waiting for ack %d: %v", id, err)
		}
		if rest, ok := strings.CutPrefix(msg, prefix); ok {
			var args []map[string]any
			if err := json.Unmarshal([]byte("["+rest), &args); err != nil || len(args) != 1 {
				t.Fatalf("ack %d: %q: %v", id, msg, err)
			}
			return args[0]
		}
	}
}

// call emits an event with an ack and waits for it.
func (c *rawClient) call(t testing.TB, nsp, event, args string, id int) map[string]any {
	t.Helper()
	if err := c.emit(nsp, event, args, id); err != nil {
		t.Fatalf("emit %s: %v", event, err)
	}
	return c.ack(t, nsp, id)
}

func (c *rawClient) close() { _ = c.conn.Close() }

// errorCode is the code of an {"error"} ack, "" for a {"data"} one.
func errorCode(reply map[string]any) string {
	e, _ := reply["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}
