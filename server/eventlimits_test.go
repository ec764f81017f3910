package server

import (
	"fmt"
	"strings"
	"testing"
)

// TestRoomRequestValidatedBeforeTheRoomLimit: a subscribe or chat:join the handler refuses as
// bad_request gets bad_request, not the rooms-per-socket limit's forbidden (issue 18: 3,000 rooms
// answered forbidden), with the limit reached or not; a valid request over the limit is still
// forbidden.
func TestRoomRequestValidatedBeforeTheRoomLimit(t *testing.T) {
	t.Run("3,000 rooms, the library's Go client", func(t *testing.T) {
		ts := startServer(t, testConfig()) // the default limit: 100 rooms
		c := dial(t, ts.URL, dialOptions{})
		rooms := make([]any, 3000)
		for i := range rooms {
			rooms[i] = fmt.Sprintf("r%d", i)
		}
		got := call(t, c, "subscribe", map[string]any{"rooms": rooms})
		if code := errorCode(got); code != "bad_request" {
			t.Fatalf("subscribe with 3,000 rooms: %v, want bad_request", got)
		}
	})

	cfg := testConfig()
	cfg.Limits.MaxRoomsPerSocket = 3
	ts := startServer(t, cfg)
	many := make([]string, 51)
	for i := range many {
		many[i] = fmt.Sprintf("%q", fmt.Sprintf("m%d", i))
	}
	steps := []struct {
		nsp, event, args, code string
	}{
		{"/", "subscribe", `{"rooms":[` + strings.Join(many[:4], ",") + `]}`, "forbidden"}, // valid, over the limit
		{"/", "subscribe", `{"rooms":[` + strings.Join(many, ",") + `]}`, "bad_request"},   // 51: too many for one request
		{"/", "subscribe", `{"rooms":["a","b","c"]}`, ""},
		// The limit is reached: each of these would be forbidden if the limit came first.
		{"/", "subscribe", `{"rooms":["d","bad room!"]}`, "bad_request"},
		{"/", "subscribe", `{"rooms":["d",7]}`, "bad_request"},
		{"/", "subscribe", `{"rooms":[]}`, "bad_request"},
		{"/", "subscribe", `{"rooms":"d"}`, "bad_request"},
		{"/", "subscribe", `{"rooms":["d"]}`, "forbidden"},
		{"/chat", "chat:join", `{"room":"x"}`, ""},
		{"/chat", "chat:join", `{"room":"y"}`, ""},
		{"/chat", "chat:join", `{"room":"z"}`, ""},
		{"/chat", "chat:join", `{"room":"not a room"}`, "bad_request"},
		{"/chat", "chat:join", `{"room":""}`, "bad_request"},
		{"/chat", "chat:join", `{"room":"w"}`, "forbidden"},
	}
	clients := map[string]*rawClient{"/": mustRawDial(t, ts, "/"), "/chat": mustRawDial(t, ts, "/chat")}
	for i, s := range steps {
		if got := errorCode(clients[s.nsp].call(t, s.nsp, s.event, s.args, i)); got != s.code {
			t.Fatalf("step %d %s %s: code %q, want %q", i, s.event, s.args, got, s.code)
		}
	}
}
