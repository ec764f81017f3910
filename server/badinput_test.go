package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Bad input gets the protocol's answer (an error packet, a 400, a closed session), never a
// panic, and never disturbs anyone else: every case runs while a healthy client is connected
// and checks that it still gets its acks afterwards.

const badInputMaxPayload = 1000

func badInputServer(t *testing.T) *testServer {
	cfg := testConfig()
	cfg.MaxPayload = badInputMaxPayload
	return startServer(t, cfg)
}

// healthyClient connects a raw websocket client to "/" and returns a check that it still
// round-trips. (Raw rather than the library's Go client, whose connect is flaky under -race.)
func healthyClient(t *testing.T, ts *testServer) func() {
	t.Helper()
	w := connectRoot(t, ts)
	return func() {
		t.Helper()
		if w.isClosed() {
			t.Fatal("healthy client: connection closed")
		}
		roundTrip(t, w)
	}
}

// connectRoot opens a raw websocket session on the product server and connects to "/".
func connectRoot(t *testing.T, ts *testServer) *rawWS {
	t.Helper()
	w, _ := openSocketIO(t, ts.URL, true)
	w.send(text("40"))
	if f := w.next(); !strings.HasPrefix(f.data, "40{") {
		t.Fatalf("got %v, want CONNECT", f)
	}
	return w
}

// roundTrip checks that w's socket on "/" still answers a request.
func roundTrip(t *testing.T, w *rawWS) {
	t.Helper()
	w.send(text(`4299["subscribe",{"rooms":["ok"]}]`))
	if f := w.next(); !strings.HasPrefix(f.data, `4399[{"data":{"rooms":["ok"`) {
		t.Fatalf("got %v, want the subscribe ack", f)
	}
}

func TestMalformedPackets(t *testing.T) {
	ts := badInputServer(t)
	tests := []struct {
		name string
		send []frame
	}{
		{"engine.io packet type unknown", []frame{text("abc")}},
		{"engine.io empty text frame", []frame{text("")}},
		{"socket.io packet type unknown", []frame{text("4abc")}},
		{"event payload not an array", []frame{text("42{}")}},
		{"event payload truncated JSON", []frame{text(`42["subscribe",`)}},
		{"event name an object", []frame{text(`42[{},1]`)}},
		{"event without a name", []frame{text(`42[]`)}},
		{"reserved event name", []frame{text(`42["disconnect"]`)}},
		{"ack id not a number", []frame{text(`42abc["subscribe",{}]`)}},
		{"attachment count not a number", []frame{text(`45x-["subscribe",{"_placeholder":true,"num":0}]`), binary(1)}},
		{"attachment placeholder out of range", []frame{text(`451-["subscribe",{"_placeholder":true,"num":5}]`), binary(1)}},
		{"binary frame with no packet waiting for it", []frame{binary(1, 2, 3)}},
		{"event to a namespace not joined", []frame{text(`42/nowhere,["subscribe",{}]`)}},
		{"CONNECT payload not an object", []frame{text(`40/other,"token"`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			healthy := healthyClient(t, ts)
			w := connectRoot(t, ts)
			w.send(tt.send[0])
			for _, f := range tt.send[1:] {
				// The server may have closed at the first frame: a write refused then is fine.
				kind := websocket.TextMessage
				if f.binary {
					kind = websocket.BinaryMessage
				}
				_ = w.write(kind, f.data)
			}
			w.expectClosed()
			healthy()
		})
	}
	for name, payload := range map[string]string{"does not decode": "abc", "empty": "", "valid then not": "40\x1eabc"} {
		t.Run("polling payload "+name, func(t *testing.T) {
			healthy := healthyClient(t, ts)
			p, _ := openPolling(t, ts.URL, "/socket.io/")
			p.post(payload)
			p.waitGone()
			healthy()
		})
	}
}

func TestBadEvents(t *testing.T) {
	ts := badInputServer(t)
	tests := []struct {
		name string
		send string
		want string // prefix of the answer; empty: no answer, the connection keeps working
	}{
		{"payload of the wrong type gets an error ack", `4210["subscribe",42]`, `4310[{"error":{"code":"bad_request"`},
		{"payload with a bad room gets an error ack", `4211["subscribe",{"rooms":[""]}]`, `4311[{"error":{"code":"bad_request"`},
		{"payload missing gets an error ack", `4212["subscribe"]`, `4312[{"error":{"code":"bad_request"`},
		{"unknown event is ignored", `4213["no-such-event",{}]`, ""},
		{"unknown namespace gets connect_error", `40/nope,`, `44/nope,{"message":"Invalid namespace"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			healthy := healthyClient(t, ts)
			w := connectRoot(t, ts)
			w.send(text(tt.send))
			if tt.want != "" {
				if f := w.next(); !strings.HasPrefix(f.data, tt.want) {
					t.Fatalf("got %v, want %s…", f, tt.want)
				}
			}
			roundTrip(t, w) // same connection, still served
			healthy()
		})
	}
}

func TestOversizedMessages(t *testing.T) {
	ts := badInputServer(t)
	big := `42["subscribe",{"rooms":["` + strings.Repeat("x", badInputMaxPayload) + `"]}]`
	t.Run("websocket message over max-payload closes the connection", func(t *testing.T) {
		healthy := healthyClient(t, ts)
		w := connectRoot(t, ts)
		w.send(text(big))
		w.expectClosed()
		healthy()
	})
	t.Run("websocket message at max-payload is served", func(t *testing.T) {
		w := connectRoot(t, ts)
		room := strings.Repeat("r", 100)
		msg := `4221["subscribe",{"rooms":["` + room + `"]}]`
		msg = msg[:len(msg)-2] + strings.Repeat(" ", badInputMaxPayload-len(msg)) + "}]" // JSON allows the padding
		eq(t, len(msg), badInputMaxPayload)
		w.send(text(msg))
		if f := w.next(); !strings.HasPrefix(f.data, `4321[{"data":{"rooms":["`+room) {
			t.Fatalf("got %v, want the ack", f)
		}
	})
	t.Run("polling body over max-payload gets 413", func(t *testing.T) {
		healthy := healthyClient(t, ts)
		p, _ := openPolling(t, ts.URL, "/socket.io/")
		status, _ := p.post(big)
		eq(t, status, http.StatusRequestEntityTooLarge)
		healthy()
	})
	t.Run("chunked polling body over max-payload gets 413", func(t *testing.T) {
		healthy := healthyClient(t, ts)
		p, _ := openPolling(t, ts.URL, "/socket.io/")
		req, err := http.NewRequest(http.MethodPost, p.url, struct{ *strings.Reader }{strings.NewReader(big)}) // hides the length
		if err != nil {
			t.Fatal(err)
		}
		res, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		eq(t, req.ContentLength, int64(0)) // sent chunked
		eq(t, res.StatusCode, http.StatusRequestEntityTooLarge)
		healthy()
	})
	t.Run("chunked polling body under max-payload is served", func(t *testing.T) {
		p, _ := openPolling(t, ts.URL, "/socket.io/")
		req, _ := http.NewRequest(http.MethodPost, p.url, struct{ *strings.Reader }{strings.NewReader("40")})
		res, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		eq(t, res.StatusCode, http.StatusOK)
		status, body := p.get()
		eq(t, status, http.StatusOK)
		if !strings.HasPrefix(body, "40{") {
			t.Fatalf("got %q, want CONNECT", body)
		}
	})
}

func TestBadQueryParameters(t *testing.T) {
	ts := badInputServer(t)
	tests := []struct {
		name   string
		method string
		query  string
		code   int    // Engine.IO error code in the 400 body
		msg    string // and its message
	}{
		// Code 5, as Node's engine.io (UNSUPPORTED_PROTOCOL_VERSION).
		{"EIO missing", "GET", "transport=polling", 5, "Unsupported protocol version"},
		{"EIO not a number", "GET", "EIO=abc&transport=polling", 5, "Unsupported protocol version"},
		{"EIO 3 (not enabled)", "GET", "EIO=3&transport=polling", 5, "Unsupported protocol version"},
		{"EIO from the future", "GET", "EIO=5&transport=polling", 5, "Unsupported protocol version"},
		{"transport missing", "GET", "EIO=4", 0, "Transport unknown"},
		{"transport unknown", "GET", "EIO=4&transport=abc", 0, "Transport unknown"},
		{"sid unknown on GET", "GET", "EIO=4&transport=polling&sid=nope", 1, "Session ID unknown"},
		{"sid unknown on POST", "POST", "EIO=4&transport=polling&sid=nope", 1, "Session ID unknown"},
		{"handshake with POST", "POST", "EIO=4&transport=polling", 2, "Bad handshake method"},
		{"handshake with PUT", "PUT", "EIO=4&transport=polling", 2, "Bad handshake method"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			healthy := healthyClient(t, ts)
			status, body := httpDo(t, tt.method, ts.URL+"/socket.io/?"+tt.query, "")
			eq(t, status, http.StatusBadRequest)
			var got struct {
				Code    *int   `json:"code"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal([]byte(body), &got); err != nil || got.Code == nil || got.Message == "" {
				t.Fatalf("body %q: want {code, message}", body)
			}
			eq(t, *got.Code, tt.code)
			eq(t, got.Message, tt.msg)
			healthy()
		})
	}
	for _, query := range []string{"transport=websocket", "EIO=abc&transport=websocket", "EIO=4", "EIO=4&transport=abc", "EIO=4&transport=websocket&sid=nope"} {
		t.Run("websocket "+query, func(t *testing.T) {
			healthy := healthyClient(t, ts)
			conn, res, err := websocket.DefaultDialer.Dial(wsURL(ts.URL, "/socket.io/?"+query), nil)
			if err != nil { // refused before the upgrade
				if res == nil || res.StatusCode != http.StatusBadRequest {
					t.Fatalf("dial: %v, want HTTP 400", err)
				}
			} else { // or upgraded and closed without an OPEN packet
				defer conn.Close()
				_ = conn.SetReadDeadline(time.Now().Add(waitTimeout))
				_, msg, err := conn.ReadMessage()
				var ne net.Error
				if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
					t.Fatalf("got %q (%v), want the connection closed", msg, err)
				}
			}
			healthy()
		})
	}
}

func TestAbortedRequests(t *testing.T) {
	ts := badInputServer(t)
	addr := strings.TrimPrefix(ts.URL, "http://")
	sessionGone := func(t *testing.T, sid string) {
		t.Helper()
		waitFor(t, "the session to close", func() bool {
			return ts.IO().Engine().Conn(sid) == nil
		})
	}
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"long-polling GET cancelled", func(t *testing.T) {
			p, _ := openPolling(t, ts.URL, "/socket.io/")
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan struct{})
			go func() {
				defer close(done)
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
				if res, err := httpClient.Do(req); err == nil {
					res.Body.Close()
				}
			}()
			waitForPendingPoll(t, ts, "/socket.io/", p)
			cancel()
			<-done
			sessionGone(t, p.sid)
			eq(t, first(p.get()), http.StatusBadRequest)
		}},
		{"POST cut in the middle of its body", func(t *testing.T) {
			p, _ := openPolling(t, ts.URL, "/socket.io/")
			rawRequest(t, addr, fmt.Sprintf("POST /socket.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n40", p.sid))
			sessionGone(t, p.sid)
		}},
		{"chunked POST cut in the middle of its body", func(t *testing.T) {
			p, _ := openPolling(t, ts.URL, "/socket.io/")
			rawRequest(t, addr, fmt.Sprintf("POST /socket.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n40", p.sid))
			sessionGone(t, p.sid)
		}},
		{"websocket dropped without a close frame", func(t *testing.T) {
			w, hs := openSocketIO(t, ts.URL, true)
			w.send(text("40"))
			w.next()
			_ = w.conn.UnderlyingConn().Close()
			sessionGone(t, hs.SID)
		}},
		{"websocket handshake cut halfway", func(t *testing.T) {
			rawRequest(t, addr, "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			healthy := healthyClient(t, ts)
			tt.run(t)
			healthy()
		})
	}
}

// rawRequest writes request on a fresh TCP connection and hangs up without reading.
func rawRequest(t *testing.T, addr, request string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte(request)); err != nil {
		t.Fatal(err)
	}
	_ = conn.Close()
}
