package server

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/namespaces"
)

// untilAck reads until the ack with id arrives; it returns the events that came before it (by
// name) and the ack's arguments.
func (c *rawClient) untilAck(t *testing.T, nsp string, id int) ([]string, []json.RawMessage) {
	t.Helper()
	ackPrefix := fmt.Sprintf("43%s%d[", nspPrefix(nsp), id)
	var events []string
	for {
		msg, err := c.read()
		if err != nil {
			t.Fatalf("waiting for ack %d: %v", id, err)
		}
		if rest, ok := strings.CutPrefix(msg, ackPrefix); ok {
			var args []json.RawMessage
			if err := json.Unmarshal([]byte("["+rest), &args); err != nil {
				t.Fatalf("ack %d: %q: %v", id, msg, err)
			}
			return events, args
		}
		if rest, ok := strings.CutPrefix(msg, "42"+nspPrefix(nsp)); ok {
			var data []json.RawMessage
			if json.Unmarshal([]byte(rest), &data) == nil && len(data) > 0 {
				var name string
				_ = json.Unmarshal(data[0], &name)
				events = append(events, name)
			}
		}
	}
}

// untilEvent reads until event arrives and returns the names of the events before it.
func (c *rawClient) untilEvent(t *testing.T, nsp, event string) []string {
	t.Helper()
	var before []string
	for {
		msg, err := c.read()
		if err != nil {
			t.Fatalf("waiting for %s: %v", event, err)
		}
		rest, ok := strings.CutPrefix(msg, "42"+nspPrefix(nsp))
		if !ok {
			continue
		}
		var data []json.RawMessage
		if json.Unmarshal([]byte(rest), &data) != nil || len(data) == 0 {
			continue
		}
		var name string
		_ = json.Unmarshal(data[0], &name)
		if name == event {
			return before
		}
		before = append(before, name)
	}
}

func compact(raws []json.RawMessage) string {
	parts := make([]string, len(raws))
	for i, r := range raws {
		parts[i] = string(r)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// TestHookEventAnswers: every kind of answer of SPEC §8.2, applied in the order join, leave,
// emit, ack, disconnect, on a --namespaces namespace. Each case has a sender of its own; a
// watcher shares the room "table" with it and is checked for what it must (not) receive.
func TestHookEventAnswers(t *testing.T) {
	b := newTestBackend(t)
	b.onConnect(func(req connectBody) answerOf {
		return answerOf{status: 200, body: `{"rooms":["table"],"data":{"seat":"` + req.Socket.ID + `"}}`}
	})
	answers := map[string]answerOf{}
	var mu sync.Mutex
	bodies := map[string][]eventBody{}
	b.onEvent(func(req eventBody) answerOf {
		mu.Lock()
		defer mu.Unlock()
		bodies[req.Event] = append(bodies[req.Event], req)
		if req.Event == "marker" {
			return answerOf{status: 200, body: `{"emit":[{"rooms":["table"],"event":"marker"}]}`}
		}
		return answers[req.Event]
	})
	cfg := hookConfig(b, true)
	cfg.HookHeaders = nil
	cfg.HookTimeout = 300 * time.Millisecond
	cfg.Namespaces = []string{"/game"}
	ts := startServer(t, cfg)
	const nsp = "/game"
	watcher := mustHookDial(t, ts, nsp, hookDialOptions{})

	// watcherSaw has the sender's marker reach the watcher and returns what came before it.
	watcherSaw := func(t *testing.T, sender *rawClient) []string {
		t.Helper()
		if err := sender.emit(nsp, "marker", "", -1); err != nil {
			t.Fatal(err)
		}
		return watcher.untilEvent(t, nsp, "marker")
	}

	tests := []struct {
		name   string
		answer answerOf
		args   string // the event's arguments
		// wantAck is the ack's arguments; wantCode, when set, instead the ack's error code.
		wantAck  string
		wantCode string
		// before are the events the sender gets before its ack; watcher those the watcher gets.
		before, watcher []string
		check           func(t *testing.T, sender *rawClient)
	}{
		{name: "ack arguments", answer: answerOf{status: 200, body: `{"ack":[{"data":{"n":1}},2,"three"]}`}, args: `{"x":1}`,
			wantAck: `[{"data":{"n":1}},2,"three"]`},
		{name: "no ack field", answer: answerOf{status: 200, body: `{}`}, wantAck: `[{"data":null}]`},
		{name: "empty ack", answer: answerOf{status: 200, body: `{"ack":[]}`}, wantAck: `[]`},
		{name: "204", answer: answerOf{status: 204}, wantAck: `[{"data":null}]`},
		{name: "emit to the sender only", answer: answerOf{status: 200, body: `{"emit":[{"event":"hello","args":[1,{"a":"b"}]}]}`},
			wantAck: `[{"data":null}]`, before: []string{"hello"}, watcher: []string{}},
		{name: "emit to a room", answer: answerOf{status: 200, body: `{"emit":[{"rooms":["table"],"event":"moved","args":[{"x":1}]}]}`},
			wantAck: `[{"data":null}]`, before: []string{"moved"}, watcher: []string{"moved"}},
		{name: "emit to a room, not to self", answer: answerOf{status: 200, body: `{"emit":[{"rooms":["table"],"toSelf":false,"event":"moved"}]}`},
			wantAck: `[{"data":null}]`, before: []string{}, watcher: []string{"moved"}},
		{name: "emit with except", answer: answerOf{status: 200, body: `{"emit":[{"rooms":["table"],"except":["` + watcher.sid + `"],"event":"moved"}]}`},
			wantAck: `[{"data":null}]`, before: []string{"moved"}, watcher: []string{}},
		{name: "emit to no room", answer: answerOf{status: 200, body: `{"emit":[{"rooms":[],"event":"nowhere"}]}`},
			wantAck: `[{"data":null}]`, before: []string{}, watcher: []string{}},
		{name: "emits in order", answer: answerOf{status: 200, body: `{"emit":[{"event":"e1"},{"rooms":["table"],"event":"e2"},{"event":"e3"}],"ack":[true]}`},
			wantAck: `[true]`, before: []string{"e1", "e2", "e3"}, watcher: []string{"e2"}},
		{name: "join before emit", answer: answerOf{status: 200, body: `{"join":["side"],"emit":[{"rooms":["side"],"event":"in-side"}]}`},
			wantAck: `[{"data":null}]`, before: []string{"in-side"}, watcher: []string{},
			check: func(t *testing.T, sender *rawClient) {
				if !hookedSocket(t, ts, nsp, sender).In("side") {
					t.Error("not in the joined room")
				}
			}},
		{name: "leave before emit", answer: answerOf{status: 200, body: `{"leave":["table"],"emit":[{"rooms":["table"],"event":"gone"}]}`},
			wantAck: `[{"data":null}]`, before: []string{}, watcher: []string{"gone"}},
		{name: "forbidden join", answer: answerOf{status: 200, body: `{"join":["user:someone-else","fine"],"emit":[{"event":"still"}],"ack":[1]}`},
			wantCode: "forbidden", before: []string{"still"},
			check: func(t *testing.T, sender *rawClient) {
				s := hookedSocket(t, ts, nsp, sender)
				if s.In("user:someone-else") || !s.In("fine") {
					t.Errorf("rooms %v: want fine joined and the other user's room skipped", s.Rooms())
				}
			}},
		{name: "join of no room name", answer: answerOf{status: 200, body: `{"join":["not a room"]}`}, wantCode: "internal"},
		{name: "leave of the user room", answer: answerOf{status: 200, body: `{"leave":["user:SELF"]}`}, wantCode: "forbidden"},
		{name: "emit of a reserved name", answer: answerOf{status: 200, body: `{"emit":[{"event":"disconnect"}]}`}, wantCode: "internal"},
		{name: "disconnect after the ack", answer: answerOf{status: 200, body: `{"ack":["bye"],"disconnect":true}`}, wantAck: `["bye"]`,
			check: func(t *testing.T, sender *rawClient) {
				for {
					msg, err := sender.read()
					if err != nil {
						t.Fatalf("no DISCONNECT: %v", err)
					}
					if msg == "41"+nsp+"," {
						return
					}
				}
			}},
		{name: "4xx error", answer: answerOf{status: 409, body: `{"error":{"code":"not_your_turn","message":"wait"}}`}, wantCode: "not_your_turn"},
		{name: "200 error", answer: answerOf{status: 200, body: `{"error":{"code":"no","message":"never"}}`}, wantCode: "no"},
		{name: "bare 404", answer: answerOf{status: 404}, wantCode: "not_found"},
		{name: "5xx", answer: answerOf{status: 502, body: `{"ack":[1]}`}, wantCode: "unavailable"},
		{name: "timeout", answer: answerOf{hang: true}, wantCode: "unavailable"},
		{name: "garbage", answer: answerOf{status: 200, body: `[1,2`}, wantCode: "internal"},
		{name: "wrong shape", answer: answerOf{status: 200, body: `{"emit":[{"args":[]}]}`}, wantCode: "internal"},
		{name: "10 MB", answer: answerOf{status: 200, body: `{"ack":["` + strings.Repeat("x", 10<<20) + `"]}`}, wantCode: "internal"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sender := mustHookDial(t, ts, nsp, hookDialOptions{})
			event := fmt.Sprintf("case-%d", i)
			a := tt.answer
			a.body = strings.ReplaceAll(a.body, "user:SELF", "user:"+sender.sid)
			mu.Lock()
			answers[event] = a
			mu.Unlock()
			if err := sender.emit(nsp, event, tt.args, 7); err != nil {
				t.Fatal(err)
			}
			before, ack := sender.untilAck(t, nsp, 7)
			if tt.wantCode != "" {
				var reply map[string]any
				if len(ack) != 1 || json.Unmarshal(ack[0], &reply) != nil || errorCode(reply) != tt.wantCode {
					t.Errorf("ack = %s, want error %s", compact(ack), tt.wantCode)
				}
			} else if got := compact(ack); got != tt.wantAck {
				t.Errorf("ack = %s, want %s", got, tt.wantAck)
			}
			if tt.before != nil && !slices.Equal(before, tt.before) && !(len(before) == 0 && len(tt.before) == 0) {
				t.Errorf("sender got %v before its ack, want %v", before, tt.before)
			}
			if tt.check != nil {
				tt.check(t, sender)
			}
			if tt.watcher != nil {
				if got := watcherSaw(t, sender); !slices.Equal(got, tt.watcher) && !(len(got) == 0 && len(tt.watcher) == 0) {
					t.Errorf("watcher got %v, want %v", got, tt.watcher)
				}
			}
			mu.Lock()
			reqs := bodies[event]
			mu.Unlock()
			if len(reqs) != 1 {
				t.Fatalf("backend got %d requests for the event, want 1", len(reqs))
			}
			req := reqs[0]
			wantArgs := "[]"
			if tt.args != "" {
				wantArgs = "[" + tt.args + "]"
			}
			if req.Socket.ID != sender.sid || req.Socket.Namespace != nsp || req.Socket.User.ID != sender.sid ||
				!slices.Equal(req.Socket.Rooms, []string{"table", "user:" + sender.sid}) ||
				string(req.Data) != `{"seat":"`+sender.sid+`"}` || compact(req.Args) != wantArgs {
				t.Errorf("event body = %+v (args %s), want the sender in table and its user room, its connect data, args %s",
					req, compact(req.Args), wantArgs)
			}
		})
	}
}

// TestHookEventSeesPreviousJoin: an event sent right behind one whose answer joins a room is
// reported in that room (its request is built after the previous answer was applied).
func TestHookEventSeesPreviousJoin(t *testing.T) {
	b := newTestBackend(t)
	rooms := make(chan []string, 10)
	b.onEvent(func(req eventBody) answerOf {
		rooms <- req.Socket.Rooms
		return answerOf{status: 200, body: fmt.Sprintf(`{"join":["r%d"]}`, len(req.Socket.Rooms))}
	})
	ts := startServer(t, hookConfig(b, false))
	c := mustRawDial(t, ts, "/")
	for i := range 4 {
		if err := c.emit("/", "step", "", i); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 4 {
		got := receive(t, "an event", rooms)
		if len(got) != i+1 { // the user room, then one more room per answer
			t.Errorf("event %d reported rooms %v, want %d rooms", i, got, i+1)
		}
	}
}

// TestHookEventWhichAreForwarded: a built-in event is built in on its own namespace only; an
// event nothing handles is forwarded on /, /chat, /relay and --namespaces; auth:refresh and the
// reserved names never are.
func TestHookEventWhichAreForwarded(t *testing.T) {
	b := newTestBackend(t)
	got := make(chan string, 16)
	b.onEvent(func(req eventBody) answerOf {
		got <- req.Socket.Namespace + " " + req.Event
		return answerOf{status: 200, body: `{"ack":["from-backend"]}`}
	})
	cfg := hookConfig(b, false)
	cfg.Namespaces = []string{"/game"}
	ts := startServer(t, cfg)

	tests := []struct {
		nsp, event, args string
		forwarded        bool
	}{
		{"/", "subscribe", `{"rooms":["a"]}`, false},
		{"/", "poll:vote", `{"choice":1}`, true},
		{"/chat", "chat:join", `{"room":"a"}`, false},
		{"/chat", "chat:custom", `{}`, true},
		{"/chat", "subscribe", `{"rooms":["a"]}`, true},
		{"/relay", "relay:join", `{"room":"a"}`, false},
		{"/relay", "cursor", `{}`, true},
		{"/game", "subscribe", `{"rooms":["a"]}`, true},
		{"/game", "chat:join", `{"room":"a"}`, true},
		{"/game", "auth:refresh", `{"token":"x"}`, false},
	}
	for i, tt := range tests {
		t.Run(tt.nsp+" "+tt.event, func(t *testing.T) {
			c := mustRawDial(t, ts, tt.nsp)
			_, ack := c.untilAckAfter(t, tt.nsp, tt.event, tt.args, i)
			fromBackend := compact(ack) == `["from-backend"]`
			if fromBackend != tt.forwarded {
				t.Errorf("ack %s: forwarded = %v, want %v", compact(ack), fromBackend, tt.forwarded)
			}
			if tt.forwarded {
				if g := receive(t, "the forwarded event", got); g != tt.nsp+" "+tt.event {
					t.Errorf("backend got %q", g)
				}
			}
		})
	}
	if len(got) != 0 {
		t.Errorf("backend got events it should not: %q", <-got)
	}
}

// untilAckAfter emits event with args and an ack id, and waits for the ack.
func (c *rawClient) untilAckAfter(t *testing.T, nsp, event, args string, id int) ([]string, []json.RawMessage) {
	t.Helper()
	if err := c.emit(nsp, event, args, id); err != nil {
		t.Fatal(err)
	}
	return c.untilAck(t, nsp, id)
}

// TestHookEventBinary: binary arguments reach the backend as Node's Buffer JSON, the ack is
// left out of the arguments.
func TestHookEventBinary(t *testing.T) {
	b := newTestBackend(t)
	got := make(chan eventBody, 1)
	b.onEvent(func(req eventBody) answerOf {
		got <- req
		return answerOf{status: 200, body: `{"ack":[{"ok":true}]}`}
	})
	ts := startServer(t, hookConfig(b, false))
	c := mustRawDial(t, ts, "/")
	if err := c.write(`451-3["upload",{"name":"f","blob":{"_placeholder":true,"num":0}}]`); err != nil {
		t.Fatal(err)
	}
	c.writeMu.Lock()
	err := c.conn.WriteMessage(websocket.BinaryMessage, []byte{0, 1, 2, 255})
	c.writeMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if ack := c.ackArgs(t, "/", 3); compact(ack) != `[{"ok":true}]` {
		t.Errorf("ack = %s", compact(ack))
	}
	req := receive(t, "the event", got)
	if want := `[{"blob":{"type":"Buffer","data":[0,1,2,255]},"name":"f"}]`; compact(req.Args) != want {
		t.Errorf("args = %s, want %s", compact(req.Args), want)
	}
}

// TestHookEventOrder: 1,000 events from 10 sockets sent at once reach the backend in each
// socket's order, and their acks come back in that order.
func TestHookEventOrder(t *testing.T) {
	const sockets, perSocket = 10, 100
	b := newTestBackend(t)
	var mu sync.Mutex
	arrived := map[string][]int{}
	b.onEvent(func(req eventBody) answerOf {
		var seq int
		_ = json.Unmarshal(req.Args[0], &seq)
		mu.Lock()
		arrived[req.Socket.ID] = append(arrived[req.Socket.ID], seq)
		mu.Unlock()
		return answerOf{status: 200, body: fmt.Sprintf(`{"ack":[%d]}`, seq)}
	})
	cfg := hookConfig(b, false)
	cfg.Namespaces = []string{"/game"}
	ts := startServer(t, cfg)
	clients := make([]*rawClient, sockets)
	for i := range clients {
		clients[i] = mustRawDial(t, ts, "/game")
	}
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			for i := range perSocket {
				if err := c.emit("/game", "move", fmt.Sprint(i), i); err != nil {
					t.Error(err)
					return
				}
			}
			for i := range perSocket {
				if ack := c.ackArgs(t, "/game", i); compact(ack) != fmt.Sprintf("[%d]", i) {
					t.Errorf("ack %d = %s", i, compact(ack))
				}
			}
		})
	}
	wg.Wait()
	want := make([]int, perSocket)
	for i := range want {
		want[i] = i
	}
	mu.Lock()
	defer mu.Unlock()
	if len(arrived) != sockets {
		t.Fatalf("backend saw %d sockets, want %d", len(arrived), sockets)
	}
	for sid, seqs := range arrived {
		if !reflect.DeepEqual(seqs, want) {
			t.Errorf("socket %s: events arrived in the order %v", sid, seqs)
		}
	}
}

// TestHookEventRateLimited: with one event in flight and 100 waiting, the next ones are acked
// rate_limited at once; the others are answered once the backend is.
func TestHookEventRateLimited(t *testing.T) {
	b := newTestBackend(t)
	first := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	b.onEvent(func(req eventBody) answerOf {
		once.Do(func() { close(first) })
		<-release
		return answerOf{status: 200, body: `{"ack":["ok"]}`}
	})
	cfg := hookConfig(b, false)
	cfg.HookTimeout = time.Minute
	ts := startServer(t, cfg)
	c := mustRawDial(t, ts, "/")
	if err := c.emit("/", "work", "", 0); err != nil {
		t.Fatal(err)
	}
	receive(t, "the first event at the backend", first)
	const waiting, over = 100, 5
	for i := 1; i <= waiting+over; i++ {
		if err := c.emit("/", "work", "", i); err != nil {
			t.Fatal(err)
		}
	}
	for i := waiting + 1; i <= waiting+over; i++ {
		var reply map[string]any
		ack := c.ackArgs(t, "/", i)
		if json.Unmarshal(ack[0], &reply); errorCode(reply) != namespaces.CodeRateLimited {
			t.Errorf("event %d: ack %s, want rate_limited", i, compact(ack))
		}
	}
	close(release)
	for i := 0; i <= waiting; i++ {
		if ack := c.ackArgs(t, "/", i); compact(ack) != `["ok"]` {
			t.Errorf("event %d: ack %s", i, compact(ack))
		}
	}
	if n := counterValue(t, ts.metrics, "switchboard_hook_forwards_rejected_total"); n != over {
		t.Errorf("rejected forwards counted %v, want %d", n, over)
	}
}

// TestHookEventRoomLimitOnBuiltinsOnly: the room limit refuses a subscribe, chat:join or
// relay:join over it where the namespace's own handler takes it; on a --namespaces namespace
// those names are the app's own events and reach its backend whatever the socket's rooms.
func TestHookEventRoomLimitOnBuiltinsOnly(t *testing.T) {
	b := newTestBackend(t)
	b.onEvent(func(req eventBody) answerOf {
		return answerOf{status: 200, body: `{"ack":["from-backend"]}`}
	})
	cfg := hookConfig(b, false)
	cfg.Namespaces = []string{"/game"}
	cfg.Limits.MaxRoomsPerSocket = 1
	ts := startServer(t, cfg)
	tests := []struct {
		nsp, event, args, want string
	}{
		{"/", "subscribe", `{"rooms":["a","b"]}`, "forbidden"},
		{"/game", "subscribe", `{"rooms":["a","b"]}`, "from-backend"},
		{"/game", "chat:join", `{"room":"a"}`, "from-backend"},
		{"/game", "relay:join", `{"room":"a"}`, "from-backend"},
	}
	for i, tt := range tests {
		t.Run(tt.nsp+" "+tt.event, func(t *testing.T) {
			c := mustRawDial(t, ts, tt.nsp)
			if tt.nsp == "/" {
				// Already in one room: one more is past the limit of 1.
				if _, ack := c.untilAckAfter(t, tt.nsp, "subscribe", `{"rooms":["x"]}`, 100+i); strings.Contains(compact(ack), "error") {
					t.Fatalf("first subscribe: %s", compact(ack))
				}
			}
			_, ack := c.untilAckAfter(t, tt.nsp, tt.event, tt.args, i)
			if got := compact(ack); !strings.Contains(got, tt.want) {
				t.Fatalf("ack %s, want %s", got, tt.want)
			}
		})
	}
}
