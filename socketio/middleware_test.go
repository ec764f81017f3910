package socketio

import (
	"errors"
	"slices"
	"sync"
	"testing"
)

func TestMiddlewareRefusal(t *testing.T) {
	cases := []struct {
		name string
		err  error
		nsp  string
		want string // the CONNECT_ERROR's JSON as the client sees it
	}{
		{"ConnectError with data", &ConnectError{Message: "unauthorized", Data: map[string]any{"code": "token_missing"}}, "/",
			`{"message":"unauthorized","data":{"code":"token_missing"}}`},
		{"ConnectError without data", &ConnectError{Message: "forbidden"}, "/", `{"message":"forbidden"}`},
		{"ConnectError with string data", &ConnectError{Message: "x", Data: "why"}, "/custom", `{"message":"x","data":"why"}`},
		{"wrapped ConnectError", errors.Join(errors.New("ctx"), &ConnectError{Message: "unavailable"}), "/", `{"message":"unavailable"}`},
		{"plain error", errors.New("not today"), "/custom", `{"message":"not today"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var rec *recorder
			var ran []string
			var mu sync.Mutex
			ts := startServer(t, Config{}, func(srv *Server) {
				n := of(t, srv, tc.nsp)
				rec = record(n)
				n.Use(func(s *Socket) error {
					mu.Lock()
					ran = append(ran, "first")
					mu.Unlock()
					return nil
				})
				n.Use(func(s *Socket) error { return tc.err })
				n.Use(func(s *Socket) error {
					t.Error("a middleware after the refusal ran")
					return nil
				})
			})
			c := ts.dial()
			c.send(connectPacket(tc.nsp, ""))
			p := parsePacket(t, c.msg())
			if p.typ != 4 || p.nsp != tc.nsp || p.id != -1 {
				t.Fatalf("got %+v, want a CONNECT_ERROR on %s", p, tc.nsp)
			}
			b, _ := MarshalJSON(p.data)
			if !jsonEqual(t, string(b), tc.want) {
				t.Fatalf("CONNECT_ERROR %s, want %s", b, tc.want)
			}
			// The connection stays usable: the same namespace can be tried again.
			c.send(connectPacket(tc.nsp, ""))
			if p := parsePacket(t, c.msg()); p.typ != 4 {
				t.Fatalf("second try: %+v", p)
			}
			if len(rec.connected) != 0 {
				t.Fatal("OnConnection ran for a refused socket")
			}
			if n := ts.srv.Namespace(tc.nsp).Len(); n != 0 || ts.socketsKept() != 0 {
				t.Fatalf("%d sockets in the namespace, %d in the client", n, ts.socketsKept())
			}
			mu.Lock()
			defer mu.Unlock()
			if len(ran) != 2 {
				t.Fatalf("first middleware ran %d times", len(ran))
			}
		})
	}
}

func TestMiddlewareBlockingDoesNotBlockOthers(t *testing.T) {
	release := make(chan struct{})
	blocked := make(chan struct{}, 1)
	ts, rec := startRecorded(t, Config{}, func(n *Namespace) {
		n.Use(func(s *Socket) error {
			if s.Handshake().Auth["block"] == true {
				blocked <- struct{}{}
				<-release
			}
			return nil
		})
		record(of(t, n.srv, "/other"))
	})
	slow := ts.dial()
	slow.send(`0{"block":true}`)
	receive(t, "the middleware to block", blocked)

	fast := ts.dial()
	fast.connect("/", "")
	fast.roundTrip("/", 1)
	// The blocked socket's own connection is not held either: another namespace connects.
	slow.connect("/other", "")
	slow.roundTrip("/other", 2)

	close(release)
	slow.connected("/")
	slow.roundTrip("/", 3)
	for range 2 {
		receive(t, "OnConnection", rec.connected)
	}
}

func TestMiddlewareRoomsOfARefusedSocketAreGone(t *testing.T) {
	type change struct {
		room   string
		joined bool
	}
	var mu sync.Mutex
	var changes []change
	inMiddleware := make(chan *Socket, 1)
	proceed := make(chan struct{})
	ts := startServer(t, Config{}, func(srv *Server) {
		n := of(t, srv, "/")
		record(n)
		n.OnRoom(func(s *Socket, room string, joined bool) {
			mu.Lock()
			changes = append(changes, change{room, joined})
			mu.Unlock()
		})
		n.Use(func(s *Socket) error {
			s.Join("a", "b")
			if s.Handshake().Auth["refuse"] == true {
				inMiddleware <- s
				<-proceed
				return errors.New("refused")
			}
			return nil
		})
	})
	member := ts.dial()
	member.connect("/", "")
	refused := ts.dial()
	refused.send(`0{"refuse":true}`)
	s := receive(t, "the middleware", inMiddleware)
	n := ts.srv.Namespace("/")
	if got := n.Local().RoomSize("a"); got != 2 {
		t.Fatalf("room a has %d sockets during the middleware, want 2", got)
	}
	// A broadcast to its rooms does not reach a socket still connecting.
	if err := n.To("a").Emit("news", 1); err != nil {
		t.Fatal(err)
	}
	member.expect(`2["news",1]`)
	close(proceed)
	if p := parsePacket(t, refused.msg()); p.typ != 4 {
		t.Fatalf("got %+v, want the CONNECT_ERROR", p)
	}
	if got := n.Local().RoomSize("a") + n.Local().RoomSize("b"); got != 2 {
		t.Fatalf("rooms a and b hold %d sockets after the refusal, want the member's 2", got)
	}
	if rooms := s.Rooms(); len(rooms) != 0 || s.Connected() {
		t.Fatalf("refused socket: rooms %v, connected %v", rooms, s.Connected())
	}
	s.Join("c") // a late join of a refused socket is ignored
	if n.Local().RoomSize("c") != 0 {
		t.Fatal("a refused socket joined a room")
	}
	mu.Lock()
	defer mu.Unlock()
	joins, leaves := 0, 0
	for _, c := range changes {
		if c.joined {
			joins++
		} else {
			leaves++
		}
	}
	if joins != 4 || leaves != 2 || !slices.Contains(changes, change{"a", false}) || !slices.Contains(changes, change{"b", false}) {
		t.Fatalf("OnRoom saw %+v, want 4 joins and the refused socket's 2 leaves", changes)
	}
}
