package server

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	sio "github.com/zishang520/socket.io/clients/socket/v3"

	"github.com/switchboard/switchboard/namespaces"
)

// scrape GETs /metrics and returns the body.
func scrape(t *testing.T, baseURL string) string {
	t.Helper()
	res, err := http.Get(baseURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func TestMetricsEndpoint(t *testing.T) {
	ts := startServer(t, testConfig())
	body := scrape(t, ts.URL)
	for _, want := range []string{
		"go_goroutines ", "go_memstats_heap_inuse_bytes ", "process_open_fds ",
		`switchboard_sockets_connected{namespace="/",transport="websocket"} 0`,
		`switchboard_sockets_connected{namespace="/",transport="polling"} 0`,
		"# TYPE switchboard_http_requests_total counter",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// The readiness poll of startServer and the scrape itself are counted by route pattern.
	if got := counterValue(t, ts.metrics, "switchboard_http_requests_total", "route=/readyz", "method=GET", "status=200"); got < 1 {
		t.Errorf("GET /readyz counted %v times", got)
	}
	if got := counterValue(t, ts.metrics, "switchboard_http_requests_total", "route=/metrics", "method=GET", "status=200"); got != 1 {
		t.Errorf("GET /metrics counted %v times, want 1", got)
	}
}

func TestMetricsSocketLifecycle(t *testing.T) {
	cfg := testConfig()
	// The Go client upgrades once its pending long-poll returns, at the latest on a ping.
	cfg.PingInterval = 300 * time.Millisecond
	ts := startServer(t, cfg)
	gauge := func(transport string) float64 {
		return counterValue(t, ts.metrics, "switchboard_sockets_connected", "namespace=/", "transport="+transport)
	}

	var connects atomic.Int64 // a retried attempt of the upgrading client may have connected too
	ws := dial(t, ts.URL, dialOptions{transports: transportSets["websocket"], connects: &connects})
	up := dial(t, ts.URL, dialOptions{transports: transportSets["polling-upgrade"], connects: &connects})
	// The upgraded client moves from polling to websocket.
	waitFor(t, "the upgrade to move the gauge", func() bool { return gauge("websocket") == 2 && gauge("polling") == 0 })
	// A connect counts on the transport it happened on: the upgrading client may finish its
	// upgrade before or after its namespace connect.
	if got := counterValue(t, ts.metrics, "switchboard_connects_total", "namespace=/", "transport=polling") +
		counterValue(t, ts.metrics, "switchboard_connects_total", "namespace=/", "transport=websocket"); got != float64(connects.Load()) {
		t.Fatalf("connects = %v, want %d", got, connects.Load())
	}

	// Received events: contract names by name, anything else as other; acks by result.
	// Events of one socket are handled in order: once the last ack is in, all were counted.
	_ = ws.Emit("made-up-event-1", map[string]any{})
	_ = ws.Emit("made-up-event-2", map[string]any{})
	call(t, up, "subscribe", map[string]any{"rooms": []any{"news"}})
	call(t, ws, "subscribe", map[string]any{"rooms": "not a list"})
	call(t, ws, "subscribe", map[string]any{"rooms": []any{"news"}})
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"switchboard_events_received_total", []string{"namespace=/", "event=subscribe"}, 3},
		{"switchboard_events_received_total", []string{"namespace=/", "event=other"}, 2},
		{"switchboard_acks_sent_total", []string{"namespace=/", "result=ok"}, 2},
		{"switchboard_acks_sent_total", []string{"namespace=/", "result=bad_request"}, 1},
	}
	for _, c := range checks {
		if got := counterValue(t, ts.metrics, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}

	// Emitted events are counted per recipient.
	got := make(chan struct{}, 4)
	for _, c := range []*sio.Socket{ws, up} {
		_ = c.On("chat:message", func(...any) { got <- struct{}{} })
		_ = c.On("ticker", func(...any) { got <- struct{}{} })
	}
	ts.IO().Namespace("/").To("news").Emit("chat:message", map[string]any{"text": "hi"})
	ts.IO().Namespace("/").To("news").Emit("ticker", 1)
	for range 4 {
		receive(t, "a broadcast", got)
	}
	if n := counterValue(t, ts.metrics, "switchboard_events_emitted_total", "namespace=/", "event=chat:message"); n != 2 {
		t.Errorf("chat:message deliveries = %v, want 2", n)
	}
	if n := counterValue(t, ts.metrics, "switchboard_events_emitted_total", "namespace=/", "event=other"); n != 2 {
		t.Errorf("other deliveries = %v, want 2", n)
	}

	// Disconnects by reason, and the gauge back to 0.
	ws.Disconnect()
	up.Disconnect()
	waitFor(t, "the gauge to reach 0", func() bool { return gauge("websocket") == 0 && gauge("polling") == 0 })
	// The Go client leaves the namespace and closes the connection in one go: the server sees
	// one or the other first. An attempt given up after it connected ended the same way.
	if n := counterValue(t, ts.metrics, "switchboard_disconnects_total", "namespace=/", "reason=client namespace disconnect") +
		counterValue(t, ts.metrics, "switchboard_disconnects_total", "namespace=/", "reason=transport close"); n != float64(connects.Load()) {
		t.Errorf("client disconnects = %v, want %d:\n%s", n, connects.Load(), scrape(t, ts.URL))
	}
	waitFor(t, "the engine to forget the connections", func() bool { return ts.IO().Connections() == 0 })
}

func TestMetricsHooks(t *testing.T) {
	m := NewMetrics()
	log := zerolog.New(io.Discard).Hook(m.adapterErrorHook("redis"))
	log.Error().Msg("publish failed")
	log.Warn().Msg("retrying")
	log.Error().Msg("publish failed again")
	if got := counterValue(t, m, "switchboard_adapter_errors_total", "adapter=redis"); got != 2 {
		t.Errorf("adapter errors = %v, want 2 (warnings are not errors)", got)
	}
	m.ObserveAcks("/", 3, false)
	m.ObserveAcks("/", 1, true)
	if got := counterValue(t, m, "switchboard_client_acks_total", "namespace=/"); got != 4 {
		t.Errorf("client acks = %v, want 4", got)
	}
	if got := counterValue(t, m, "switchboard_ack_timeouts_total", "namespace=/"); got != 1 {
		t.Errorf("ack timeouts = %v, want 1", got)
	}
}

func TestAckResult(t *testing.T) {
	tests := []struct {
		name string
		args []any
		want string
	}{
		{"data", []any{map[string]any{"data": nil}}, "ok"},
		{"typed error", []any{map[string]any{"error": namespaces.Errorf(namespaces.CodeForbidden, "no")}}, "forbidden"},
		{"map error", []any{map[string]any{"error": map[string]any{"code": "not_found"}}}, "not_found"},
		{"unknown code", []any{map[string]any{"error": map[string]any{"code": "x" + strings.Repeat("y", 100)}}}, "other"},
		{"no args", nil, "other"},
		{"not an object", []any{"ok"}, "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ackResult(tt.args); got != tt.want {
				t.Fatalf("ackResult = %q, want %q", got, tt.want)
			}
		})
	}
}
