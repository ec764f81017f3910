package server

import (
	"net/http"
	"strings"
	"testing"
)

// TestPollDuringUpgrade checks a long-polling GET that arrives between the probe's answer and the
// upgrade packet: it waits for the upgrade and is refused once the websocket took the session,
// however the server's readers interleave the two connections; without an upgrade it is served
// when the wait is over.
func TestPollDuringUpgrade(t *testing.T) {
	ts := startServer(t, testConfig())
	probed := func(t *testing.T) (*pollingSession, *rawWS) {
		p, hs := openPolling(t, ts.URL, "/socket.io/")
		w := dialWS(t, ts.URL, "/socket.io/?EIO=4&transport=websocket&sid="+hs.SID, true)
		w.send(text("2probe"))
		w.expect(text("3probe"))
		return p, w
	}
	type answer struct {
		status int
		body   string
	}
	poll := func(p *pollingSession) <-chan answer {
		out := make(chan answer, 1)
		go func() {
			status, body := httpDo(p.t, http.MethodGet, p.url, "")
			out <- answer{status, body}
		}()
		return out
	}

	t.Run("the upgrade comes", func(t *testing.T) {
		p, w := probed(t)
		got := poll(p)
		waitFor(t, "the poll to wait for the upgrade", func() bool { return ts.upgrades.waiters() == 1 })
		w.send(text("5"))
		if a := <-got; a.status != http.StatusBadRequest {
			t.Fatalf("poll after the upgrade: %d %q, want 400", a.status, a.body)
		}
		w.send(text("40")) // the session lives on the websocket
		if f := w.next(); !strings.HasPrefix(f.data, "40{") {
			t.Fatalf("CONNECT over the upgraded websocket answered %v, want 40{…}", f)
		}
	})
	t.Run("no upgrade comes", func(t *testing.T) {
		p, _ := probed(t)
		if a := <-poll(p); a.status != http.StatusOK || a.body != "6" {
			t.Fatalf("poll while the client holds back the upgrade: %d %q, want 200 with a noop", a.status, a.body)
		}
	})
}
