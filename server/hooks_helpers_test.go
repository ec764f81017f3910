package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/hooks"
	"github.com/switchboard/switchboard/namespaces"
)

const testHookSecret = "hook-secret-for-tests-0123456789"

// testToken is put in every test client's handshake (auth.token, the Authorization header, the
// query) where it does not identify anyone: no hook body may carry it.
const testToken = "tok-NEVER-FORWARDED-7f3a"

// hookSocketBody is a socket in a hook body.
type hookSocketBody struct {
	ID        string          `json:"id"`
	Namespace string          `json:"namespace"`
	User      namespaces.User `json:"user"`
	Rooms     []string        `json:"rooms"`
}

type connectBody struct {
	Socket  hookSocketBody    `json:"socket"`
	Auth    map[string]any    `json:"auth"`
	Headers map[string]string `json:"headers"`
	Address string            `json:"address"`
	Query   map[string]string `json:"query"`
}

type eventBody struct {
	Socket hookSocketBody    `json:"socket"`
	Data   json.RawMessage   `json:"data"`
	Event  string            `json:"event"`
	Args   []json.RawMessage `json:"args"`
}

// answerOf is what a test backend answers: a status and a body; hang answers nothing and waits
// until Switchboard gives up on the request.
type answerOf struct {
	status int
	body   string
	hang   bool
}

// testBackend is an app backend for the hook tests. It verifies every request as a real backend
// should (the signature over timestamp and body with the shared secret, the freshness of the
// timestamp, the content type) and that no request carries testToken, then answers with the
// test's functions: connect and event get the decoded body, events the batch's events.
// Acknowledged events (a 2xx to their batch) are kept in arrival order.
type testBackend struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	connect  func(connectBody) answerOf
	event    func(eventBody) answerOf
	events   func(batch []json.RawMessage) int
	acked    []map[string]any    // events of acknowledged batches, in order
	requests map[string]int      // per hook
	secrets  []string            // what no request may carry (testToken, the tests' JWTs)
	bodies   map[string][][]byte // per hook, every body as received

	verified atomic.Int64 // requests whose signature checked out
}

func newTestBackend(t *testing.T) *testBackend {
	t.Helper()
	b := &testBackend{t: t, requests: map[string]int{}, secrets: []string{testToken}, bodies: map[string][][]byte{}}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.srv.Close)
	return b
}

// URL is the backend's base URL, for --hook-url.
func (b *testBackend) URL() string { return b.srv.URL + "/hooks" }

func (b *testBackend) onConnect(fn func(connectBody) answerOf) {
	b.mu.Lock()
	b.connect = fn
	b.mu.Unlock()
}

func (b *testBackend) onEvent(fn func(eventBody) answerOf) {
	b.mu.Lock()
	b.event = fn
	b.mu.Unlock()
}

func (b *testBackend) onEvents(fn func([]json.RawMessage) int) {
	b.mu.Lock()
	b.events = fn
	b.mu.Unlock()
}

func (b *testBackend) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	hook, ok := strings.CutPrefix(r.URL.Path, "/hooks/")
	if r.Method != http.MethodPost || !ok {
		b.t.Errorf("hook request %s %s", r.Method, r.URL.Path)
		w.WriteHeader(404)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		b.t.Errorf("%s: Content-Type %q", hook, ct)
	}
	if err := hooks.Verify(testHookSecret, r.Header.Get(hooks.HeaderTimestamp), body, r.Header.Get(hooks.HeaderSignature), time.Now(), 5*time.Minute); err != nil {
		b.t.Errorf("%s: signature refused: %v", hook, err)
		w.WriteHeader(401)
		return
	}
	b.verified.Add(1)
	b.mu.Lock()
	for _, secret := range b.secrets {
		if strings.Contains(string(body), secret) || r.Header.Get("Authorization") != "" {
			b.t.Errorf("%s: the request carries a token: %s", hook, body)
		}
	}
	b.requests[hook]++
	b.bodies[hook] = append(b.bodies[hook], body)
	connect, event, events := b.connect, b.event, b.events
	b.mu.Unlock()

	var a answerOf
	switch hook {
	case "connect":
		var req connectBody
		if err := json.Unmarshal(body, &req); err != nil {
			b.t.Errorf("connect body %s: %v", body, err)
		}
		a = answerOf{status: 200, body: `{}`}
		if connect != nil {
			a = connect(req)
		}
	case "event":
		var req eventBody
		if err := json.Unmarshal(body, &req); err != nil {
			b.t.Errorf("event body %s: %v", body, err)
		}
		a = answerOf{status: 200, body: `{}`}
		if event != nil {
			a = event(req)
		}
	case "events":
		var batch struct {
			Events []json.RawMessage `json:"events"`
		}
		if err := json.Unmarshal(body, &batch); err != nil || len(batch.Events) == 0 {
			b.t.Errorf("events body %s: %v", body, err)
		}
		a = answerOf{status: 200, body: `{}`}
		if events != nil {
			a.status = events(batch.Events)
		}
		if a.status >= 200 && a.status < 300 {
			b.mu.Lock()
			for _, raw := range batch.Events {
				var e map[string]any
				_ = json.Unmarshal(raw, &e)
				b.acked = append(b.acked, e)
			}
			b.mu.Unlock()
		}
	default:
		b.t.Errorf("unknown hook %q", hook)
		a = answerOf{status: 404, body: ""}
	}
	if a.hang {
		<-r.Context().Done()
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	_, _ = io.WriteString(w, a.body)
}

// forbid adds a string no request may carry.
func (b *testBackend) forbid(secret string) {
	b.mu.Lock()
	b.secrets = append(b.secrets, secret)
	b.mu.Unlock()
}

// rawBodies returns the bodies hook got, in order.
func (b *testBackend) rawBodies(hook string) [][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.bodies[hook])
}

// count is how many requests hook got.
func (b *testBackend) count(hook string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.requests[hook]
}

// ackedEvents lists the acknowledged events that match keep, in order.
func (b *testBackend) ackedEvents(keep func(map[string]any) bool) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, e := range b.acked {
		if keep == nil || keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// ofType keeps events of the types given.
func ofType(types ...string) func(map[string]any) bool {
	return func(e map[string]any) bool {
		for _, ty := range types {
			if e["type"] == ty {
				return true
			}
		}
		return false
	}
}

// hookConfig is testConfig calling b, with the connect hook on when connect is true.
func hookConfig(b *testBackend, connect bool) Config {
	cfg := testConfig()
	cfg.HookURL = b.URL()
	cfg.HookSecret = testHookSecret
	cfg.HookConnect = connect
	if connect {
		cfg.HookHeaders = []string{"cookie", "x-app"}
	}
	return cfg
}

// hookDialOptions are the handshake of hookDial.
type hookDialOptions struct {
	auth   string      // the CONNECT payload (JSON object), "" for none
	header http.Header // handshake headers
	query  string      // extra query, e.g. "room=a&b=c"
}

// hookDial connects a raw websocket client to nsp with the handshake of o. It returns the client,
// or the connect_error's payload when refused.
func hookDial(t *testing.T, ts *testServer, nsp string, o hookDialOptions) (*rawClient, map[string]any) {
	t.Helper()
	u := "ws" + strings.TrimPrefix(ts.URL, "http") + "/socket.io/?EIO=4&transport=websocket"
	if o.query != "" {
		u += "&" + o.query
	}
	conn, _, err := (&websocket.Dialer{HandshakeTimeout: waitTimeout}).Dial(u, o.header)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c := &rawClient{ts: ts, conn: conn}
	t.Cleanup(c.close)
	open, err := c.read()
	if err != nil || !strings.HasPrefix(open, "0") {
		t.Fatalf("engine open: %q, %v", open, err)
	}
	var hs struct{ Sid string }
	_ = json.Unmarshal([]byte(open[1:]), &hs)
	c.engine = hs.Sid
	if err := c.write("40" + nspPrefix(nsp) + o.auth); err != nil {
		t.Fatal(err)
	}
	for {
		msg, err := c.read()
		if err != nil {
			t.Fatalf("waiting for the CONNECT answer: %v", err)
		}
		if rest, ok := strings.CutPrefix(msg, "40"+nspPrefix(nsp)); ok {
			var answer map[string]any
			_ = json.Unmarshal([]byte(rest), &answer)
			c.sid, _ = answer["sid"].(string)
			if err := waitRegistered(ts, c.engine, nsp); err != nil {
				t.Fatal(err)
			}
			return c, nil
		}
		if rest, ok := strings.CutPrefix(msg, "44"+nspPrefix(nsp)); ok {
			var cerr map[string]any
			if err := json.Unmarshal([]byte(rest), &cerr); err != nil {
				t.Fatalf("connect_error %q: %v", msg, err)
			}
			return nil, cerr
		}
	}
}

// mustHookDial is hookDial that fails the test when refused.
func mustHookDial(t *testing.T, ts *testServer, nsp string, o hookDialOptions) *rawClient {
	t.Helper()
	c, cerr := hookDial(t, ts, nsp, o)
	if cerr != nil {
		t.Fatalf("connect to %s refused: %v", nsp, cerr)
	}
	return c
}

// readEvent reads until event arrives on nsp and returns its arguments, skipping the rest.
func (c *rawClient) readEvent(t *testing.T, nsp, event string) []json.RawMessage {
	t.Helper()
	prefix := "42" + nspPrefix(nsp)
	for {
		msg, err := c.read()
		if err != nil {
			t.Fatalf("waiting for %s: %v", event, err)
		}
		rest, ok := strings.CutPrefix(msg, prefix)
		if !ok || !strings.HasPrefix(rest, "[") {
			continue
		}
		var data []json.RawMessage
		if json.Unmarshal([]byte(rest), &data) != nil || len(data) == 0 {
			continue
		}
		var name string
		_ = json.Unmarshal(data[0], &name)
		if name == event {
			return data[1:]
		}
	}
}

// ackArgs reads until the ack with id arrives and returns its arguments as JSON.
func (c *rawClient) ackArgs(t *testing.T, nsp string, id int) []json.RawMessage {
	t.Helper()
	prefix := fmt.Sprintf("43%s%d[", nspPrefix(nsp), id)
	for {
		msg, err := c.read()
		if err != nil {
			t.Fatalf("waiting for ack %d: %v", id, err)
		}
		if rest, ok := strings.CutPrefix(msg, prefix); ok {
			var args []json.RawMessage
			if err := json.Unmarshal([]byte("["+rest), &args); err != nil {
				t.Fatalf("ack %d: %q: %v", id, msg, err)
			}
			return args
		}
	}
}

// tokenHandshake puts testToken everywhere a client could: auth.token, the Authorization header
// and the query.
func tokenHandshake(auth map[string]any, header http.Header, query url.Values) hookDialOptions {
	if auth == nil {
		auth = map[string]any{}
	}
	auth["token"] = testToken
	a, _ := json.Marshal(auth)
	if header == nil {
		header = http.Header{}
	}
	header.Set("Authorization", "Bearer "+testToken)
	if query == nil {
		query = url.Values{}
	}
	query.Set("token", testToken)
	return hookDialOptions{auth: string(a), header: header, query: query.Encode()}
}
