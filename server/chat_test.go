package server

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	eio "github.com/zishang520/socket.io/clients/engine/v3"
	sio "github.com/zishang520/socket.io/clients/socket/v3"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/switchboard/switchboard/namespaces"
	"github.com/switchboard/switchboard/socketio"
)

// event is one server event a test client received.
type event struct {
	name string
	data map[string]any
}

// inbox records, in arrival order, the named events a client receives.
func inbox(c *sio.Socket, names ...string) <-chan event {
	ch := make(chan event, 4096)
	for _, name := range names {
		_ = c.On(types.EventName(name), func(args ...any) {
			m, _ := args[0].(map[string]any)
			ch <- event{name, m}
		})
	}
	return ch
}

// next waits for the next recorded event and checks its name.
func next(t *testing.T, ch <-chan event, name string) map[string]any {
	t.Helper()
	ev := receive(t, name, ch)
	if ev.name != name {
		t.Fatalf("next event = %s %v, want %s", ev.name, ev.data, name)
	}
	return ev.data
}

// data returns an ack's data, failing on an error ack.
func data(t *testing.T, ack map[string]any) map[string]any {
	t.Helper()
	d, ok := ack["data"].(map[string]any)
	if !ok || len(ack) != 1 {
		t.Fatalf("ack = %v, want only data", ack)
	}
	return d
}

// errCode returns an error ack's code, failing on a data ack.
func errCode(t *testing.T, ack map[string]any) string {
	t.Helper()
	e, ok := ack["error"].(map[string]any)
	if !ok || len(ack) != 1 {
		t.Fatalf("ack = %v, want only error", ack)
	}
	if msg, _ := e["message"].(string); msg == "" {
		t.Fatalf("error ack without a message: %v", ack)
	}
	code, _ := e["code"].(string)
	return code
}

func userOf(v any) (id, name string) {
	m, _ := v.(map[string]any)
	id, _ = m["id"].(string)
	name, _ = m["name"].(string)
	return id, name
}

// sharedUsers makes /chat sockets that send auth.uid belong to that user, as a token's sub will:
// several sockets, one user.
func sharedUsers(ts *testServer) {
	ts.IO().Namespace("/chat").Use(func(s *socketio.Socket) error {
		if uid, ok := s.Handshake().Auth["uid"].(string); ok {
			namespaces.SetIdentity(s, namespaces.Identity{User: namespaces.User{ID: uid, Name: uid}})
		}
		return nil
	})
}

// dialReady dials ts's namespace nsp and waits until the server has run its connection handler for the
// socket (it is in its user room), for tests that read the adapter's state right away. (Events the
// client sends at once are safe without it: see connectgate.go.)
func dialReady(t *testing.T, ts *testServer, nsp string, transports []eio.TransportCtor, auth map[string]any) *sio.Socket {
	t.Helper()
	c := dial(t, ts.URL, dialOptions{nsp: nsp, transports: transports, auth: auth})
	id := c.Id()
	waitFor(t, "the server's connection handler", func() bool {
		s := ts.IO().Namespace(nsp).Socket(id)
		if s == nil {
			return false
		}
		for _, r := range s.Rooms() {
			if strings.HasPrefix(r, namespaces.UserRoomPrefix) {
				return true
			}
		}
		return false
	})
	return c
}

func dialChat(t *testing.T, ts *testServer, transports []eio.TransportCtor, auth map[string]any) *sio.Socket {
	t.Helper()
	return dialReady(t, ts, "/chat", transports, auth)
}

// waitGone waits until the server has removed socket id from /chat (its disconnection handled).
func waitGone(t *testing.T, ts *testServer, id string) {
	t.Helper()
	if id == "" {
		t.Fatal("waitGone: no socket id")
	}
	waitFor(t, "socket "+id+" removed", func() bool {
		return ts.IO().Namespace("/chat").Socket(id) == nil
	})
}

func TestChatConversation(t *testing.T) {
	ts := startServer(t, testConfig())
	for name, transports := range transportSets {
		t.Run(name, func(t *testing.T) {
			room := "lobby-" + name
			alice := dialChat(t, ts, transports, map[string]any{"name": "alice"})
			bob := dialChat(t, ts, transports, map[string]any{"name": "bob"})
			aliceIn := inbox(alice, "chat:user-joined", "chat:user-left", "chat:message", "chat:typing")
			bobIn := inbox(bob, "chat:user-joined", "chat:user-left", "chat:message", "chat:typing")

			j := data(t, call(t, alice, "chat:join", map[string]any{"room": room}))
			if j["room"] != room || len(j["members"].([]any)) != 1 || len(j["history"].([]any)) != 0 {
				t.Fatalf("alice's join = %v, want herself alone and no history", j)
			}
			j = data(t, call(t, bob, "chat:join", map[string]any{"room": room}))
			members := j["members"].([]any)
			if len(members) != 2 {
				t.Fatalf("bob's join members = %v, want alice and bob", members)
			}
			joined := next(t, aliceIn, "chat:user-joined")
			if id, n := userOf(joined["user"]); joined["room"] != room || id != bob.Id() || n != "bob" {
				t.Fatalf("chat:user-joined = %v", joined)
			}

			// Typing goes to the others only, volatile: it is dropped when alice's transport is
			// busy, so bob repeats it, each time followed by a message, until alice has seen one.
			// Bob never sees his own: the next event he gets is each message.
			var typing map[string]any
			for try := 0; typing == nil; try++ {
				if try == 5 {
					t.Fatal("chat:typing never arrived in 5 tries")
				}
				if err := bob.Emit("chat:typing", map[string]any{"room": room, "typing": true}); err != nil {
					t.Fatal(err)
				}
				marker := fmt.Sprint("marker-", try)
				data(t, call(t, bob, "chat:send", map[string]any{"room": room, "text": marker}))
				for ev := range aliceIn {
					if ev.name == "chat:typing" {
						typing = ev.data
						continue
					}
					if ev.name != "chat:message" || ev.data["text"] != marker {
						t.Fatalf("alice got %s %v", ev.name, ev.data)
					}
					break
				}
				if m := next(t, bobIn, "chat:message"); m["text"] != marker {
					t.Fatalf("bob got %v", m)
				}
			}
			if id, _ := userOf(typing["user"]); typing["typing"] != true || typing["room"] != room || id != bob.Id() {
				t.Fatalf("chat:typing = %v", typing)
			}
			sent := data(t, call(t, bob, "chat:send", map[string]any{"room": room, "text": "hi alice"}))
			for who, in := range map[string]<-chan event{"alice": aliceIn, "bob": bobIn} {
				m := next(t, in, "chat:message")
				if id, n := userOf(m["user"]); m["id"] != sent["id"] || m["ts"] != sent["ts"] || m["text"] != "hi alice" || m["room"] != room || id != bob.Id() || n != "bob" {
					t.Fatalf("%s got chat:message %v, ack %v", who, m, sent)
				}
			}
			// Ids count the room's messages: the markers, then this one.
			if id, _ := strconv.Atoi(sent["id"].(string)); id < 2 {
				t.Fatalf("message id = %v, want the room's sequence number", sent["id"])
			}
			if ts, _ := sent["ts"].(float64); ts < 1e12 {
				t.Fatalf("ts = %v, want Unix milliseconds", sent["ts"])
			}

			h := data(t, call(t, alice, "chat:history", map[string]any{"room": room}))
			msgs := h["messages"].([]any)
			if last := msgs[len(msgs)-1].(map[string]any); last["text"] != "hi alice" || last["id"] != sent["id"] || msgs[0].(map[string]any)["id"] != "1" {
				t.Fatalf("history = %v", h)
			}
			// A joiner gets the history in its ack.
			carol := dialChat(t, ts, transports, nil)
			j = data(t, call(t, carol, "chat:join", map[string]any{"room": room}))
			if hist := j["history"].([]any); len(hist) != len(msgs) {
				t.Fatalf("carol's join history = %v", hist)
			}
			next(t, aliceIn, "chat:user-joined")
			next(t, bobIn, "chat:user-joined")

			l := data(t, call(t, bob, "chat:leave", map[string]any{"room": room}))
			if l["room"] != room {
				t.Fatalf("leave = %v", l)
			}
			left := next(t, aliceIn, "chat:user-left")
			if id, _ := userOf(left["user"]); id != bob.Id() || left["room"] != room {
				t.Fatalf("chat:user-left = %v", left)
			}
			if code := errCode(t, call(t, bob, "chat:send", map[string]any{"room": room, "text": "still here?"})); code != namespaces.CodeForbidden {
				t.Fatalf("send after leave = %s, want forbidden", code)
			}
		})
	}
}

func TestChatRequestErrors(t *testing.T) {
	ts := startServer(t, testConfig())
	c := dialChat(t, ts, transportSets["websocket"], nil)
	other := dialChat(t, ts, transportSets["websocket"], nil)
	data(t, call(t, c, "chat:join", map[string]any{"room": "mine"}))
	tests := []struct {
		name    string
		event   string
		payload any
		code    string
	}{
		{"join another user's room", "chat:join", map[string]any{"room": "user:" + other.Id()}, namespaces.CodeForbidden},
		{"leave own user room", "chat:leave", map[string]any{"room": "user:" + c.Id()}, namespaces.CodeForbidden},
		{"send without membership", "chat:send", map[string]any{"room": "elsewhere", "text": "x"}, namespaces.CodeForbidden},
		{"typing without membership", "chat:typing", map[string]any{"room": "elsewhere", "typing": true}, namespaces.CodeForbidden},
		{"history without membership", "chat:history", map[string]any{"room": "elsewhere"}, namespaces.CodeForbidden},
		{"join: not an object", "chat:join", "mine", namespaces.CodeBadRequest},
		{"join: null", "chat:join", nil, namespaces.CodeBadRequest},
		{"join: room a number", "chat:join", map[string]any{"room": 7}, namespaces.CodeBadRequest},
		{"join: room too long", "chat:join", map[string]any{"room": strings.Repeat("r", 129)}, namespaces.CodeBadRequest},
		{"join: bad character", "chat:join", map[string]any{"room": "a b"}, namespaces.CodeBadRequest},
		{"send: text too long", "chat:send", map[string]any{"room": "mine", "text": strings.Repeat("x", 4001)}, namespaces.CodeBadRequest},
		{"send: text empty", "chat:send", map[string]any{"room": "mine", "text": ""}, namespaces.CodeBadRequest},
		{"send: text an array", "chat:send", map[string]any{"room": "mine", "text": []any{"x"}}, namespaces.CodeBadRequest},
		{"typing: not a bool", "chat:typing", map[string]any{"room": "mine", "typing": "yes"}, namespaces.CodeBadRequest},
		{"history: limit 0", "chat:history", map[string]any{"room": "mine", "limit": 0}, namespaces.CodeBadRequest},
		{"history: limit 101", "chat:history", map[string]any{"room": "mine", "limit": 101}, namespaces.CodeBadRequest},
		{"history: before not an id", "chat:history", map[string]any{"room": "mine", "before": "abc"}, namespaces.CodeBadRequest},
		{"history: deep nesting", "chat:history", map[string]any{"room": nested(200)}, namespaces.CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code := errCode(t, call(t, c, tt.event, tt.payload)); code != tt.code {
				t.Fatalf("%s = %s, want %s", tt.event, code, tt.code)
			}
		})
	}
	// Still connected and served after all of that.
	if d := data(t, call(t, c, "chat:send", map[string]any{"room": "mine", "text": "ok"})); d["id"] != "1" {
		t.Fatalf("send after errors = %v", d)
	}
}

func nested(n int) any {
	var v any = "x"
	for range n {
		v = map[string]any{"a": []any{v}}
	}
	return v
}

func TestChatRequestWithoutAckIsCarriedOut(t *testing.T) {
	ts := startServer(t, testConfig())
	c := dialChat(t, ts, transportSets["websocket"], nil)
	in := inbox(c, "chat:message")
	data(t, call(t, c, "chat:join", map[string]any{"room": "r"}))
	if err := c.Emit("no-such-event", map[string]any{"x": 1}); err != nil {
		t.Fatal(err)
	}
	if err := c.Emit("chat:send", map[string]any{"room": "r", "text": "no ack"}); err != nil {
		t.Fatal(err)
	}
	if m := next(t, in, "chat:message"); m["text"] != "no ack" {
		t.Fatalf("message = %v", m)
	}
}

// TestChatPresenceWithSeveralTabs: one user's sockets count as one member; chat:user-joined on
// the first, chat:user-left on the last, whether the others leave or just disconnect.
func TestChatPresenceWithSeveralTabs(t *testing.T) {
	ts := startServer(t, testConfig())
	sharedUsers(ts)
	ws := transportSets["websocket"]
	obs := dialChat(t, ts, ws, map[string]any{"uid": "observer"})
	in := inbox(obs, "chat:user-joined", "chat:user-left", "chat:message")
	data(t, call(t, obs, "chat:join", map[string]any{"room": "r"}))

	tab1 := dialChat(t, ts, ws, map[string]any{"uid": "ada"})
	tab2 := dialChat(t, ts, ws, map[string]any{"uid": "ada"})
	tab3 := dialChat(t, ts, ws, map[string]any{"uid": "ada"})
	data(t, call(t, tab1, "chat:join", map[string]any{"room": "r"}))
	if id, _ := userOf(next(t, in, "chat:user-joined")["user"]); id != "ada" {
		t.Fatalf("joined user = %s", id)
	}
	data(t, call(t, tab2, "chat:join", map[string]any{"room": "r"}))
	j := data(t, call(t, tab3, "chat:join", map[string]any{"room": "r"}))
	if m := j["members"].([]any); len(m) != 2 {
		t.Fatalf("members = %v, want observer and ada once each", m)
	}
	// Re-joining is a no-op.
	data(t, call(t, tab3, "chat:join", map[string]any{"room": "r"}))

	data(t, call(t, tab1, "chat:leave", map[string]any{"room": "r"}))
	tab2ID := tab2.Id() // the client forgets its id when it disconnects
	tab2.Disconnect()
	waitGone(t, ts, tab2ID)
	// A marker: nothing about ada may arrive before it.
	data(t, call(t, obs, "chat:send", map[string]any{"room": "r", "text": "marker"}))
	if m := next(t, in, "chat:message"); m["text"] != "marker" {
		t.Fatalf("got %v before the marker", m)
	}
	tab3.Disconnect()
	left := next(t, in, "chat:user-left")
	if id, _ := userOf(left["user"]); id != "ada" || left["room"] != "r" {
		t.Fatalf("chat:user-left = %v", left)
	}
	if m := data(t, call(t, obs, "chat:join", map[string]any{"room": "r"}))["members"].([]any); len(m) != 1 {
		t.Fatalf("members after ada left = %v", m)
	}
}

// TestChatConcurrentSendersAndTabs: many clients join and send at once; every member receives
// every message of the room exactly once in id order, and a user's tabs joining and dropping at
// once leave presence alternating joined/left and ending left.
func TestChatConcurrentSendersAndTabs(t *testing.T) {
	const clients, each = 6, 15
	ts := startServer(t, testConfig())
	sharedUsers(ts)
	obs := dialChat(t, ts, transportSets["websocket"], map[string]any{"uid": "observer"})
	obsIn := inbox(obs, "chat:user-joined", "chat:user-left", "chat:message")
	data(t, call(t, obs, "chat:join", map[string]any{"room": "busy"}))

	socks := make([]*sio.Socket, clients)
	inboxes := make([]<-chan event, clients)
	for i := range socks {
		// Two users, three tabs each. Websocket only: the Go client's long-polling phase waits a
		// heartbeat between GETs (polling is covered by the socket.io-client tests).
		socks[i] = dialChat(t, ts, transportSets["websocket"], map[string]any{"uid": fmt.Sprint("user", i%2)})
		inboxes[i] = inbox(socks[i], "chat:message")
	}
	var wg sync.WaitGroup
	for _, s := range socks {
		wg.Go(func() {
			if err := callOK(s, "chat:join", map[string]any{"room": "busy"}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i, s := range socks {
		wg.Go(func() {
			for k := range each {
				if err := callOK(s, "chat:send", map[string]any{"room": "busy", "text": fmt.Sprint(i, "-", k)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	total := clients * each
	check := func(who string, in <-chan event) {
		for n := 1; n <= total; n++ {
			if m := next(t, in, "chat:message"); m["id"] != strconv.Itoa(n) {
				t.Fatalf("%s: message %d has id %v", who, n, m["id"])
			}
		}
	}
	for i, in := range inboxes {
		check(fmt.Sprint("client ", i), in)
	}

	// The observer saw, per user, joined and left alternating; then everyone drops at once.
	sids := make([]string, len(socks))
	for i, s := range socks {
		sids[i] = s.Id() // the client forgets its id when it disconnects
	}
	for _, s := range socks {
		wg.Go(func() { s.Disconnect() })
	}
	wg.Wait()
	for _, id := range sids {
		waitGone(t, ts, id)
	}
	data(t, call(t, obs, "chat:send", map[string]any{"room": "busy", "text": "marker"}))
	state := map[string]string{}
	messages := 0
	for {
		ev := receive(t, "observer events", obsIn)
		if ev.name == "chat:message" {
			messages++
			if ev.data["text"] == "marker" {
				break
			}
			continue
		}
		id, _ := userOf(ev.data["user"])
		want := "chat:user-joined"
		if state[id] == want {
			want = "chat:user-left"
		}
		if ev.name != want {
			t.Fatalf("%s: got %s after %q", id, ev.name, state[id])
		}
		state[id] = ev.name
	}
	if messages != total+1 {
		t.Fatalf("observer got %d messages, want %d", messages, total+1)
	}
	// A user's chat:user-left may still be on its way: a client's disconnect reaches the server
	// twice (its namespace DISCONNECT and its transport closing), and the library can remove the
	// socket (what waitGone sees) on one path while the other still runs the "disconnecting"
	// handler that announces it. Read on until both users have left (or time out).
	for _, u := range []string{"user0", "user1"} {
		for state[u] != "chat:user-left" {
			ev := receive(t, u+"'s chat:user-left", obsIn)
			if ev.name == "chat:message" {
				t.Fatalf("message after the marker: %v", ev.data)
			}
			id, _ := userOf(ev.data["user"])
			if ev.name != "chat:user-left" || state[id] != "chat:user-joined" {
				t.Fatalf("%s: got %s after %q", id, ev.name, state[id])
			}
			state[id] = ev.name
		}
	}
	if m := data(t, call(t, obs, "chat:join", map[string]any{"room": "busy"}))["members"].([]any); len(m) != 1 {
		t.Fatalf("members at the end = %v", m)
	}
}

func TestChatHistoryBound(t *testing.T) {
	cfg := testConfig()
	cfg.ChatHistory = 3
	ts := startServer(t, cfg)
	c := dialChat(t, ts, transportSets["websocket"], nil)
	data(t, call(t, c, "chat:join", map[string]any{"room": "r"}))
	for i := range 5 {
		data(t, call(t, c, "chat:send", map[string]any{"room": "r", "text": fmt.Sprint(i + 1)}))
	}
	tests := []struct {
		name    string
		payload map[string]any
		want    string
	}{
		{"newest kept", map[string]any{"room": "r"}, "3,4,5"},
		{"limit", map[string]any{"room": "r", "limit": 2}, "4,5"},
		{"before", map[string]any{"room": "r", "before": "5", "limit": 1}, "4"},
		{"before an unknown id", map[string]any{"room": "r", "before": "1000"}, "3,4,5"},
		{"before the oldest", map[string]any{"room": "r", "before": "3"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs := data(t, call(t, c, "chat:history", tt.payload))["messages"].([]any)
			got := make([]string, len(msgs))
			for i, m := range msgs {
				got[i] = m.(map[string]any)["id"].(string)
			}
			if strings.Join(got, ",") != tt.want {
				t.Fatalf("history = %v, want %s", got, tt.want)
			}
		})
	}
}

func TestRootSubscribe(t *testing.T) {
	ts := startServer(t, testConfig())
	c := dialReady(t, ts, "/", transportSets["websocket"], nil)
	other := dialReady(t, ts, "/", transportSets["websocket"], nil)
	own := "user:" + c.Id()
	tests := []struct {
		name    string
		event   string
		payload any
		rooms   []string // nil: an error
		code    string
	}{
		{"subscribe", "subscribe", map[string]any{"rooms": []any{"b", "a"}}, []string{"a", "b", own}, ""},
		{"subscribe again", "subscribe", map[string]any{"rooms": []any{"a"}}, []string{"a", "b", own}, ""},
		{"unsubscribe", "unsubscribe", map[string]any{"rooms": []any{"b", "never-joined"}}, []string{"a", own}, ""},
		{"subscribe another user's room", "subscribe", map[string]any{"rooms": []any{"c", "user:" + other.Id()}}, nil, namespaces.CodeForbidden},
		{"unsubscribe own user room", "unsubscribe", map[string]any{"rooms": []any{own}}, nil, namespaces.CodeForbidden},
		{"no rooms", "subscribe", map[string]any{"rooms": []any{}}, nil, namespaces.CodeBadRequest},
		{"51 rooms", "subscribe", map[string]any{"rooms": manyRooms(51)}, nil, namespaces.CodeBadRequest},
		{"a number", "subscribe", map[string]any{"rooms": []any{"a", 1}}, nil, namespaces.CodeBadRequest},
		{"rooms a string", "unsubscribe", map[string]any{"rooms": "a"}, nil, namespaces.CodeBadRequest},
		{"bad room name", "subscribe", map[string]any{"rooms": []any{"a/b"}}, nil, namespaces.CodeBadRequest},
		{"not an object", "subscribe", []any{"a"}, nil, namespaces.CodeBadRequest},
		{"state unchanged by refusals", "subscribe", map[string]any{"rooms": []any{"a"}}, []string{"a", own}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ack := call(t, c, tt.event, tt.payload)
			if tt.rooms == nil {
				if code := errCode(t, ack); code != tt.code {
					t.Fatalf("%s = %s, want %s", tt.event, code, tt.code)
				}
				return
			}
			eq(t, toStrings(data(t, ack)["rooms"]), sorted(tt.rooms))
		})
	}
}

func manyRooms(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = fmt.Sprint("r", i)
	}
	return out
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

// callOK is call for other goroutines than the test's: it reports instead of failing.
func callOK(s *sio.Socket, event string, payload any) error {
	got := make(chan []any, 1)
	if err := s.Emit(event, payload, socket.Ack(func(args []any, err error) { got <- args })); err != nil {
		return err
	}
	select {
	case args := <-got:
		if m, ok := args[0].(map[string]any); !ok || m["data"] == nil {
			return fmt.Errorf("%s ack = %v", event, args)
		}
		return nil
	case <-time.After(waitTimeout):
		return fmt.Errorf("timed out waiting for the %s ack", event)
	}
}
