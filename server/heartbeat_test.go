package server

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestPollAfterPingTimeout checks that a long-polling GET arriving once a ping has gone
// unanswered for the ping timeout ends the session, as the engine's timer does a moment later,
// instead of being served; and that one arriving before then is served.
func TestPollAfterPingTimeout(t *testing.T) {
	ts := startServer(t, testConfig())
	state := func(t *testing.T, sid string) *connState {
		t.Helper()
		v, ok := ts.conns.conns.Load(sid)
		if !ok {
			t.Fatalf("no tracked connection %s", sid)
		}
		return v.(*connState)
	}
	cfg := testConfig()

	t.Run("timeout passed", func(t *testing.T) {
		p, _ := openPolling(t, ts.URL, "/socket.io/")
		state(t, p.sid).pingAt.Store(time.Now().Add(-cfg.PingTimeout - time.Millisecond).UnixNano())
		status, body := p.get()
		if status != http.StatusBadRequest || !strings.Contains(body, "Session ID unknown") {
			t.Fatalf("GET after the ping timeout: %d %q, want 400 Session ID unknown", status, body)
		}
		if _, ok := ts.IO().Engine().Clients().Load(p.sid); ok {
			t.Fatal("the session is still open")
		}
	})
	t.Run("timeout not passed", func(t *testing.T) {
		p, _ := openPolling(t, ts.URL, "/socket.io/")
		state(t, p.sid).pingAt.Store(time.Now().UnixNano())
		if status, body := p.post("40"); status != http.StatusOK {
			t.Fatalf("POST: %d %q", status, body)
		}
		if status, body := p.get(); status != http.StatusOK || !strings.HasPrefix(body, "40{") {
			t.Fatalf("GET before the ping timeout: %d %q, want 200 with the CONNECT answer", status, body)
		}
	})
}
