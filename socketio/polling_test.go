package socketio

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// pollClient is a long-polling session, for what the websocket client does not show: the
// handshake request's headers and query, and binary messages as "b" + base64.
type pollClient struct {
	t   *testing.T
	url string // with the sid
}

func (ts *testServer) poll(query string, header http.Header) *pollClient {
	ts.t.Helper()
	req, _ := http.NewRequest("GET", ts.url+"/socket.io/?EIO=4&transport=polling&"+query, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var open struct{ SID string }
	if res.StatusCode != 200 || len(b) == 0 || b[0] != '0' || json.Unmarshal(b[1:], &open) != nil {
		ts.t.Fatalf("handshake: %d %q", res.StatusCode, b)
	}
	return &pollClient{t: ts.t, url: ts.url + "/socket.io/?EIO=4&transport=polling&sid=" + open.SID}
}

func (c *pollClient) post(packets ...string) {
	c.t.Helper()
	res, err := http.Post(c.url, "text/plain;charset=UTF-8", strings.NewReader(strings.Join(packets, "\x1e")))
	if err != nil {
		c.t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(b) != "ok" {
		c.t.Fatalf("POST: %d %q", res.StatusCode, b)
	}
}

// get polls once and returns the packets.
func (c *pollClient) get() []string {
	c.t.Helper()
	res, err := http.Get(c.url)
	if err != nil {
		c.t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		c.t.Fatalf("GET: %d %q", res.StatusCode, b)
	}
	return strings.Split(string(b), "\x1e")
}

func TestPollingHandshakeAndParsers(t *testing.T) {
	var rec *recorder
	ts := startServer(t, Config{Headers: []string{"Authorization", "X-Custom"}}, func(srv *Server) {
		rec = record(of(t, srv, "/"))
	})
	var clients []*pollClient
	t.Run("default parser, handshake fields", func(t *testing.T) {
		c := ts.poll("room=r1&x=%20y", http.Header{"Authorization": {"Bearer t"}, "X-Custom": {"v"}, "X-Other": {"dropped"}, "Origin": {"https://app.example"}})
		clients = append(clients, c)
		c.post(`40{"token":"abc"}`)
		if got := c.get(); len(got) != 1 || !strings.HasPrefix(got[0], `40{"sid":"`) {
			t.Fatalf("got %q", got)
		}
		s := receive(t, "OnConnection", rec.connected)
		h := s.Handshake()
		if s.Header("authorization") != "Bearer t" || h.Headers["x-custom"] != "v" || h.Headers["x-other"] != "" || len(h.Headers) != 2 {
			t.Fatalf("headers %v", h.Headers)
		}
		if h.Query.Get("room") != "r1" || h.Query.Get("x") != " y" || h.Address != "127.0.0.1" || h.Auth["token"] != "abc" {
			t.Fatalf("handshake %+v", h)
		}
		if s.Transport() != "polling" || h.Time.IsZero() || !strings.Contains(h.URL, "room=r1") {
			t.Fatalf("transport %s, handshake %+v", s.Transport(), h)
		}
		// A binary event: the text packet and its attachment as b + base64.
		c.post(`451-["up",{"_placeholder":true,"num":0}]`, "b"+base64.StdEncoding.EncodeToString([]byte{1, 2, 3}))
		ev := receive(t, "the event", rec.events)
		if v, _ := ev.Value(0); string(v.([]byte)) != "\x01\x02\x03" {
			t.Fatalf("attachment %v", v)
		}
		if err := s.Emit("down", []byte{4, 5}); err != nil {
			t.Fatal(err)
		}
		got := c.get()
		if len(got) != 2 || got[0] != `451-["down",{"_placeholder":true,"num":0}]` || got[1] != "b"+base64.StdEncoding.EncodeToString([]byte{4, 5}) {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("msgpack over long-polling", func(t *testing.T) {
		c := ts.poll("", nil)
		clients = append(clients, c)
		c.post("b" + base64.StdEncoding.EncodeToString(mustHex(t, hexConnect)))
		got := c.get()
		if len(got) != 1 || !strings.HasPrefix(got[0], "b") {
			t.Fatalf("got %q", got)
		}
		raw, err := base64.StdEncoding.DecodeString(got[0][1:])
		if err != nil {
			t.Fatal(err)
		}
		if v, err := DecodeMsgpack(raw); err != nil || v.(map[string]any)["type"] != 0.0 {
			t.Fatalf("CONNECT reply %v %v", v, err)
		}
		receive(t, "OnConnection", rec.connected)
	})
	// Server.Close waits for each session's close packet to be polled.
	done := make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		ts.srv.Close(ctx)
		close(done)
	}()
	for _, c := range clients {
		if got := c.get(); got[len(got)-1] != "1" {
			t.Fatalf("last poll %q, want the close packet", got)
		}
	}
	receive(t, "Close", done)
}
