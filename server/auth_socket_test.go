package server

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	sio "github.com/zishang520/socket.io/clients/socket/v3"

	"github.com/switchboard/switchboard/namespaces"
)

const testSecret = "a-test-secret-of-at-least-32-bytes!!"

// jwtServer is a test node that requires HS256 tokens signed with testSecret.
func jwtServer(t *testing.T) *testServer {
	t.Helper()
	cfg := testConfig()
	cfg.JWTSecret = testSecret
	return startServer(t, cfg)
}

// hsToken mints an HS256 token for sub, expiring at exp (Unix seconds; 0 = no exp claim).
func hsToken(t *testing.T, sub string, exp int64, extra jwt.MapClaims) string {
	t.Helper()
	c := jwt.MapClaims{"sub": sub}
	if exp != 0 {
		c["exp"] = exp
	}
	for k, v := range extra {
		c[k] = v
	}
	return mint(t, jwt.SigningMethodHS256, []byte(testSecret), c)
}

func inAnHour() int64 { return time.Now().Add(time.Hour).Unix() }

// rawConnect opens a websocket Engine.IO session by hand, sends the Socket.IO CONNECT packet for
// "/" with auth, and returns the server's answer: the CONNECT ("40{...}") or CONNECT_ERROR
// ("44{...}") packet. It speaks the wire protocol directly, as a non-browser client would.
func rawConnect(t *testing.T, url string, auth map[string]any, header http.Header) (typ string, body map[string]any) {
	t.Helper()
	conn, res, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(url, "http")+"/socket.io/?EIO=4&transport=websocket", header)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	res.Body.Close()
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, open, err := conn.ReadMessage(); err != nil || !strings.HasPrefix(string(open), "0{") {
		t.Fatalf("open packet %q, %v", open, err)
	}
	packet := "40"
	if auth != nil {
		raw, err := json.Marshal(auth)
		if err != nil {
			t.Fatal(err)
		}
		packet += string(raw)
	}
	if err := conn.WriteMessage(websocket.TextMessage, []byte(packet)); err != nil {
		t.Fatalf("send CONNECT: %v", err)
	}
	_, answer, err := conn.ReadMessage()
	if err != nil || len(answer) < 2 {
		t.Fatalf("answer %q, %v", answer, err)
	}
	if err := json.Unmarshal(answer[2:], &body); err != nil {
		t.Fatalf("answer %q: %v", answer, err)
	}
	return string(answer[:2]), body
}

func TestAuthRefusals(t *testing.T) {
	ts := jwtServer(t)
	bearer := func(v string) http.Header { return http.Header{"Authorization": []string{v}} }
	tests := []struct {
		name   string
		auth   map[string]any
		header http.Header
		code   string // "" = connects
	}{
		{name: "no auth at all", code: TokenMissing},
		{name: "auth without token", auth: map[string]any{"name": "ada"}, code: TokenMissing},
		{name: "empty auth.token", auth: map[string]any{"token": ""}, code: TokenMissing},
		{name: "auth.token not a string", auth: map[string]any{"token": 42}, code: TokenMissing},
		{name: "Basic header", header: bearer("Basic dXNlcjpwYXNz"), code: TokenMissing},
		{name: "garbage token", auth: map[string]any{"token": "not-a-jwt"}, code: TokenInvalid},
		{name: "wrong signature", auth: map[string]any{"token": mint(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-32"), jwt.MapClaims{"sub": "alice"})}, code: TokenInvalid},
		{name: "alg none", auth: map[string]any{"token": mint(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"sub": "alice"})}, code: TokenInvalid},
		{name: "no sub", auth: map[string]any{"token": hsToken(t, "", inAnHour(), nil)}, code: TokenInvalid},
		{name: "rooms not a list", auth: map[string]any{"token": hsToken(t, "alice", inAnHour(), jwt.MapClaims{"rooms": "news"})}, code: TokenInvalid},
		{name: "expired", auth: map[string]any{"token": hsToken(t, "alice", time.Now().Add(-time.Minute).Unix(), nil)}, code: TokenExpired},
		{name: "expired in the header", header: bearer("Bearer " + hsToken(t, "alice", time.Now().Add(-time.Minute).Unix(), nil)), code: TokenExpired},
		{name: "valid auth.token", auth: map[string]any{"token": hsToken(t, "alice", inAnHour(), nil)}},
		{name: "valid Bearer header", header: bearer("Bearer " + hsToken(t, "alice", inAnHour(), nil))},
		{name: "auth.token wins over the header", auth: map[string]any{"token": "junk"}, header: bearer("Bearer " + hsToken(t, "alice", inAnHour(), nil)), code: TokenInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ, body := rawConnect(t, ts.URL, tt.auth, tt.header)
			if tt.code == "" {
				if typ != "40" || body["sid"] == nil {
					t.Fatalf("answer %s %v, want a CONNECT with a sid", typ, body)
				}
				return
			}
			data, _ := body["data"].(map[string]any)
			if typ != "44" || body["message"] != "unauthorized" || data["code"] != tt.code {
				t.Fatalf("answer %s %v, want CONNECT_ERROR unauthorized %s", typ, body, tt.code)
			}
		})
	}
}

func TestAuthRefusalGoClient(t *testing.T) {
	ts := jwtServer(t)
	_, cerr := tryConnect(t, ts.URL, dialOptions{auth: map[string]any{"token": hsToken(t, "alice", time.Now().Add(-time.Minute).Unix(), nil)}})
	if cerr == nil {
		t.Fatal("connected with an expired token")
	}
	data, _ := cerr.Data.(map[string]any)
	if cerr.Message != "unauthorized" || data["code"] != TokenExpired {
		t.Fatalf("connect_error %q %v, want unauthorized token_expired", cerr.Message, cerr.Data)
	}
}

func TestAuthIdentityAndRooms(t *testing.T) {
	ts := jwtServer(t)
	aliceTok := hsToken(t, "alice", inAnHour(), jwt.MapClaims{"name": "Alice", "rooms": []string{"news", "prices:*"}})
	tab1, cerr := tryConnect(t, ts.URL, dialOptions{auth: map[string]any{"token": aliceTok}})
	if cerr != nil {
		t.Fatalf("alice refused: %v", cerr.Data)
	}
	tab2, _ := tryConnect(t, ts.URL, dialOptions{header: http.Header{"Authorization": {"Bearer " + aliceTok}}})
	bob, _ := tryConnect(t, ts.URL, dialOptions{auth: map[string]any{"token": hsToken(t, "bob", inAnHour(), nil)}})
	if tab2 == nil || bob == nil || !tab2.Connected() || !bob.Connected() {
		t.Fatal("tab2 or bob not connected")
	}

	t.Run("rooms claim", func(t *testing.T) {
		tests := []struct {
			name  string
			rooms []any
			code  string
		}{
			{"listed room and prefix", []any{"news", "prices:EURUSD"}, ""},
			{"prefix matches the empty suffix", []any{"prices:"}, ""},
			{"own user room", []any{"user:alice"}, ""},
			{"room outside the claim", []any{"sports"}, namespaces.CodeForbidden},
			{"one denied room denies the request", []any{"news", "sports"}, namespaces.CodeForbidden},
			{"another user's room", []any{"user:bob"}, namespaces.CodeForbidden},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got := call(t, tab1, "subscribe", map[string]any{"rooms": tt.rooms})
				if tt.code != "" {
					if e, _ := got["error"].(map[string]any); e["code"] != tt.code {
						t.Fatalf("subscribe = %v, want %s", got, tt.code)
					}
					return
				}
				data, ok := got["data"].(map[string]any)
				if !ok {
					t.Fatalf("subscribe = %v, want data", got)
				}
				rooms := toStrings(data["rooms"])
				if !slices.Contains(rooms, "user:alice") {
					t.Fatalf("rooms %v lack user:alice", rooms)
				}
				for _, r := range tt.rooms {
					if !slices.Contains(rooms, r.(string)) {
						t.Fatalf("rooms %v lack %v", rooms, r)
					}
				}
			})
		}
	})

	t.Run("no claim: any room but others' user rooms", func(t *testing.T) {
		if got := call(t, bob, "subscribe", map[string]any{"rooms": []any{"sports", "anything"}}); got["data"] == nil {
			t.Fatalf("bob subscribe = %v, want data", got)
		}
		if e, _ := call(t, bob, "subscribe", map[string]any{"rooms": []any{"user:alice"}})["error"].(map[string]any); e["code"] != namespaces.CodeForbidden {
			t.Fatalf("bob joined user:alice")
		}
	})

	t.Run("user room reaches every tab", func(t *testing.T) {
		notes := func(s *sio.Socket) chan any {
			ch := make(chan any, 4)
			_ = s.On("note", func(args ...any) { ch <- args[0] })
			return ch
		}
		n1, n2, nb := notes(tab1), notes(tab2), notes(bob)
		nsp := ts.IO().Namespace("/")
		if err := nsp.To("user:alice").Emit("note", "for alice"); err != nil {
			t.Fatal(err)
		}
		if err := nsp.To("user:bob").Emit("note", "for bob"); err != nil {
			t.Fatal(err)
		}
		for name, ch := range map[string]chan any{"tab1": n1, "tab2": n2} {
			if got := receive(t, name+" note", ch); got != "for alice" {
				t.Fatalf("%s got %v", name, got)
			}
		}
		// Bob's own note was emitted after Alice's: had he got hers, it would come first.
		if got := receive(t, "bob note", nb); got != "for bob" {
			t.Fatalf("bob got %v", got)
		}
	})

	t.Run("socket data carries the user", func(t *testing.T) {
		sockets, err := ts.IO().Namespace("/").All().FetchSockets(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var users []string
		for _, rs := range sockets {
			id, ok := namespaces.IdentityFromData(rs.Data)
			if !ok {
				t.Fatalf("socket %s has no identity", rs.ID)
			}
			users = append(users, id.User.ID+"/"+id.User.Name)
		}
		sort.Strings(users)
		eq(t, users, []string{"alice/Alice", "alice/Alice", "bob/bob"})
	})
}

// expiryWatch records auth:expired and disconnect, in order.
type expiryWatch struct {
	expired    chan map[string]any
	disconnect chan string
	order      chan string
}

func watchExpiry(s *sio.Socket) *expiryWatch {
	w := &expiryWatch{expired: make(chan map[string]any, 1), disconnect: make(chan string, 1), order: make(chan string, 4)}
	_ = s.On("auth:expired", func(args ...any) {
		w.order <- "auth:expired"
		m, _ := args[0].(map[string]any)
		w.expired <- m
	})
	_ = s.On("disconnect", func(args ...any) {
		w.order <- "disconnect"
		reason, _ := args[0].(string)
		w.disconnect <- reason
	})
	return w
}

func (w *expiryWatch) expect(t *testing.T, exp int64) {
	t.Helper()
	got := receive(t, "auth:expired", w.expired)
	if n, _ := got["exp"].(float64); int64(n) != exp {
		t.Fatalf("auth:expired %v, want exp %d", got, exp)
	}
	if reason := receive(t, "disconnect", w.disconnect); reason != "io server disconnect" {
		t.Fatalf("disconnect reason %q, want io server disconnect", reason)
	}
	if first := <-w.order; first != "auth:expired" {
		t.Fatalf("%s came first, want auth:expired before the disconnect", first)
	}
}

func TestAuthExpiry(t *testing.T) {
	ts := jwtServer(t)
	exp := time.Now().Add(4 * time.Second).Unix() // room for a retried connection attempt
	c, cerr := tryConnect(t, ts.URL, dialOptions{auth: map[string]any{"token": hsToken(t, "alice", exp, nil)}, reconnect: true})
	if cerr != nil {
		t.Fatalf("refused: %v", cerr.Data)
	}
	w := watchExpiry(c)
	// The server arms the timer in its "connection" listeners, which run right after it wrote the
	// CONNECT answer the client has just read.
	waitFor(t, "the expiry timer to be armed", func() bool { return ts.auth.timers.Load() == 1 })
	w.expect(t, exp)
	if time.Now().Before(time.Unix(exp, 0)) {
		t.Fatalf("disconnected before exp")
	}
	waitFor(t, "the socket to leave the namespace", func() bool { return ts.IO().Namespace("/").Len() == 0 })
	eq(t, ts.auth.timers.Load(), int64(0))
}

func TestAuthRefresh(t *testing.T) {
	ts := jwtServer(t)
	exp := time.Now().Add(4 * time.Second).Unix() // room for a retried connection attempt
	c, cerr := tryConnect(t, ts.URL, dialOptions{auth: map[string]any{"token": hsToken(t, "alice", exp, jwt.MapClaims{"rooms": []string{"news"}})}})
	if cerr != nil {
		t.Fatalf("refused: %v", cerr.Data)
	}
	w := watchExpiry(c)
	later := inAnHour()
	errCode := func(got map[string]any) any {
		e, _ := got["error"].(map[string]any)
		return e["code"]
	}
	refreshErrors := []struct {
		name    string
		payload any
		code    string
	}{
		{"another sub", map[string]any{"token": hsToken(t, "mallory", later, nil)}, namespaces.CodeForbidden},
		{"expired token", map[string]any{"token": hsToken(t, "alice", time.Now().Add(-time.Minute).Unix(), nil)}, namespaces.CodeUnauthorized},
		{"garbage token", map[string]any{"token": "nope"}, namespaces.CodeUnauthorized},
		{"wrong signature", map[string]any{"token": mint(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-32"), jwt.MapClaims{"sub": "alice", "exp": later})}, namespaces.CodeUnauthorized},
		{"expires before the current token", map[string]any{"token": hsToken(t, "alice", exp-1, nil)}, namespaces.CodeUnauthorized},
		{"token not a string", map[string]any{"token": 5}, namespaces.CodeBadRequest},
		{"no token", map[string]any{}, namespaces.CodeBadRequest},
		{"payload not an object", "token", namespaces.CodeBadRequest},
	}
	for _, tt := range refreshErrors {
		t.Run(tt.name, func(t *testing.T) {
			if got := call(t, c, EventAuthRefresh, tt.payload); errCode(got) != tt.code {
				t.Fatalf("auth:refresh = %v, want %s", got, tt.code)
			}
		})
	}

	got := call(t, c, EventAuthRefresh, map[string]any{"token": hsToken(t, "alice", later, jwt.MapClaims{"name": "Alice B.", "rooms": []string{"sports"}})})
	data, ok := got["data"].(map[string]any)
	if !ok || data["exp"] != float64(later) {
		t.Fatalf("auth:refresh = %v, want data.exp %d", got, later)
	}
	// The new rooms claim applies to what comes next.
	if errCode(call(t, c, "subscribe", map[string]any{"rooms": []any{"news"}})) != namespaces.CodeForbidden {
		t.Fatal("news still allowed after the refresh")
	}
	if got := call(t, c, "subscribe", map[string]any{"rooms": []any{"sports"}}); got["data"] == nil {
		t.Fatalf("sports after the refresh = %v", got)
	}
	sock := ts.IO().Namespace("/").Socket(c.Id())
	if sock == nil {
		t.Fatal("server lost the socket")
	}
	id := namespaces.IdentityOf(sock)
	eq(t, id.User, namespaces.User{ID: "alice", Name: "Alice B."})
	eq(t, id.Exp, later)

	// The first token's exp passes without auth:expired.
	select {
	case m := <-w.expired:
		t.Fatalf("auth:expired %v after a refresh", m)
	case reason := <-w.disconnect:
		t.Fatalf("disconnected (%s) after a refresh", reason)
	case <-time.After(time.Until(time.Unix(exp, 0)) + time.Second):
	}
	if !c.Connected() {
		t.Fatal("disconnected after a refresh")
	}
	eq(t, ts.auth.timers.Load(), int64(1))
	c.Disconnect()
	waitFor(t, "the timer to stop", func() bool { return ts.auth.timers.Load() == 0 })
}
