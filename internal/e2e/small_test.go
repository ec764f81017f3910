package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// postPolling sends a long-polling POST and gives its status and body.
func postPolling(t testing.TB, n *node, sid, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, n.URL+"/socket.io/?EIO=4&transport=polling&sid="+sid, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	res, err := plainClient.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestMalformedPollingPost (issue 22 item 7): a long-polling POST whose payload does not decode
// is a 400 that says why (Engine.IO's {"code", "message"}), not a 429 with an empty body; a
// well-formed one on a session of its own is still 200 "ok".
func TestMalformedPollingPost(t *testing.T) {
	n := startNode(t)
	if status, body := postPolling(t, n, pollingSession(t, n), "40"); status != http.StatusOK || body != "ok" {
		t.Fatalf("a well-formed POST: %d %q, want 200 ok", status, body)
	}
	for _, tc := range []struct{ name, body string }{
		{"not a packet", "garbage"},
		{"empty", ""},
		{"unknown packet type", "9x"},
		{"bad separator run", "40\x1e\x1e40"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := postPolling(t, n, pollingSession(t, n), tc.body)
			var e struct {
				Code    *int
				Message string
			}
			if status != http.StatusBadRequest || json.Unmarshal([]byte(body), &e) != nil || e.Code == nil || e.Message == "" {
				t.Fatalf("got %d %q, want 400 with {code, message}", status, body)
			}
		})
	}
}

// hs256 signs a JWT with header and claims by hand (a library would refuse to make a bad one).
func hs256(secret string, header, claims map[string]any) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	unsigned := enc(header) + "." + enc(claims)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(unsigned))
	return unsigned + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// TestJWTCritRefused (issue 22 item 7): a token whose header lists a crit extension is refused
// as token_invalid (RFC 7515 §4.1.11: Switchboard understands no extension); the same token
// without crit connects.
func TestJWTCritRefused(t *testing.T) {
	const secret = "e2e-secret"
	n := startNode(t, "--jwt-secret", secret)
	claims := map[string]any{"sub": "u1", "exp": time.Now().Add(time.Hour).Unix()}
	for _, tc := range []struct {
		name   string
		header map[string]any
		ok     bool
	}{
		{"no crit", map[string]any{"alg": "HS256", "typ": "JWT"}, true},
		{"crit with its parameter", map[string]any{"alg": "HS256", "typ": "JWT", "crit": []string{"x-policy"}, "x-policy": 1}, false},
		{"crit naming exp", map[string]any{"alg": "HS256", "crit": []string{"exp"}, "exp": 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := mustDial(t, n).connect("/", map[string]any{"token": hs256(secret, tc.header, claims)})
			if err != nil {
				t.Fatal(err)
			}
			if tc.ok != r.OK || (!tc.ok && (r.Message != "unauthorized" || r.Data["code"] != "token_invalid")) {
				t.Fatalf("connect: %+v, want ok %v (else unauthorized, token_invalid)", r, tc.ok)
			}
		})
	}
}

// TestSubscribeTooManyRooms (issue 18 item 7): a subscribe of 3,000 rooms is a bad_request (the
// list is longer than 50), not forbidden by the rooms-per-socket limit, which ran first.
func TestSubscribeTooManyRooms(t *testing.T) {
	n := startNode(t)
	c := mustDial(t, n)
	c.mustConnect("/", nil)
	rooms := make([]string, 3000)
	for i := range rooms {
		rooms[i] = fmt.Sprintf("r%d", i)
	}
	r, err := c.call("/", "subscribe", map[string]any{"rooms": rooms})
	if err != nil || r.Error == nil || r.Error.Code != "bad_request" {
		t.Fatalf("subscribe with 3,000 rooms: %+v %v, want bad_request", r.Error, err)
	}
	if data := c.mustCall("/", "subscribe", map[string]any{"rooms": []string{"r1"}}); !strings.Contains(string(data), `"r1"`) {
		t.Fatalf("a subscribe after it: %s", data)
	}
}

// TestStatsInConformanceMode (issue 18 item 7): GET /api/v1/stats answers in --conformance mode
// too (it dereferenced a namespace the mode does not serve).
func TestStatsInConformanceMode(t *testing.T) {
	n := startNode(t, "--conformance", "--api-keys", apiKey)
	mustDial(t, n).mustConnect("/", nil)
	req, _ := http.NewRequest(http.MethodGet, n.URL+"/api/v1/stats", nil)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	res, err := plainClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var stats struct {
		Connections *int
		Namespaces  map[string]struct{ Sockets int }
		Nodes       int
		Version     string
	}
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || json.Unmarshal(b, &stats) != nil || stats.Connections == nil || *stats.Connections != 1 || stats.Nodes != 1 || stats.Namespaces["/"].Sockets != 1 {
		t.Fatalf("GET /api/v1/stats: %d %s, want 200 with one connection, one socket in /, one node", res.StatusCode, b)
	}
}

// TestAckMetricsFromAPIEmit (issue 18 item 7): POST /api/v1/emit with ackTimeoutMs records the
// acks it collected in switchboard_client_acks_total and its timeout in
// switchboard_ack_timeouts_total (neither was ever recorded).
func TestAckMetricsFromAPIEmit(t *testing.T) {
	n := startNode(t, "--api-keys", apiKey)
	acker, silent := mustDial(t, n), mustDial(t, n)
	acker.OnEvent = func(p packet) {
		if p.ID >= 0 {
			_ = acker.send(fmt.Sprintf("3%d[{\"seen\":true}]", p.ID))
		}
	}
	acker.mustConnect("/", nil)
	silent.mustConnect("/", nil)
	a := n.mustPost("/emit", `{"event":"ask","data":{"q":1},"ackTimeoutMs":300}`)
	if a.Status != http.StatusOK || strings.TrimSpace(a.Body) != `{"acks":[{"seen":true}],"timedOut":true}` {
		t.Fatalf("emit with ackTimeoutMs: %d %s", a.Status, a.Body)
	}
	if got := n.metric("switchboard_client_acks_total", `namespace="/"`); got != 1 {
		t.Errorf("switchboard_client_acks_total{namespace=\"/\"} = %v, want 1", got)
	}
	if got := n.metric("switchboard_ack_timeouts_total", `namespace="/"`); got != 1 {
		t.Errorf("switchboard_ack_timeouts_total{namespace=\"/\"} = %v, want 1", got)
	}
}

// TestAPIDuplicateKeys (issue 22 item 4): a field given twice at the top of an API body is a 400
// naming it, and reaches no client: {"rooms":["r1"],"rooms":[]} was taken as rooms: [], every
// socket of the namespace.
func TestAPIDuplicateKeys(t *testing.T) {
	n := startNode(t, "--api-keys", apiKey)
	other := mustDial(t, n)
	other.mustConnect("/", nil)
	other.mustCall("/", "subscribe", map[string]any{"rooms": []string{"r2"}})
	for _, tc := range []struct{ name, body, field string }{
		{"rooms", `{"event":"leak","rooms":["r1"],"rooms":[]}`, "rooms"},
		{"except", `{"event":"leak","except":["r2"],"except":[]}`, "except"},
		{"namespace", `{"event":"leak","namespace":"/chat","namespace":"/"}`, "namespace"},
		{"event", `{"event":"ok","event":"leak"}`, "event"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := n.mustPost("/emit", tc.body)
			var e struct {
				Error struct{ Code, Message string }
			}
			if a.Status != http.StatusBadRequest || json.Unmarshal([]byte(a.Body), &e) != nil || e.Error.Code != "bad_request" || !strings.Contains(e.Error.Message, tc.field) {
				t.Fatalf("%s: %d %s, want 400 bad_request naming %q", tc.body, a.Status, a.Body, tc.field)
			}
		})
	}
	// What the socket gets next is the marker: none of the refused emits reached it.
	if a := n.mustPost("/emit", `{"event":"marker"}`); a.Status != http.StatusAccepted {
		t.Fatalf("marker emit: %d %s", a.Status, a.Body)
	}
	p, err := other.nextEvent(waitTimeout)
	if name, _ := eventArgs(p); err != nil || name != "marker" {
		t.Fatalf("the socket in r2 got %s (%v) first, want the marker", p.Data, err)
	}
}
