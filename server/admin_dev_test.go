package server

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// isTimestamp reports whether v is a timestamp as Node's JSON sends a Date.
func isTimestamp(v any) bool {
	s, ok := v.(string)
	if !ok {
		return false
	}
	ts, err := time.Parse("2006-01-02T15:04:05.000Z", s)
	return err == nil && time.Since(ts) < time.Minute
}

// Development mode streams a socket's life on the product namespaces to the admin UI, in the
// order and with the arguments @socket.io/admin-ui 0.5 reads.
func TestAdminDevelopmentStreams(t *testing.T) {
	ts := startServer(t, adminTestConfig(AdminModeDevelopment))
	admin := mustAdmin(t, ts)
	admin.await("all_sockets", nil)

	c := mustRawDial(t, ts, "/")
	var connected []any
	t.Run("connect: its own room, then socket_connected", func(t *testing.T) {
		joined := admin.await("room_joined", func(args []any) bool { return len(args) == 4 && args[2] == c.sid && args[1] == c.sid })
		if joined[0] != "/" || !isTimestamp(joined[3]) {
			t.Fatalf("room_joined %v", joined)
		}
		connected = admin.await("socket_connected", func(args []any) bool { return field(args[0], "id") == c.sid })
		s := connected[0]
		if field(s, "clientId") != c.engine[:12] || field(s, "transport") != "websocket" || field(s, "nsp") != "/" {
			t.Fatalf("socket_connected %v", s)
		}
		if !isTimestamp(connected[1]) {
			t.Fatalf("socket_connected timestamp %v", connected[1])
		}
		if field(s, "data", "user", "id") != c.sid {
			t.Fatalf("data %v, want the anonymous identity", field(s, "data"))
		}
		rooms, _ := field(s, "rooms").([]any)
		if !slices.Equal(rooms, []any{c.sid, "user:" + c.sid}) {
			t.Fatalf("rooms %v", rooms)
		}
		if field(s, "handshake", "auth") != nil {
			t.Fatalf("handshake carries auth: %v", field(s, "handshake"))
		}
		for _, k := range []string{"address", "headers", "query", "issued", "secure", "time", "url", "xdomain"} {
			if field(s, "handshake", k) == nil {
				t.Errorf("handshake lacks %s: %v", k, field(s, "handshake"))
			}
		}
	})
	t.Run("event_received", func(t *testing.T) {
		if err := c.emit("/", "subscribe", `{"rooms":["news"]}`, 5); err != nil {
			t.Fatal(err)
		}
		got := admin.await("event_received", func(args []any) bool { return len(args) == 4 && args[1] == c.sid })
		want := []any{"subscribe", map[string]any{"rooms": []any{"news"}}}
		if got[0] != "/" || !jsonEqualValues(got[2], want) || !isTimestamp(got[3]) {
			t.Fatalf("event_received %v, want / %s %v <ts>", got, c.sid, want)
		}
		joined := admin.await("room_joined", func(args []any) bool { return args[1] == "news" })
		if joined[2] != c.sid {
			t.Fatalf("room_joined %v", joined)
		}
	})
	t.Run("event_sent", func(t *testing.T) {
		expectStatus(t, post("/emit", `{"rooms":["news"],"event":"headline","data":{"n":1}}`).do(t, ts.URL), 202)
		got := admin.await("event_sent", func(args []any) bool { return len(args) == 4 && args[1] == c.sid })
		sent, _ := got[2].([]any)
		if got[0] != "/" || len(sent) < 2 || sent[0] != "headline" || !jsonEqualValues(sent[1], map[string]any{"n": 1.0}) || !isTimestamp(got[3]) {
			t.Fatalf("event_sent %v", got)
		}
	})
	t.Run("room_left", func(t *testing.T) {
		expectStatus(t, post("/sockets/leave", `{"rooms":["`+c.sid+`"],"leave":["news"]}`).do(t, ts.URL), 200)
		left := admin.await("room_left", func(args []any) bool { return args[1] == "news" })
		if left[0] != "/" || left[2] != c.sid || !isTimestamp(left[3]) {
			t.Fatalf("room_left %v", left)
		}
	})
	t.Run("socket_updated data", func(t *testing.T) {
		ts.IO().Namespace("/").Socket(c.sid).SetData(map[string]any{"k": "v"})
		got := admin.await("socket_updated", func(args []any) bool { return field(args[0], "id") == c.sid })
		if !jsonEqualValues(got[0], map[string]any{"id": c.sid, "nsp": "/", "data": map[string]any{"k": "v"}}) {
			t.Fatalf("socket_updated %v", got[0])
		}
	})
	t.Run("transport close", func(t *testing.T) {
		c.close()
		got := admin.await("socket_disconnected", func(args []any) bool { return args[1] == c.sid })
		if got[2] != "transport close" && got[2] != "transport error" {
			t.Fatalf("socket_disconnected %v", got)
		}
	})

	t.Run("polling upgraded: socket_updated transport", func(t *testing.T) {
		hdr := http.Header{}
		hdr.Set("Authorization", "Bearer not-for-the-admin-ui")
		p := dial(t, ts.URL, dialOptions{transports: transportSets["polling-upgrade"], header: hdr})
		s := admin.await("socket_connected", func(args []any) bool { return field(args[0], "id") == p.Id() })[0]
		if got := field(s, "handshake", "headers", "authorization"); got != redactedHeader {
			t.Fatalf("authorization header shown as %v", got)
		}
		if strings.Contains(mustJSON(t, s), "not-for-the-admin-ui") {
			t.Fatalf("the token shows: %v", s)
		}
		t.Logf("transport at connect: %v", field(s, "transport"))
		if tr := field(s, "transport"); tr == "polling" {
			got := admin.await("socket_updated", func(args []any) bool { return field(args[0], "id") == p.Id() })
			if !jsonEqualValues(got[0], map[string]any{"id": p.Id(), "nsp": "/", "transport": "websocket"}) {
				t.Fatalf("socket_updated %v", got[0])
			}
		}
	})
	t.Run("all_sockets for a new admin: the product's sockets, no admin one", func(t *testing.T) {
		product := mustRawDial(t, ts, "/chat")
		second := mustAdmin(t, ts)
		all := second.await("all_sockets", nil)[0].([]any)
		if len(all) != 1 || field(all[0], "nsp") != "/chat" || field(all[0], "id") != product.sid {
			t.Fatalf("all_sockets %v, want the one product socket", all)
		}
	})
}

// The order of a disconnection as the UI sees it: socket_disconnected with its reason, then
// room_left for the socket's own room and each of its rooms.
func TestAdminDisconnectOrder(t *testing.T) {
	ts := startServer(t, adminTestConfig(AdminModeDevelopment))
	admin := mustAdmin(t, ts)
	admin.await("all_sockets", nil)
	c := mustRawDial(t, ts, "/")
	admin.await("socket_connected", func(args []any) bool { return field(args[0], "id") == c.sid })
	admin.emit("_disconnect", "/", false, c.sid)
	var seq []string
	for len(seq) < 3 {
		ev := admin.next()
		switch ev.name {
		case "socket_disconnected":
			if ev.args[0] != "/" || ev.args[1] != c.sid || ev.args[2] != "server namespace disconnect" || !isTimestamp(ev.args[3]) {
				t.Fatalf("socket_disconnected %v", ev.args)
			}
			seq = append(seq, ev.name)
		case "room_left":
			if ev.args[2] == c.sid {
				seq = append(seq, ev.name+" "+ev.args[1].(string))
			}
		}
	}
	want := []string{"socket_disconnected", "room_left " + c.sid, "room_left user:" + c.sid}
	if !slices.Equal(seq, want) {
		t.Fatalf("order %v, want %v", seq, want)
	}
}

// jsonEqualValues compares two decoded JSON values through their encodings.
func jsonEqualValues(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}
