package server

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"

	"go.uber.org/goleak"
)

func TestHealthRoutes(t *testing.T) {
	ts := startServer(t, testConfig())
	tests := []struct {
		name   string
		path   string
		status int
	}{
		{"healthz", "/healthz", http.StatusOK},
		{"readyz while serving", "/readyz", http.StatusOK},
		{"unknown route", "/nope", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := http.Get(ts.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tt.status {
				t.Fatalf("GET %s = %d, want %d", tt.path, res.StatusCode, tt.status)
			}
			if tt.status == http.StatusOK && res.Header.Get("X-Request-Id") == "" && res.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("GET %s: want a JSON answer, got %q", tt.path, res.Header.Get("Content-Type"))
			}
		})
	}
}

func TestRoundTripEveryTransport(t *testing.T) {
	ts := startServer(t, testConfig())
	for name, transports := range transportSets {
		t.Run(name, func(t *testing.T) {
			c := dialReady(t, ts, "/", transports, map[string]any{"name": "ada"}) // see dialReady: the library drops an event sent too early
			got := call(t, c, "subscribe", map[string]any{"rooms": []any{"news", "prices:EURUSD"}})
			data, ok := got["data"].(map[string]any)
			if !ok {
				t.Fatalf("subscribe ack = %v, want data", got)
			}
			rooms := toStrings(data["rooms"])
			want := []string{"news", "prices:EURUSD", "user:" + c.Id()}
			sort.Strings(want)
			eq(t, rooms, want)
		})
	}
}

func TestShutdownDisconnectsAndDrains(t *testing.T) {
	ts := startServer(t, testConfig())

	clients := map[string]chan string{}
	for name, transports := range transportSets {
		c := dial(t, ts.URL, dialOptions{transports: transports})
		ch := make(chan string, 1)
		_ = c.Once("disconnect", func(args ...any) {
			reason, _ := args[0].(string)
			ch <- reason
		})
		clients[name] = ch
	}
	// The Go client counts itself upgraded when it sends its "upgrade" packet; until the server has
	// read it, the server's socket is still on polling with the websocket as a candidate, which a
	// shutdown at that moment leaves to the upgrade timeout (10 s) in a process that does not exit.
	waitFor(t, "the server to finish every upgrade", func() bool {
		for _, c := range ts.IO().Engine().Conns() {
			if c.Transport() != "websocket" {
				return false
			}
		}
		return true
	})
	if err := ts.stop(); err != nil {
		t.Fatalf("Serve returned %v after a clean drain", err)
	}
	for name, ch := range clients {
		// The client sees its transport close; that reason makes socket.io-client reconnect.
		if reason := receive(t, name+" disconnect", ch); reason != "transport close" && reason != "transport error" {
			t.Errorf("%s: disconnect reason %q, want the transport to close", name, reason)
		}
	}
	rec := httptest.NewRecorder()
	ts.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("readyz after shutdown = %d, want 503", rec.Code)
	}
}

// TestShutdownLeavesNoGoroutines: after Serve returns, nothing of the node keeps running. The
// clients are raw websockets (no goroutines of their own, unlike the library's Go client, whose
// timers would count), connected to both namespaces.
func TestShutdownLeavesNoGoroutines(t *testing.T) {
	ts := startServer(t, testConfig())
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	var clients []*rawClient
	for _, nsp := range []string{"/", "/chat", "/"} {
		c, _, err := rawDial(ts, nsp, 0)
		if err != nil {
			t.Fatalf("raw dial %s: %v", nsp, err)
		}
		clients = append(clients, c)
	}
	if err := ts.stop(); err != nil {
		t.Fatalf("Serve returned %v after a clean drain", err)
	}
	for i, c := range clients {
		for {
			// The server closed the connection: reads end (after any last packets), and not by
			// the read deadline.
			_, err := c.read()
			if err == nil {
				continue
			}
			if isTimeout(err) {
				t.Errorf("client %d: the server did not close its connection: %v", i, err)
			}
			break
		}
		c.close()
	}
}

func toStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// isTimeout reports whether err is a timeout (a read deadline that passed).
func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
