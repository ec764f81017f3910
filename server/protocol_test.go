package server

import (
	"encoding/json"
	"github.com/switchboard/switchboard/engineio"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"
)

// These tests pin down, in Go, the protocol behaviours that the official Engine.IO v4 and
// Socket.IO v5 test suites check, so the project stays correct without the external suites.
// They speak the wire format by hand (rawclient_test.go).

func conformanceTestConfig() Config {
	cfg := testConfig()
	cfg.Conformance = true
	return cfg
}

func TestHandshake(t *testing.T) {
	conf := startServer(t, conformanceTestConfig())
	normal := startServer(t, testConfig())
	tests := []struct {
		name      string
		ts        *testServer
		path      string
		websocket bool
		want      eioHandshake
	}{
		{"engine.io polling", conf, "/engine.io/", false, eioHandshake{Upgrades: []string{"websocket"}, PingInterval: 300, PingTimeout: 200, MaxPayload: 1000000}},
		{"engine.io websocket", conf, "/engine.io/", true, eioHandshake{Upgrades: []string{}, PingInterval: 300, PingTimeout: 200, MaxPayload: 1000000}},
		{"socket.io polling", conf, "/socket.io/", false, eioHandshake{Upgrades: []string{"websocket"}, PingInterval: 300, PingTimeout: 200, MaxPayload: 1000000}},
		{"socket.io websocket", conf, "/socket.io/", true, eioHandshake{Upgrades: []string{}, PingInterval: 300, PingTimeout: 200, MaxPayload: 1000000}},
		{"normal mode polling", normal, "/socket.io/", false, eioHandshake{Upgrades: []string{"websocket"}, PingInterval: 25000, PingTimeout: 20000, MaxPayload: 1000000}},
		{"normal mode websocket", normal, "/socket.io/", true, eioHandshake{Upgrades: []string{}, PingInterval: 25000, PingTimeout: 20000, MaxPayload: 1000000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hs eioHandshake
			if tt.websocket {
				w := dialWS(t, tt.ts.URL, tt.path+"?EIO=4&transport=websocket", false)
				hs = parseOpen(t, w.next().data)
			} else {
				_, hs = openPolling(t, tt.ts.URL, tt.path)
			}
			sort.Strings(hs.keys)
			eq(t, hs.keys, []string{"maxPayload", "pingInterval", "pingTimeout", "sid", "upgrades"})
			if hs.SID == "" {
				t.Fatal("empty sid")
			}
			hs.SID, hs.keys = "", nil
			eq(t, hs, tt.want)
		})
	}
	t.Run("engine.io is served in conformance mode only", func(t *testing.T) {
		status, _ := httpDo(t, http.MethodGet, normal.URL+"/engine.io/?EIO=4&transport=polling", "")
		eq(t, status, http.StatusNotFound)
	})
}

func TestHeartbeat(t *testing.T) {
	ts := startServer(t, conformanceTestConfig())
	const interval, timeout = conformancePingInterval, conformancePingTimeout
	// A ping never comes earlier than pingInterval after the handshake or the last pong: these
	// lower bounds are measured from before the request, so they hold however slow the machine.
	tests := []struct {
		name string
		run  func(t *testing.T, path string)
	}{
		{"websocket ping/pong", func(t *testing.T, path string) {
			start := time.Now()
			w := dialWS(t, ts.URL, path+"?EIO=4&transport=websocket", false)
			parseOpen(t, w.next().data)
			if path == "/socket.io/" { // else connectTimeout (1s) ends the session first
				w.send(text("40"))
			}
			for pings := 0; pings < 3; {
				f := w.next()
				switch {
				case f == text("2"):
					atLeast(t, "ping", time.Since(start), interval)
					start = time.Now()
					w.send(text("3"))
					pings++
				case path == "/socket.io/" && (strings.HasPrefix(f.data, "40{") || f == text(`42["auth",{}]`)):
				default:
					t.Fatalf("got %v, want a ping", f)
				}
			}
		}},
		{"websocket closes on ping timeout", func(t *testing.T, path string) {
			start := time.Now()
			w := dialWS(t, ts.URL, path+"?EIO=4&transport=websocket", false)
			w.expectClosed()
			atLeast(t, "close", time.Since(start), interval+timeout)
		}},
		{"polling ping/pong", func(t *testing.T, path string) {
			start := time.Now()
			p, _ := openPolling(t, ts.URL, path)
			if path == "/socket.io/" { // else connectTimeout (1s) ends the session first
				eq(t, second(p.post("40")), "ok")
			}
			for pings := 0; pings < 3; {
				status, body := p.get()
				eq(t, status, http.StatusOK)
				for _, pkt := range strings.Split(body, "\x1e") {
					switch {
					case pkt == "2":
						atLeast(t, "ping", time.Since(start), interval)
						start = time.Now()
						eq(t, second(p.post("3")), "ok")
						pings++
					case path == "/socket.io/" && (strings.HasPrefix(pkt, "40{") || pkt == `42["auth",{}]`):
					default:
						t.Fatalf("got %q, want a ping", pkt)
					}
				}
			}
		}},
		{"polling closes on ping timeout", func(t *testing.T, path string) {
			start := time.Now()
			p, _ := openPolling(t, ts.URL, path)
			waitFor(t, "the session to time out", func() bool {
				status, _ := p.get() // the ping is never answered
				return status == http.StatusBadRequest
			})
			atLeast(t, "timeout", time.Since(start), interval+timeout)
		}},
	}
	for _, path := range []string{"/engine.io/", "/socket.io/"} {
		for _, tt := range tests {
			t.Run(path+" "+tt.name, func(t *testing.T) {
				t.Parallel()
				tt.run(t, path)
			})
		}
	}
}

func atLeast(t *testing.T, what string, got, min time.Duration) {
	t.Helper()
	if got < min {
		t.Fatalf("%s after %v, want at least %v", what, got, min)
	}
	if got > min+5*time.Second {
		t.Fatalf("%s after %v, want about %v", what, got, min)
	}
}

func TestEngineIOEcho(t *testing.T) {
	ts := startServer(t, conformanceTestConfig())
	tests := []struct {
		name string
		send []frame // over websocket; over polling, one payload of the text frames
		want []frame
	}{
		{"one text packet", []frame{text("4hello")}, []frame{text("4hello")}},
		{"several text packets", []frame{text("4test1"), text("4test2"), text("4test3")}, []frame{text("4test1"), text("4test2"), text("4test3")}},
		{"unicode", []frame{text("4€ ✓ 😀")}, []frame{text("4€ ✓ 😀")}},
	}
	for _, tt := range tests {
		t.Run("websocket "+tt.name, func(t *testing.T) {
			w := dialWS(t, ts.URL, "/engine.io/?EIO=4&transport=websocket", true)
			parseOpen(t, w.next().data)
			w.send(tt.send...)
			w.expect(tt.want...)
		})
		t.Run("polling "+tt.name, func(t *testing.T) {
			p, _ := openPolling(t, ts.URL, "/engine.io/")
			status, body := p.post(joinPayload(tt.send))
			eq(t, status, http.StatusOK)
			eq(t, body, "ok")
			status, body = p.get()
			eq(t, status, http.StatusOK)
			eq(t, body, joinPayload(tt.want))
		})
	}
	t.Run("websocket binary", func(t *testing.T) {
		w := dialWS(t, ts.URL, "/engine.io/?EIO=4&transport=websocket", true)
		parseOpen(t, w.next().data)
		w.send(binary(1, 2, 3, 4), text("4after"))
		w.expect(binary(1, 2, 3, 4), text("4after"))
	})
	t.Run("polling text and base64 binary", func(t *testing.T) {
		p, _ := openPolling(t, ts.URL, "/engine.io/")
		eq(t, second(p.post("4hello\x1ebAQIDBA==")), "ok")
		status, body := p.get()
		eq(t, status, http.StatusOK)
		eq(t, body, "4hello\x1ebAQIDBA==")
	})
}

func joinPayload(frames []frame) string {
	parts := make([]string, len(frames))
	for i, f := range frames {
		parts[i] = f.data
	}
	return strings.Join(parts, "\x1e")
}

func second[A, B any](_ A, b B) B { return b }

func TestSessionClose(t *testing.T) {
	ts := startServer(t, conformanceTestConfig())
	tests := []struct {
		name string
		run  func(t *testing.T, path string)
	}{
		{"polling: invalid packet closes the session", func(t *testing.T, path string) {
			p, _ := openPolling(t, ts.URL, path)
			p.post("abc")
			eq(t, first(p.get()), http.StatusBadRequest)
		}},
		{"polling: close answers the pending poll with noop", func(t *testing.T, path string) {
			p, _ := openPolling(t, ts.URL, path)
			polled := parkPoll(t, ts, path, p)
			eq(t, second(p.post("1")), "ok")
			got := receive(t, "poll", polled)
			eq(t, got, [2]any{http.StatusOK, "6"})
			eq(t, first(p.get()), http.StatusBadRequest)
		}},
		{"polling: close that overtakes the poll still answers it", func(t *testing.T, path string) {
			p, _ := openPolling(t, ts.URL, path)
			eq(t, second(p.post("1")), "ok")
			status, body := p.get()
			eq(t, status, http.StatusOK)
			eq(t, body, "6")
			eq(t, first(p.get()), http.StatusBadRequest)
		}},
		{"polling: a duplicate poll closes the session", func(t *testing.T, path string) {
			p, _ := openPolling(t, ts.URL, path)
			polled := parkPoll(t, ts, path, p)
			eq(t, first(p.get()), http.StatusBadRequest)
			eq(t, receive(t, "first poll", polled), [2]any{http.StatusOK, "1"})
			eq(t, first(p.get()), http.StatusBadRequest)
		}},
		{"websocket: invalid packet closes", func(t *testing.T, path string) {
			w := dialWS(t, ts.URL, path+"?EIO=4&transport=websocket", true)
			parseOpen(t, w.next().data)
			w.send(text("abc"))
			w.expectClosed()
		}},
		{"websocket: a close packet closes the session", func(t *testing.T, path string) {
			// The protocol's close packet ends the session on either transport. (Node's engine.io
			// ignores it on a websocket, whose client closes the websocket instead, and drops the
			// session at the next ping timeout; closing at once frees it sooner.)
			w := dialWS(t, ts.URL, path+"?EIO=4&transport=websocket", false)
			parseOpen(t, w.next().data)
			w.send(text("1"))
			w.expectClosed()
		}},
	}
	for _, path := range []string{"/engine.io/", "/socket.io/"} {
		for _, tt := range tests {
			t.Run(path+" "+tt.name, func(t *testing.T) { tt.run(t, path) })
		}
	}
}

func first[A, B any](a A, _ B) A { return a }

// httpDoNoFatal is a GET for goroutines other than the test's (which must not call t.Fatal).
func httpDoNoFatal(url string) (int, string) {
	res, err := httpClient.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	var b strings.Builder
	buf := make([]byte, 512)
	for {
		n, err := res.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return res.StatusCode, b.String()
}

// parkPoll sends a GET for p in the background, waits until the server holds it, and returns
// where its status and body will arrive.
func parkPoll(t *testing.T, ts *testServer, path string, p *pollingSession) <-chan [2]any {
	t.Helper()
	polled := make(chan [2]any, 1)
	go func() {
		status, body := httpDoNoFatal(p.url)
		polled <- [2]any{status, body}
	}()
	waitForPendingPoll(t, ts, path, p)
	return polled
}

// waitForPendingPoll waits until the polling session p has a GET parked, so a test can order
// requests without sleeping.
func waitForPendingPoll(t *testing.T, ts *testServer, path string, p *pollingSession) {
	t.Helper()
	eng := ts.IO().Engine()
	if path == "/engine.io/" {
		eng = ts.echo.(*engineio.Server)
	}
	waitFor(t, "a pending poll", func() bool {
		c := eng.Conn(p.sid)
		return c != nil && c.Writable()
	})
}

func TestUpgrade(t *testing.T) {
	ts := startServer(t, conformanceTestConfig())
	// upgrade performs the polling → websocket upgrade of a new session and returns both.
	upgrade := func(t *testing.T, path string) (*pollingSession, *rawWS) {
		p, hs := openPolling(t, ts.URL, path)
		w := dialWS(t, ts.URL, path+"?EIO=4&transport=websocket&sid="+hs.SID, true)
		w.send(text("2probe"))
		w.expect(text("3probe"))
		// The pending poll (or the next one) is ended with a noop so the client can let go of it.
		status, body := p.get()
		eq(t, status, http.StatusOK)
		eq(t, body, "6")
		w.send(text("5"))
		// The upgrade completes on the server's websocket reader; a poll sent before that is
		// still served by the polling transport.
		eng := ts.IO().Engine()
		if path == "/engine.io/" {
			eng = ts.echo.(*engineio.Server)
		}
		waitFor(t, "the upgrade", func() bool {
			c := eng.Conn(hs.SID)
			return c != nil && c.Transport() == "websocket"
		})
		return p, w
	}
	tests := []struct {
		name string
		path string
		run  func(t *testing.T, p *pollingSession, w *rawWS)
	}{
		{"engine.io: messages flow over the websocket", "/engine.io/", func(t *testing.T, _ *pollingSession, w *rawWS) {
			w.send(text("4hello"))
			w.expect(text("4hello"))
		}},
		{"socket.io: namespace connect over the websocket", "/socket.io/", func(t *testing.T, _ *pollingSession, w *rawWS) {
			w.send(text("40"))
			if f := w.next(); !strings.HasPrefix(f.data, "40{") {
				t.Fatalf("got %v, want CONNECT", f)
			}
			w.expect(text(`42["auth",{}]`))
		}},
		{"engine.io: polling with the same sid is refused", "/engine.io/", func(t *testing.T, p *pollingSession, w *rawWS) {
			eq(t, first(p.get()), http.StatusBadRequest)
			w.send(text("4still"))
			w.expect(text("4still"))
		}},
		{"socket.io: polling with the same sid is refused", "/socket.io/", func(t *testing.T, p *pollingSession, _ *rawWS) {
			eq(t, first(p.get()), http.StatusBadRequest)
		}},
		{"engine.io: a second websocket with the same sid is closed", "/engine.io/", func(t *testing.T, p *pollingSession, w *rawWS) {
			w2 := dialWS(t, ts.URL, "/engine.io/?EIO=4&transport=websocket&sid="+p.sid, false)
			w2.expectClosed()
			w.send(text("4still"))
			w.expect(text("4still"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, w := upgrade(t, tt.path)
			tt.run(t, p, w)
		})
	}
}

func TestNamespaceConnect(t *testing.T) {
	conf := startServer(t, conformanceTestConfig())
	normal := startServer(t, testConfig())
	tests := []struct {
		name     string
		ts       *testServer
		send     string
		prefix   string   // of the CONNECT answer, followed by {"sid"...}
		keys     []string // of the CONNECT answer's payload
		then     []frame
		rejected string // a CONNECT_ERROR instead
	}{
		{name: "main namespace", ts: conf, send: "40", prefix: "40", keys: []string{"sid"}, then: []frame{text(`42["auth",{}]`)}},
		{name: "main namespace with auth", ts: conf, send: `40{"token":"123"}`, prefix: "40", keys: []string{"sid"}, then: []frame{text(`42["auth",{"token":"123"}]`)}},
		{name: "custom namespace", ts: conf, send: "40/custom,", prefix: "40/custom,", keys: []string{"sid"}, then: []frame{text(`42/custom,["auth",{}]`)}},
		{name: "custom namespace with auth", ts: conf, send: `40/custom,{"token":"abc"}`, prefix: "40/custom,", keys: []string{"sid"}, then: []frame{text(`42/custom,["auth",{"token":"abc"}]`)}},
		{name: "unknown namespace", ts: conf, send: "40/random", rejected: `44/random,{"message":"Invalid namespace"}`},
		// Normal mode: recovery is on, so CONNECT carries the private session id too.
		{name: "normal mode main namespace", ts: normal, send: "40", prefix: "40", keys: []string{"pid", "sid"}},
		{name: "normal mode has no /custom", ts: normal, send: "40/custom,", rejected: `44/custom,{"message":"Invalid namespace"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, _ := openSocketIO(t, tt.ts.URL, true)
			w.send(text(tt.send))
			got := w.next()
			if tt.rejected != "" {
				eq(t, got, text(tt.rejected))
				return
			}
			payload, ok := strings.CutPrefix(got.data, tt.prefix)
			if !ok {
				t.Fatalf("got %v, want CONNECT %s", got, tt.prefix)
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(payload), &m); err != nil {
				t.Fatalf("CONNECT payload %q: %v", payload, err)
			}
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			eq(t, keys, tt.keys)
			if sid, _ := m["sid"].(string); sid == "" {
				t.Fatalf("CONNECT without sid: %q", payload)
			}
			w.expect(tt.then...)
		})
	}
	t.Run("invalid handshake closes", func(t *testing.T) {
		w, _ := openSocketIO(t, conf.URL, true)
		w.send(text("4abc"))
		w.expectClosed()
	})
	t.Run("no handshake closes after connectTimeout", func(t *testing.T) {
		start := time.Now()
		w, _ := openSocketIO(t, conf.URL, true)
		w.expectClosed()
		atLeast(t, "close", time.Since(start), conformanceConnectTimeout)
	})
}

func TestSocketIOPackets(t *testing.T) {
	ts := startServer(t, conformanceTestConfig())
	tests := []struct {
		name   string
		send   []frame
		want   []frame
		closes bool
	}{
		{name: "event", send: []frame{text(`42["message",1,"2",{"3":[true]}]`)}, want: []frame{text(`42["message-back",1,"2",{"3":[true]}]`)}},
		{name: "event with ack", send: []frame{text(`42456["message-with-ack",1,"2",{"3":[false]}]`)}, want: []frame{text(`43456[1,"2",{"3":[false]}]`)}},
		{
			name: "binary event",
			send: []frame{text(`452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`), binary(1, 2, 3), binary(4, 5, 6)},
			want: []frame{text(`452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`), binary(1, 2, 3), binary(4, 5, 6)},
		},
		{
			name: "binary event with ack",
			send: []frame{text(`452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`), binary(1, 2, 3), binary(4, 5, 6)},
			want: []frame{text(`462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`), binary(1, 2, 3), binary(4, 5, 6)},
		},
		{
			name: "disconnect from /custom, main namespace still served",
			send: []frame{text("40/custom,")},
			want: nil, // checked below
		},
		{name: "unknown packet type closes", send: []frame{text("4abc")}, closes: true},
		{name: "payload that is not an array closes", send: []frame{text("42{}")}, closes: true},
		{name: "invalid ack id closes", send: []frame{text(`42abc["message-with-ack",1,"2",{"3":[false]}]`)}, closes: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, _ := connectMain(t, ts)
			w.send(tt.send...)
			if tt.closes {
				w.expectClosed()
				return
			}
			if tt.want == nil { // the /custom round trip
				if f := w.next(); !strings.HasPrefix(f.data, "40/custom,{") {
					t.Fatalf("got %v, want CONNECT /custom", f)
				}
				w.expect(text(`42/custom,["auth",{}]`))
				w.send(text("41/custom,"), text(`42["message","to main"]`))
				w.expect(text(`42["message-back","to main"]`))
				return
			}
			w.expect(tt.want...)
		})
	}
	t.Run("disconnect from main then connect again", func(t *testing.T) {
		w, sid := connectMain(t, ts)
		w.send(text("41"))
		// The library (v3.0.6) handles a CONNECT that races the DISCONNECT before it by closing the
		// connection; wait until the socket has left before connecting again.
		waitFor(t, "the socket to leave /", func() bool {
			return ts.IO().Namespace("/").Socket(sid) == nil
		})
		if w.isClosed() {
			t.Fatal("DISCONNECT closed the connection")
		}
		w.send(text("40"))
		if f := w.next(); !strings.HasPrefix(f.data, "40{") {
			t.Fatalf("got %v, want CONNECT after reconnecting", f)
		}
		w.expect(text(`42["auth",{}]`))
	})
}

// connectMain opens a websocket session on the conformance server, connects to "/" and returns
// the socket's id.
func connectMain(t *testing.T, ts *testServer) (*rawWS, string) {
	t.Helper()
	w, _ := openSocketIO(t, ts.URL, true)
	w.send(text("40"))
	f := w.next()
	var connect struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(f.data, "40")), &connect); err != nil || connect.SID == "" {
		t.Fatalf("got %v, want CONNECT", f)
	}
	w.expect(text(`42["auth",{}]`))
	return w, connect.SID
}

func TestProductEventOverRawWebsocket(t *testing.T) {
	ts := startServer(t, testConfig())
	w, _ := openSocketIO(t, ts.URL, true)
	w.send(text("40"))
	var connect struct {
		SID string `json:"sid"`
	}
	f := w.next()
	if err := json.Unmarshal([]byte(strings.TrimPrefix(f.data, "40")), &connect); err != nil || connect.SID == "" {
		t.Fatalf("CONNECT %v: %v", f, err)
	}
	w.send(text(`4217["subscribe",{"rooms":["news"]}]`))
	w.expect(text(`4317[{"data":{"rooms":["news","user:` + connect.SID + `"]}}]`))
}
