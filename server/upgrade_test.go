package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// TestPollDuringUpgrade checks a long-polling GET that arrives between the probe's answer and the
// upgrade: while the websocket is reading the upgrade packet, the GET waits for it and is refused
// once the websocket took the session; while the websocket is quiet (the client waits for that
// very poll before it sends the upgrade packet) the GET is served at once.
func TestPollDuringUpgrade(t *testing.T) {
	ts := startServer(t, testConfig())
	ts.upgrades.settleFor(waitTimeout) // the poll must still wait when the test writes the rest
	probed := func(t *testing.T, header http.Header) (*pollingSession, *rawWS) {
		p, hs := openPolling(t, ts.URL, "/socket.io/")
		w := dialWSWith(t, ts.URL, "/socket.io/?EIO=4&transport=websocket&sid="+hs.SID, header, true)
		w.send(text("2probe"))
		w.expect(text("3probe"))
		return p, w
	}
	type answer struct {
		status int
		body   string
	}
	// poll sends a GET from its own goroutine, which must not call t.Fatal (httpDo does).
	poll := func(p *pollingSession) <-chan answer {
		out := make(chan answer, 1)
		go func() {
			status, body := httpDoNoFatal(p.url)
			out <- answer{status, body}
		}()
		return out
	}

	for _, c := range []struct {
		name   string
		header http.Header
	}{
		{"the upgrade packet is being read", nil},
		// A head the front door does not take whole goes to net/http, which hijacks its own
		// wrapper of the connection (frontdoor.go); the reader must watch the same input.
		{"the upgrade packet is being read, handshake served by net/http", http.Header{"X-Pad": {strings.Repeat("p", headBufferSize)}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, w := probed(t, c.header)
			// The upgrade packet "5" as a client frame, cut after its first two bytes: the server's
			// reader has input it has not handled until the rest arrives.
			frame := clientFrame(true, websocket.TextMessage, []byte("5"))
			raw := w.conn.UnderlyingConn()
			if _, err := raw.Write(frame[:2]); err != nil {
				t.Fatal(err)
			}
			got := poll(p)
			waitFor(t, "the poll to wait for the upgrade", func() bool { return ts.upgrades.waiters() == 1 })
			if _, err := raw.Write(frame[2:]); err != nil {
				t.Fatal(err)
			}
			if a := <-got; a.status != http.StatusBadRequest {
				t.Fatalf("poll after the upgrade: %d %q, want 400", a.status, a.body)
			}
			w.send(text("40")) // the session lives on the websocket
			if f := w.next(); !strings.HasPrefix(f.data, "40{") {
				t.Fatalf("CONNECT over the upgraded websocket answered %v, want 40{…}", f)
			}
		})
	}
	t.Run("the websocket is quiet", func(t *testing.T) {
		p, _ := probed(t, nil)
		if a := <-poll(p); a.status != http.StatusOK || a.body != "6" {
			t.Fatalf("poll while the client holds back the upgrade: %d %q, want 200 with a noop", a.status, a.body)
		}
		if n := ts.upgrades.waiters(); n != 0 {
			t.Fatalf("%d polls wait, want none", n)
		}
	})
}
