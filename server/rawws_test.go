package server

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Raw Engine.IO/Socket.IO clients for the protocol and bad-input tests: they speak the wire
// format by hand, so a test can send what no well-behaved client would.

// frame is one websocket message: text (an Engine.IO packet) or binary (an attachment).
type frame struct {
	binary bool
	data   string
}

func text(s string) frame    { return frame{data: s} }
func binary(b ...byte) frame { return frame{binary: true, data: string(b)} }
func (f frame) String() string {
	return map[bool]string{false: "text ", true: "binary "}[f.binary] + f.data
}

// rawWS is a websocket with a reader goroutine. With autoPong it answers the server's pings
// itself and hides them, so a test can idle longer than a heartbeat.
type rawWS struct {
	t        *testing.T
	conn     *websocket.Conn
	autoPong bool
	frames   chan frame
	closed   chan struct{} // closed when the server closed the connection or reading failed
	writeMu  sync.Mutex
}

// wsURL turns the test server's http:// URL and a path with query into a ws:// URL.
func wsURL(base, pathQuery string) string {
	return "ws" + strings.TrimPrefix(base, "http") + pathQuery
}

// dialWS opens a websocket; the handshake must succeed.
func dialWS(t *testing.T, base, pathQuery string, autoPong bool) *rawWS {
	t.Helper()
	return dialWSWith(t, base, pathQuery, nil, autoPong)
}

// dialWSWith is dialWS with extra handshake headers.
func dialWSWith(t *testing.T, base, pathQuery string, header http.Header, autoPong bool) *rawWS {
	t.Helper()
	conn, res, err := websocket.DefaultDialer.Dial(wsURL(base, pathQuery), header)
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		t.Fatalf("dial %s: %v (HTTP %d)", pathQuery, err, status)
	}
	w := &rawWS{t: t, conn: conn, autoPong: autoPong, frames: make(chan frame, 64), closed: make(chan struct{})}
	t.Cleanup(func() { _ = conn.Close() })
	go w.readLoop()
	return w
}

func (w *rawWS) readLoop() {
	defer close(w.closed)
	for {
		kind, data, err := w.conn.ReadMessage()
		if err != nil {
			return
		}
		f := frame{binary: kind == websocket.BinaryMessage, data: string(data)}
		if w.autoPong && f == text("2") {
			if w.write(websocket.TextMessage, "3") != nil {
				return
			}
			continue
		}
		w.frames <- f
	}
}

func (w *rawWS) write(kind int, data string) error {
	w.writeMu.Lock()
	defer w.writeMu.Unlock()
	return w.conn.WriteMessage(kind, []byte(data))
}

// send writes frames in order; a write error fails the test.
func (w *rawWS) send(frames ...frame) {
	w.t.Helper()
	for _, f := range frames {
		kind := websocket.TextMessage
		if f.binary {
			kind = websocket.BinaryMessage
		}
		if err := w.write(kind, f.data); err != nil {
			w.t.Fatalf("send %v: %v", f, err)
		}
	}
}

// next waits for the next frame.
func (w *rawWS) next() frame {
	w.t.Helper()
	select {
	case f := <-w.frames:
		return f
	case <-w.closed:
		select { // frames that arrived before the close still count
		case f := <-w.frames:
			return f
		default:
		}
		w.t.Fatalf("connection closed while waiting for a frame")
	case <-time.After(waitTimeout):
		w.t.Fatalf("timed out waiting for a frame")
	}
	return frame{}
}

// expect waits for the next frames and compares them in order.
func (w *rawWS) expect(want ...frame) {
	w.t.Helper()
	for _, f := range want {
		if got := w.next(); got != f {
			w.t.Fatalf("got %q, want %q", got, f)
		}
	}
}

// expectClosed waits until the server closes the connection; frames sent before are ignored.
func (w *rawWS) expectClosed() {
	w.t.Helper()
	select {
	case <-w.closed:
	case <-time.After(waitTimeout):
		w.t.Fatalf("the server did not close the connection")
	}
}

// isClosed reports whether the server has closed the connection.
func (w *rawWS) isClosed() bool {
	select {
	case <-w.closed:
		return true
	default:
		return false
	}
}

// openSocketIO opens an Engine.IO websocket session on /socket.io/ and reads its OPEN packet.
func openSocketIO(t *testing.T, base string, autoPong bool) (*rawWS, eioHandshake) {
	t.Helper()
	w := dialWS(t, base, "/socket.io/?EIO=4&transport=websocket", autoPong)
	return w, parseOpen(t, w.next().data)
}

// eioHandshake is the Engine.IO OPEN packet's payload.
type eioHandshake struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int      `json:"pingInterval"`
	PingTimeout  int      `json:"pingTimeout"`
	MaxPayload   int      `json:"maxPayload"`
	keys         []string
}

// parseOpen decodes an Engine.IO OPEN packet ("0{...}") and records the keys it had.
func parseOpen(t *testing.T, packet string) eioHandshake {
	t.Helper()
	body, ok := strings.CutPrefix(packet, "0")
	if !ok {
		t.Fatalf("want an OPEN packet, got %q", packet)
	}
	var hs eioHandshake
	var keys map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &hs); err != nil {
		t.Fatalf("OPEN packet %q: %v", packet, err)
	}
	_ = json.Unmarshal([]byte(body), &keys)
	for k := range keys {
		hs.keys = append(hs.keys, k)
	}
	return hs
}

// pollingSession is a raw HTTP long-polling client of one Engine.IO session.
type pollingSession struct {
	t   *testing.T
	url string // the endpoint with EIO, transport and sid
	sid string
}

// openPolling performs the polling handshake on path ("/socket.io/" or "/engine.io/").
func openPolling(t *testing.T, base, path string) (*pollingSession, eioHandshake) {
	t.Helper()
	status, body := httpDo(t, http.MethodGet, base+path+"?EIO=4&transport=polling", "")
	if status != http.StatusOK {
		t.Fatalf("polling handshake: HTTP %d %q", status, body)
	}
	hs := parseOpen(t, body)
	return &pollingSession{t: t, url: base + path + "?EIO=4&transport=polling&sid=" + hs.SID, sid: hs.SID}, hs
}

// get is one long-polling GET.
func (p *pollingSession) get() (int, string) {
	p.t.Helper()
	return httpDo(p.t, http.MethodGet, p.url, "")
}

// post sends a payload.
func (p *pollingSession) post(payload string) (int, string) {
	p.t.Helper()
	return httpDo(p.t, http.MethodPost, p.url, payload)
}

// waitGone polls until the session is unknown (HTTP 400), answering the server's pings on the way.
func (p *pollingSession) waitGone() {
	p.t.Helper()
	waitFor(p.t, "the session to close", func() bool {
		status, body := p.get()
		if status == http.StatusOK && strings.Contains(body, "2") {
			p.post("3")
		}
		return status == http.StatusBadRequest
	})
}

var httpClient = &http.Client{Timeout: waitTimeout}

// httpDo sends one request and returns the status and body.
func httpDo(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	res, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return res.StatusCode, string(b)
}
