package hooks

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestNewRefuses(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no URL", Config{Secret: "s"}, "URL"},
		{"not http", Config{URL: "ftp://h/x", Secret: "s"}, "URL"},
		{"no host", Config{URL: "http:///x", Secret: "s"}, "URL"},
		{"query", Config{URL: "http://h/x?a=1", Secret: "s"}, "URL"},
		{"fragment", Config{URL: "http://h/x#f", Secret: "s"}, "URL"},
		{"no secret", Config{URL: "http://h/x"}, "Secret"},
		{"negative timeout", Config{URL: "http://h", Secret: "s", Timeout: -1}, "Timeout"},
		{"negative in flight", Config{URL: "http://h", Secret: "s", MaxInFlight: -1}, "MaxInFlight"},
		{"negative queue", Config{URL: "http://h", Secret: "s", QueueMax: -5}, "QueueMax"},
		{"negative cap", Config{URL: "http://h", Secret: "s", MaxResponse: -5}, "MaxResponse"},
		{"retry max below base", Config{URL: "http://h", Secret: "s", RetryBase: time.Minute, RetryMax: time.Second}, "RetryMax"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg)
			if err == nil {
				c.Close(context.Background())
				t.Fatal("New accepted it")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name %s", err, tt.want)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	c, err := New(Config{URL: "http://127.0.0.1:1/app/", Secret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if c.base != "http://127.0.0.1:1/app" {
		t.Errorf("base %q keeps the trailing slash", c.base)
	}
	if c.timeout != DefaultTimeout || cap(c.slots) != DefaultMaxInFlight || c.maxQueued != DefaultMaxQueued ||
		c.maxResponse != DefaultMaxResponse || c.ev.batchMax != DefaultBatchMax || c.ev.batchWait != DefaultBatchWait ||
		c.ev.queueMax != DefaultQueueMax || c.ev.retryBase != DefaultRetryBase || c.ev.retryMax != DefaultRetryMax {
		t.Errorf("defaults not applied: %+v", c)
	}
	tr, ok := c.http.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("transport %T", c.http.Transport)
	}
	if tr.MaxConnsPerHost != DefaultMaxInFlight+1 || tr.MaxIdleConnsPerHost != DefaultMaxInFlight+1 || tr.Proxy != nil {
		t.Errorf("transport: MaxConnsPerHost %d, MaxIdleConnsPerHost %d, proxy set %v",
			tr.MaxConnsPerHost, tr.MaxIdleConnsPerHost, tr.Proxy != nil)
	}
}

func TestMetricsRegistered(t *testing.T) {
	reg := prometheus.NewRegistry()
	c, err := New(Config{URL: "http://127.0.0.1:1", Secret: "s", Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		"switchboard_hook_requests_total": true, "switchboard_hook_request_duration_seconds": true,
		"switchboard_hook_events_queued": true, "switchboard_hook_events_dropped_total": true,
		"switchboard_hook_events_delivered_total": true, "switchboard_hook_forwards_rejected_total": true,
	}
	for _, mf := range mfs {
		if !want[mf.GetName()] {
			t.Errorf("unexpected series %s", mf.GetName())
		}
		delete(want, mf.GetName())
	}
	for name := range want {
		t.Errorf("series %s missing", name)
	}
	// Every hook and outcome is there from the start, at zero.
	if got := counterValue(t, reg, "switchboard_hook_requests_total", map[string]string{"hook": "events", "outcome": "invalid"}); got != 0 {
		t.Errorf("a fresh counter reads %v", got)
	}
	if _, err := New(Config{URL: "http://127.0.0.1:1", Secret: "s", Registerer: reg}); err == nil {
		t.Error("a second Client registered on the same registry")
	}
	c2, err := New(Config{URL: "http://127.0.0.1:1", Secret: "s"})
	if err != nil {
		t.Fatalf("without a Registerer: %v", err)
	}
	c2.Close(context.Background())
}

func TestFailuresLoggedSparingly(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request, hook string, body []byte) {
		answer(w, 503, `{"secret":"PAYLOAD-MARKER"}`)
	})
	logs := &syncBuffer{}
	c := newClient(t, b, Config{Logger: zerolog.New(logs)})
	for range 50 {
		c.Connect(context.Background(), ConnectRequest{})
	}
	if n := strings.Count(logs.String(), "\n"); n != 1 {
		t.Errorf("50 failures within a second logged %d lines, want 1:\n%s", n, logs)
	}
	line := logs.String()
	for _, want := range []string{`"level":"warn"`, `"component":"hooks"`, `"hook":"connect"`, `"outcome":"unavailable"`, `"status":503`} {
		if !strings.Contains(line, want) {
			t.Errorf("log line lacks %s: %s", want, line)
		}
	}
	// A second later the next failure is logged with how many were left out.
	waitFor(t, "a line with the suppressed count", func() bool {
		c.Connect(context.Background(), ConnectRequest{})
		return strings.Contains(logs.String(), `"suppressed":`)
	})
	if strings.Contains(logs.String(), "PAYLOAD-MARKER") {
		t.Errorf("the log carries the answer: %s", logs)
	}
}

func TestCloseLeavesNothing(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request, hook string, body []byte) { answer(w, 200, `{}`) })
	before := goleak.IgnoreCurrent() // the test server's own
	c, err := New(Config{URL: b.url(), Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Connect(context.Background(), ConnectRequest{}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	if err := c.Forward("k", EventRequest{Event: "e"}, func(_ EventResult, err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c.Notify(RoomOccupied("/", "r"))
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// With the server still up: its connections end only if the client closed its idle ones.
	goleak.VerifyNone(t, before)
}
