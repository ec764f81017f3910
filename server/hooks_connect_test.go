package server

import (
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/namespaces"
	"github.com/switchboard/switchboard/socketio"
)

// hookedSocket is the server's socket of c in nsp.
func hookedSocket(t *testing.T, ts *testServer, nsp string, c *rawClient) *socketio.Socket {
	t.Helper()
	s := ts.IO().Namespace(nsp).Socket(c.sid)
	if s == nil {
		t.Fatalf("no socket %s on %s", c.sid, nsp)
	}
	return s
}

// TestHookConnectBody: the connect hook is told the socket, the handshake's auth without its
// token or recovery session, the --hook-headers present (lower-case, never authorization), the
// client's address and the query without a token.
func TestHookConnectBody(t *testing.T) {
	b := newTestBackend(t)
	got := make(chan connectBody, 1)
	b.onConnect(func(req connectBody) answerOf {
		got <- req
		return answerOf{status: 200, body: `{}`}
	})
	ts := startServer(t, hookConfig(b, true))

	header := http.Header{"Cookie": {"session=abc"}, "X-App": {"web"}, "X-Other": {"not forwarded"}}
	o := tokenHandshake(map[string]any{"name": "ada", "color": []any{"red", 1.5}, "pid": "private", "offset": "1-0"}, header,
		url.Values{"room": {"lobby"}})
	c := mustHookDial(t, ts, "/chat", o)
	req := receive(t, "the connect hook", got)

	if req.Socket.ID != c.sid || req.Socket.Namespace != "/chat" || req.Socket.User != (namespaces.User{ID: c.sid, Name: "ada"}) {
		t.Errorf("socket = %+v, want id %s on /chat, user ada", req.Socket, c.sid)
	}
	if want := map[string]any{"name": "ada", "color": []any{"red", 1.5}}; !reflect.DeepEqual(req.Auth, want) {
		t.Errorf("auth = %v, want %v (no token, pid or offset)", req.Auth, want)
	}
	if want := map[string]string{"cookie": "session=abc", "x-app": "web"}; !reflect.DeepEqual(req.Headers, want) {
		t.Errorf("headers = %v, want %v", req.Headers, want)
	}
	if ip := net.ParseIP(req.Address); ip == nil || !ip.IsLoopback() {
		t.Errorf("address = %q, want the loopback address", req.Address)
	}
	if req.Query["room"] != "lobby" || req.Query["EIO"] != "4" || req.Query["transport"] != "websocket" {
		t.Errorf("query = %v, want room, EIO and transport", req.Query)
	}
	if _, ok := req.Query["token"]; ok {
		t.Errorf("query carries the token: %v", req.Query)
	}
}

// TestHookConnectAnswers: every kind of answer of SPEC §8.1, on a fresh connection each.
func TestHookConnectAnswers(t *testing.T) {
	b := newTestBackend(t)
	cfg := hookConfig(b, true)
	cfg.HookTimeout = 300 * time.Millisecond
	ts := startServer(t, cfg)

	tooMany := make([]string, 101)
	for i := range tooMany {
		tooMany[i] = "r" + strings.Repeat("x", i%5) + string(rune('a'+i%26)) + strings.Repeat("y", i/26)
	}
	manyRooms, _ := json.Marshal(map[string]any{"rooms": tooMany})

	tests := []struct {
		name   string
		answer answerOf
		// refused is the connect_error's message ("" = connected) and code its data.code.
		refused, code string
		message       string
		check         func(t *testing.T, s *socketio.Socket)
	}{
		{name: "empty object", answer: answerOf{status: 200, body: `{}`},
			check: func(t *testing.T, s *socketio.Socket) {
				if id := namespaces.IdentityOf(s); id.User.ID != s.ID() || id.Data != nil {
					t.Errorf("identity = %+v, want the anonymous one without data", id)
				}
			}},
		{name: "204", answer: answerOf{status: 204, body: ``}},
		{name: "user, rooms and data", answer: answerOf{status: 200, body: `{"user":{"id":"u-42","name":"Ann"},"rooms":["lobby","team:red"],"data":{"team":"red","n":[1,2]}}`},
			check: func(t *testing.T, s *socketio.Socket) {
				id := namespaces.IdentityOf(s)
				if id.User != (namespaces.User{ID: "u-42", Name: "Ann"}) {
					t.Errorf("user = %+v, want u-42 Ann", id.User)
				}
				if string(id.Data) != `{"team":"red","n":[1,2]}` {
					t.Errorf("data = %s", id.Data)
				}
				if rooms := namespaces.SocketRooms(s); !reflect.DeepEqual(rooms, []string{"lobby", "team:red", "user:u-42"}) {
					t.Errorf("rooms = %v, want the hook's rooms and the user room of its user", rooms)
				}
			}},
		{name: "user without a name", answer: answerOf{status: 200, body: `{"user":{"id":"u-7"}}`},
			check: func(t *testing.T, s *socketio.Socket) {
				if u := namespaces.IdentityOf(s).User; u != (namespaces.User{ID: "u-7", Name: "u-7"}) {
					t.Errorf("user = %+v, want u-7 named u-7", u)
				}
			}},
		{name: "own user room", answer: answerOf{status: 200, body: `{"user":{"id":"u-8"},"rooms":["user:u-8"]}`}},
		{name: "refused with 200 error", answer: answerOf{status: 200, body: `{"error":{"code":"banned","message":"go away"}}`},
			refused: "banned", code: "banned", message: "go away"},
		{name: "bare 403", answer: answerOf{status: 403, body: ``}, refused: "forbidden", code: "forbidden"},
		{name: "bare 401", answer: answerOf{status: 401, body: `not json`}, refused: "unauthorized", code: "unauthorized"},
		{name: "4xx with error", answer: answerOf{status: 409, body: `{"error":{"code":"full","message":"the game is full"}}`},
			refused: "full", code: "full", message: "the game is full"},
		{name: "500", answer: answerOf{status: 500, body: `{"error":{"code":"x"}}`}, refused: "unavailable", code: "unavailable"},
		{name: "503", answer: answerOf{status: 503, body: ``}, refused: "unavailable", code: "unavailable"},
		{name: "timeout", answer: answerOf{hang: true}, refused: "unavailable", code: "unavailable"},
		{name: "garbage", answer: answerOf{status: 200, body: `<html>oops</html>`}, refused: "internal", code: "internal"},
		{name: "wrong type", answer: answerOf{status: 200, body: `{"rooms":"lobby"}`}, refused: "internal", code: "internal"},
		{name: "bad room name", answer: answerOf{status: 200, body: `{"rooms":["ok","not a room!"]}`}, refused: "internal", code: "internal"},
		{name: "another user's room", answer: answerOf{status: 200, body: `{"user":{"id":"u-9"},"rooms":["user:u-1"]}`}, refused: "internal", code: "internal"},
		{name: "more rooms than a socket may have", answer: answerOf{status: 200, body: string(manyRooms)}, refused: "internal", code: "internal"},
		{name: "10 MB", answer: answerOf{status: 200, body: `{"data":"` + strings.Repeat("x", 10<<20) + `"}`}, refused: "internal", code: "internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b.onConnect(func(connectBody) answerOf { return tt.answer })
			c, cerr := hookDial(t, ts, "/", hookDialOptions{})
			if tt.refused == "" {
				if cerr != nil {
					t.Fatalf("refused: %v", cerr)
				}
				if tt.check != nil {
					tt.check(t, hookedSocket(t, ts, "/", c))
				}
				return
			}
			if cerr == nil {
				t.Fatalf("connected, want connect_error %s", tt.refused)
			}
			data, _ := cerr["data"].(map[string]any)
			if cerr["message"] != tt.refused || data["code"] != tt.code {
				t.Errorf("connect_error = %v, want message %s and data.code %s", cerr, tt.refused, tt.code)
			}
			if tt.message != "" && data["message"] != tt.message {
				t.Errorf("connect_error data.message = %v, want %q", data["message"], tt.message)
			}
		})
	}
}

// TestHookConnectUnreachable: a backend that is not there refuses every connect with
// unavailable, and the socket can try again on the same connection.
func TestHookConnectUnreachable(t *testing.T) {
	b := newTestBackend(t)
	cfg := hookConfig(b, true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.HookURL = "http://" + ln.Addr().String() + "/hooks"
	ln.Close() // nothing listens there now
	ts := startServer(t, cfg)
	for _, nsp := range []string{"/", "/chat", "/relay"} {
		_, cerr := hookDial(t, ts, nsp, hookDialOptions{})
		if cerr == nil || cerr["message"] != "unavailable" {
			t.Errorf("%s: connect_error = %v, want unavailable", nsp, cerr)
		}
	}
	if n := counterValue(t, ts.metrics, "switchboard_hook_requests_total", "hook=connect", "outcome=unreachable"); n != 3 {
		t.Errorf("unreachable connects counted %v, want 3", n)
	}
}

// TestHookConnectJWT: with JWT the token's user stays whatever the hook says, and the hook is
// asked after the token was checked (a bad token never reaches it).
func TestHookConnectJWT(t *testing.T) {
	b := newTestBackend(t)
	users := make(chan namespaces.User, 2)
	b.onConnect(func(req connectBody) answerOf {
		users <- req.Socket.User
		return answerOf{status: 200, body: `{"user":{"id":"someone-else"},"rooms":["team:1"],"data":7}`}
	})
	cfg := hookConfig(b, true)
	cfg.JWTSecret = testSecret
	ts := startServer(t, cfg)

	token := hsToken(t, "u1", inAnHour(), map[string]any{"name": "Uno"})
	b.forbid(token)
	auth, _ := json.Marshal(map[string]any{"token": token})
	c := mustHookDial(t, ts, "/", hookDialOptions{auth: string(auth)})
	if u := receive(t, "the connect hook", users); u != (namespaces.User{ID: "u1", Name: "Uno"}) {
		t.Errorf("hook told user %+v, want the token's", u)
	}
	s := hookedSocket(t, ts, "/", c)
	id := namespaces.IdentityOf(s)
	if id.User.ID != "u1" || string(id.Data) != "7" {
		t.Errorf("identity = %+v, want the token's user u1 and the hook's data", id)
	}
	if rooms := namespaces.SocketRooms(s); !slices.Equal(rooms, []string{"team:1", "user:u1"}) {
		t.Errorf("rooms = %v", rooms)
	}

	_, cerr := hookDial(t, ts, "/", hookDialOptions{auth: `{"token":"bad"}`})
	if cerr == nil || cerr["message"] != "unauthorized" {
		t.Errorf("bad token: %v, want unauthorized", cerr)
	}
	if n := b.count("connect"); n != 1 {
		t.Errorf("connect hook asked %d times, want once (not for the bad token)", n)
	}
}

// TestHookConnectOnEveryNamespace: the hook is asked on /, /chat, /relay and --namespaces ones,
// never on a namespace without it (hooks off); its rooms are joined on each.
func TestHookConnectOnEveryNamespace(t *testing.T) {
	b := newTestBackend(t)
	seen := make(chan string, 8)
	b.onConnect(func(req connectBody) answerOf {
		seen <- req.Socket.Namespace
		return answerOf{status: 200, body: `{"rooms":["from-hook"]}`}
	})
	cfg := hookConfig(b, true)
	cfg.Namespaces = []string{"/game", "/doc/v1"}
	ts := startServer(t, cfg)
	for _, nsp := range []string{"/", "/chat", "/relay", "/game", "/doc/v1"} {
		c := mustHookDial(t, ts, nsp, hookDialOptions{})
		if got := receive(t, "the connect hook", seen); got != nsp {
			t.Errorf("hook told namespace %s, want %s", got, nsp)
		}
		if !hookedSocket(t, ts, nsp, c).In("from-hook") {
			t.Errorf("%s: the hook's room was not joined", nsp)
		}
	}
}
