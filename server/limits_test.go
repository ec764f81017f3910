package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/socketio"

	"github.com/switchboard/switchboard/namespaces"
)

func TestIPLimiterEvictsIdleBuckets(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newIPLimiter(2, 4, func() time.Time { return now })
	// A burst of 4, then refused.
	for i := range 4 {
		if !l.allow("10.0.0.1") {
			t.Fatalf("handshake %d within the burst refused", i)
		}
	}
	if l.allow("10.0.0.1") {
		t.Fatal("handshake beyond the burst allowed")
	}
	if !l.allow("10.0.0.2") {
		t.Fatal("another address was limited by the first one")
	}
	// Many addresses, each seen once: the map holds them only until they have been idle for a
	// refill period (burst/rate = 2s).
	for i := range 10_000 {
		l.allow(fmt.Sprintf("10.1.%d.%d", i/256, i%256))
	}
	if got := l.size(); got != 10_002 {
		t.Fatalf("tracked %d addresses, want 10002", got)
	}
	now = now.Add(2 * time.Second)
	l.allow("10.0.0.3")
	if got := l.size(); got != 1 {
		t.Fatalf("after the refill period %d addresses are tracked, want 1 (idle ones evicted)", got)
	}
	// Eviction loses nothing: the evicted address starts again with a full burst.
	for i := range 4 {
		if !l.allow("10.0.0.1") {
			t.Fatalf("handshake %d after eviction refused", i)
		}
	}
}

// handshake makes a polling handshake and returns its status and body.
func handshake(t *testing.T, baseURL string) (int, string) {
	t.Helper()
	res, err := http.Get(baseURL + "/socket.io/?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestConnectionRatePerIP(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.ConnRate = 0.001 // no refill within the test
	cfg.Limits.ConnBurst = 3
	ts := startServer(t, cfg)
	for i := range 3 {
		if status, body := handshake(t, ts.URL); status != http.StatusOK {
			t.Fatalf("handshake %d: %d %s", i, status, body)
		}
	}
	status, body := handshake(t, ts.URL)
	if status != http.StatusTooManyRequests {
		t.Fatalf("handshake beyond the burst: %d, want 429", status)
	}
	var e struct {
		Code    int
		Message string
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Code != 4 || e.Message == "" {
		t.Fatalf("refusal body %q is not the Engine.IO error shape", body)
	}
	// Over websocket too, before any upgrade.
	if _, res, err := rawDial(ts, "/", 0); err == nil || res == nil || res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("websocket handshake beyond the burst: %v %v, want 429", err, res)
	}
	if got := counterValue(t, ts.metrics, "switchboard_limit_rejections_total", "limit=conn_rate"); got != 2 {
		t.Fatalf("conn_rate rejections = %v, want 2", got)
	}
}

func TestMaxConnections(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.MaxConnections = 3
	cfg.Limits.ConnRate = 0
	ts := startServer(t, cfg)

	var clients []*rawClient
	for range 3 {
		clients = append(clients, mustRawDial(t, ts, "/"))
	}
	if _, res, err := rawDial(ts, "/", 0); err == nil || res == nil || res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("4th websocket connection: %v %v, want 503", err, res)
	}
	if status, _ := handshake(t, ts.URL); status != http.StatusServiceUnavailable {
		t.Fatalf("4th polling handshake: %d, want 503", status)
	}
	// The connected ones keep working.
	for i, c := range clients {
		if got := c.call(t, "/", "subscribe", `{"rooms":["r"]}`, i); errorCode(got) != "" {
			t.Fatalf("client %d subscribe: %v", i, got)
		}
	}
	// A slot frees when a client leaves.
	clients[0].close()
	waitFor(t, "the engine to count the close", func() bool { return ts.IO().Connections() == 2 })
	mustRawDial(t, ts, "/")
	if got := ts.IO().Connections(); got != 3 {
		t.Fatalf("engine counts %d connections, want 3", got)
	}
}

func TestMaxConnectionsUnderConcurrentHandshakes(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.MaxConnections = 10
	cfg.Limits.ConnRate = 0
	ts := startServer(t, cfg)
	var (
		mu       sync.Mutex
		accepted []*rawClient
		wg       sync.WaitGroup
	)
	for range 40 {
		wg.Go(func() {
			c, _, err := rawDial(ts, "/", 0)
			if err == nil {
				mu.Lock()
				accepted = append(accepted, c)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range accepted {
			c.close()
		}
	})
	if n := len(accepted); n < 1 || n > 10 {
		t.Fatalf("%d connections accepted, want 1..10", n)
	}
	if got := ts.IO().Connections(); got > 10 {
		t.Fatalf("engine counts %d connections, limit 10", got)
	}
}

func TestEventRateLimit(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.EventRate = 0.001 // no refill within the test
	cfg.Limits.EventBurst = 5
	cfg.Limits.EventAbuse = 20
	ts := startServer(t, cfg)

	flooder := mustRawDial(t, ts, "/")
	calm := dial(t, ts.URL, dialOptions{transports: transportSets["websocket"]})
	disconnected := make(chan struct{})
	flooderSid := flooder.sid
	waitFor(t, "the flooder's socket", func() bool { return serverSocket(ts, flooderSid) != nil })
	flooderCtx := serverSocket(ts, flooderSid).Context()
	go func() { <-flooderCtx.Done(); close(disconnected) }()

	// The burst passes; then every event is dropped with rate_limited.
	for i := range 5 {
		if got := flooder.call(t, "/", "subscribe", `{"rooms":["r"]}`, i); errorCode(got) != "" {
			t.Fatalf("event %d within the burst: %v", i, got)
		}
	}
	for i := 5; i < 10; i++ {
		got := flooder.call(t, "/", "subscribe", `{"rooms":["r"]}`, i)
		if errorCode(got) != "rate_limited" {
			t.Fatalf("event %d beyond the burst: %v, want rate_limited", i, got)
		}
	}
	// The calm client is unaffected while the flood goes on.
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 10; i < 200; i++ {
			if flooder.emit("/", "subscribe", `{"rooms":["r"]}`, i) != nil {
				return // disconnected
			}
		}
	})
	for range 3 {
		if got := call(t, calm, "subscribe", map[string]any{"rooms": []any{"calm"}}); got["data"] == nil {
			t.Fatalf("calm client limited: %v", got)
		}
	}
	// Sustained abuse (20 more rejections within 10s) disconnects the flooder.
	receive(t, "the flooder's disconnect", disconnected)
	wg.Wait()
	if got := counterValue(t, ts.metrics, "switchboard_limit_rejections_total", "limit=event_abuse"); got != 1 {
		t.Fatalf("event_abuse = %v, want 1", got)
	}
	if got := counterValue(t, ts.metrics, "switchboard_acks_sent_total", "namespace=/", "result=rate_limited"); got < 5 {
		t.Fatalf("rate_limited acks counted = %v, want at least 5", got)
	}
	if got := call(t, calm, "subscribe", map[string]any{"rooms": []any{"after"}}); got["data"] == nil {
		t.Fatalf("calm client after the flood: %v", got)
	}
}

func TestRoomsPerSocket(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.MaxRoomsPerSocket = 3
	ts := startServer(t, cfg)
	c := mustRawDial(t, ts, "/")

	steps := []struct {
		event, args, code string
	}{
		{"subscribe", `{"rooms":["bad room!"]}`, "bad_request"}, // the handler's answer: nothing joined
		{"subscribe", `{"rooms":["a","b"]}`, ""},
		{"subscribe", `{"rooms":["c","d"]}`, "forbidden"}, // would be 4
		{"subscribe", `{"rooms":["a","b","c"]}`, ""},      // only c is new
		{"subscribe", `{"rooms":["d"]}`, "forbidden"},
		{"unsubscribe", `{"rooms":["a"]}`, ""},
		{"subscribe", `{"rooms":["d"]}`, ""},
		{"subscribe", `{"rooms":["x","x"]}`, "forbidden"},
	}
	for i, s := range steps {
		if got := errorCode(c.call(t, "/", s.event, s.args, i)); got != s.code {
			t.Fatalf("step %d %s %s: code %q, want %q", i, s.event, s.args, got, s.code)
		}
	}
	sock := serverSocket(ts, c.sid)
	if n := roomCount(sock); n != 3 {
		t.Fatalf("socket in %d rooms, want 3", n)
	}
}

func TestRoomsPerSocketPipelined(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.MaxRoomsPerSocket = 3
	ts := startServer(t, cfg)
	c := mustRawDial(t, ts, "/")
	// Requests sent back to back, before any handler ran: exactly the first three fit.
	for i := range 6 {
		if err := c.emit("/", "subscribe", fmt.Sprintf(`{"rooms":["r%d"]}`, i), i); err != nil {
			t.Fatal(err)
		}
	}
	codes := map[int]string{}
	for len(codes) < 6 {
		msg, err := c.read()
		if err != nil {
			t.Fatalf("reading acks: %v", err)
		}
		var id int
		var args []map[string]any
		if n, _ := fmt.Sscanf(msg, "43%d", &id); n == 1 {
			if err := json.Unmarshal([]byte(msg[strings.Index(msg, "["):]), &args); err != nil || len(args) != 1 {
				t.Fatalf("ack %q: %v", msg, err)
			}
			codes[id] = errorCode(args[0])
		}
	}
	ok := 0
	for i, code := range codes {
		switch code {
		case "":
			ok++
		case "forbidden":
		default:
			t.Fatalf("ack %d: code %q", i, code)
		}
	}
	if ok != 3 {
		t.Fatalf("%d of 6 pipelined subscribes accepted, want 3", ok)
	}
	if n := roomCount(serverSocket(ts, c.sid)); n != 3 {
		t.Fatalf("socket in %d rooms, want 3", n)
	}
}

// serverSocket finds a socket of "/" by id.
func serverSocket(ts *testServer, sid string) *socketio.Socket {
	return ts.IO().Namespace("/").Socket(sid)
}

// counterValue reads one series of a counter or gauge from the node's registry; labels are
// "name=value" pairs, all of the series' labels.
func counterValue(t *testing.T, m *Metrics, name string, labels ...string) float64 {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, s := range f.GetMetric() {
			if len(s.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range s.GetLabel() {
				if !slices.Contains(labels, l.GetName()+"="+l.GetValue()) {
					continue series
				}
			}
			if c := s.GetCounter(); c != nil {
				return c.GetValue()
			}
			return s.GetGauge().GetValue()
		}
	}
	return 0
}

// roomCount is how many rooms s is in, its own id room and its user room not counted.
func roomCount(s *socketio.Socket) int {
	n := 0
	for _, r := range s.Rooms() {
		if r != namespaces.UserRoom(namespaces.IdentityOf(s).User.ID) {
			n++
		}
	}
	return n
}
