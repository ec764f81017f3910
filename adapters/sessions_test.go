package adapters

import (
	"testing"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

func rooms(names ...string) *types.Set[socket.Room] {
	set := types.NewSet[socket.Room]()
	for _, n := range names {
		set.Add(socket.Room(n))
	}
	return set
}

// broadcast keeps an event with one argument the way Broadcast does and returns its offset.
func broadcast(s *sessions, arg any, to, except []string) string {
	p := &parser.Packet{Type: parser.EVENT, Data: []any{"e", arg}}
	s.keep(p, &socket.BroadcastOptions{Rooms: rooms(to...), Except: rooms(except...)})
	data := p.Data.([]any)
	return data[len(data)-1].(string)
}

func missedArgs(t *testing.T, session *socket.Session) []any {
	t.Helper()
	if session == nil {
		t.Fatal("no session restored")
	}
	var args []any
	for _, m := range session.MissedPackets {
		args = append(args, m.([]any)[1])
	}
	return args
}

func TestSessionsRestoreWhatReachedTheRooms(t *testing.T) {
	s := newSessions()
	s.window = 60_000
	s.persist(&socket.SessionToPersist{Sid: "s1", Pid: "p1", Rooms: rooms("s1", "news")})
	offset := broadcast(s, 0, []string{"news"}, nil)
	broadcast(s, 1, []string{"news"}, nil)
	broadcast(s, 2, []string{"sport"}, nil)           // not its room
	broadcast(s, 3, []string{"news"}, []string{"s1"}) // excepted
	broadcast(s, 4, nil, nil)                         // everyone
	broadcast(s, 5, []string{"sport", "news"}, nil)

	got := missedArgs(t, s.restore("p1", offset))
	want := []any{1, 4, 5}
	if len(got) != len(want) {
		t.Fatalf("missed %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("missed %v, want %v", got, want)
		}
	}
	if s.restore("p1", "no-such-offset") != nil {
		t.Fatal("restored from an offset never kept")
	}
	if s.restore("p2", offset) != nil {
		t.Fatal("restored an unknown session")
	}
}

func TestSessionsExpire(t *testing.T) {
	s := newSessions()
	s.window = 60_000
	s.persist(&socket.SessionToPersist{Sid: "s1", Pid: "p1", Rooms: rooms("s1")})
	old := broadcast(s, 0, nil, nil)
	recent := broadcast(s, 1, nil, nil)
	s.mu.Lock()
	s.packets[0].EmittedAt -= 120_000
	s.mu.Unlock()
	s.expire(s.packets[1].EmittedAt - 60_000)
	if s.restore("p1", old) != nil {
		t.Fatal("restored from an expired offset")
	}
	if got := missedArgs(t, s.restore("p1", recent)); len(got) != 0 {
		t.Fatalf("missed after the last packet: %v", got)
	}
	after := broadcast(s, 2, nil, nil) // sequence numbers still line up after the trim
	broadcast(s, 3, nil, nil)
	if got := missedArgs(t, s.restore("p1", after)); len(got) != 1 || got[0] != 3 {
		t.Fatalf("missed %v, want [3]", got)
	}

	s.mu.Lock()
	s.byPid["p1"].DisconnectedAt -= 120_000
	s.mu.Unlock()
	if s.restore("p1", after) != nil {
		t.Fatal("restored a session past the window")
	}
}
