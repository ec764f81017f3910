package socketio

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
)

func TestEvents(t *testing.T) {
	cases := []struct {
		name     string
		packet   string
		nsp      string
		event    string
		args     string // the arguments as JSON
		hasAck   bool
		ackReply string // what the client gets when the handler acks with the arguments
	}{
		{"without ack", `2["hello","world",1,{"a":[true,null]}]`, "/", "hello", `["world",1,{"a":[true,null]}]`, false, ""},
		{"with ack", `212["hello","world"]`, "/", "hello", `["world"]`, true, `312["world"]`},
		{"no arguments", `2["ping"]`, "/", "ping", `[]`, false, ""},
		{"no arguments, ack", `20["ping"]`, "/", "ping", `[]`, true, `30[]`},
		{"custom namespace", `2/custom,["hello",1]`, "/custom", "hello", `[1]`, false, ""},
		{"custom namespace, ack", `2/custom,99["hello",1]`, "/custom", "hello", `[1]`, true, `3/custom,99[1]`},
		{"numeric event name", `2[42,"x"]`, "/", "42", `["x"]`, false, ""},
		{"negative numeric event name", `25[-1]`, "/", "-1", `[]`, true, `35[]`},
		{"escaped event name", `2["a\"b\u00e9",""]`, "/", "a\"bé", `[""]`, false, ""},
		{"whitespace in the array", `2[ "spaced" , 1 ,"x" ]`, "/", "spaced", `[1,"x"]`, false, ""},
		{"large ack id", `29007199254740991["x"]`, "/", "x", `[]`, true, `39007199254740991[]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			recs := map[string]*recorder{}
			ts := startServer(t, Config{}, func(srv *Server) {
				recs["/"] = record(of(t, srv, "/"))
				if tc.nsp != "/" {
					recs[tc.nsp] = record(of(t, srv, tc.nsp))
				}
			})
			c := ts.dial()
			c.connect("/", "")
			if tc.nsp != "/" {
				c.connect(tc.nsp, "")
			}
			c.send(tc.packet)
			ev := receive(t, "the event", recs[tc.nsp].events)
			if ev.Name != tc.event || ev.HasAck() != tc.hasAck {
				t.Fatalf("event %q hasAck %v, want %q %v", ev.Name, ev.HasAck(), tc.event, tc.hasAck)
			}
			vals, err := ev.Values()
			if err != nil {
				t.Fatal(err)
			}
			b, _ := MarshalJSON(vals)
			if !jsonEqual(t, string(b), tc.args) || ev.Len() != len(vals) {
				t.Fatalf("arguments %s (Len %d), want %s", b, ev.Len(), tc.args)
			}
			for i := range ev.Len() {
				raw, err := ev.JSON(i)
				if err != nil {
					t.Fatal(err)
				}
				one, _ := MarshalJSON(vals[i])
				if !jsonEqual(t, string(raw), string(one)) {
					t.Fatalf("JSON(%d) = %s, Value = %s", i, raw, one)
				}
			}
			if _, err := ev.Value(ev.Len()); err != ErrNoArg {
				t.Fatalf("Value past the end: %v", err)
			}
			if got := ev.Ack(vals...); got != tc.hasAck {
				t.Fatalf("Ack() = %v", got)
			}
			if tc.hasAck {
				c.expect(tc.ackReply)
			}
			if ev.Ack() {
				t.Fatal("a second Ack sent")
			}
			if before := c.roundTrip("/", 777); len(before) != 0 {
				t.Fatalf("unexpected packets %q", before)
			}
			if ev.Socket().Namespace().Name() != tc.nsp {
				t.Fatalf("event's socket is on %s", ev.Socket().Namespace().Name())
			}
		})
	}
}

func TestEventArgsDecode(t *testing.T) {
	got := make(chan error, 1)
	ts := startServer(t, Config{}, func(srv *Server) {
		of(t, srv, "/").OnEvent(func(s *Socket, ev *Event) {
			var in struct {
				Room  string  `json:"room"`
				Text  *string `json:"text"`
				Count int     `json:"count"`
			}
			err := ev.Decode(0, &in)
			if err == nil && (in.Room != "r1" || in.Text != nil || in.Count != 3) {
				err = fmt.Errorf("decoded %+v", in)
			}
			if err == nil {
				var n int
				if ev.Decode(1, &n) == nil {
					err = fmt.Errorf("a string decoded into an int")
				}
			}
			if err == nil && ev.Decode(2, &in) != ErrNoArg {
				err = fmt.Errorf("argument 2 exists")
			}
			got <- err
		})
	})
	c := ts.dial()
	c.connect("/", "")
	c.send(`2["req",{"room":"r1","count":3,"extra":[1]},"nope"]`)
	if err := receive(t, "the handler", got); err != nil {
		t.Fatal(err)
	}
}

func TestAckExactlyOnce(t *testing.T) {
	results := make(chan [3]bool, 1)
	ts := startServer(t, Config{}, func(srv *Server) {
		n := of(t, srv, "/")
		record(n)
		n.OnEvent(func(s *Socket, ev *Event) {
			if ev.Name == "echo" {
				ev.Ack("sync")
				return
			}
			first := ev.Ack("a")
			second := ev.Ack("b")
			results <- [3]bool{first, second, ev.Acked()}
		})
	})
	c := ts.dial()
	c.connect("/", "")
	c.send(`25["twice"]`)
	if r := receive(t, "the handler", results); r != [3]bool{true, false, true} {
		t.Fatalf("Ack, Ack, Acked = %v", r)
	}
	c.expect(`35["a"]`)
	if before := c.roundTrip("/", 6); len(before) != 0 {
		t.Fatalf("after the ack: %q", before)
	}
	// Without an ack id, Ack sends nothing.
	c.send(`2["twice"]`)
	if r := receive(t, "the handler", results); r != [3]bool{false, false, false} {
		t.Fatalf("no ack id: Ack, Ack, Acked = %v", r)
	}
	if before := c.roundTrip("/", 7); len(before) != 0 {
		t.Fatalf("an ack without id: %q", before)
	}
}

// TestInvalidPacketsClose: what Node's parser or server refuses closes the connection, as the
// official suite checks ("4abc", "42{}", "42abc[...]") and more; nothing else is affected.
func TestInvalidPacketsClose(t *testing.T) {
	cases := []struct{ name, packet string }{
		{"unknown packet type (suite)", "abc"},
		{"invalid payload format (suite)", "2{}"},
		{"invalid ack id (suite)", `2abc["message-with-ack",1,"2",{"3":[false]}]`},
		{"packet type 7", `7["x"]`},
		{"empty message", ""},
		{"event without name", "2[]"},
		{"event name an object", `2[{"a":1}]`},
		{"event name null", `2[null]`},
		{"event name true", `2[true]`},
		{"event not an array", `2"hello"`},
		{"event without payload", "2"},
		{"truncated JSON", `2["x",`},
		{"trailing garbage", `2["x"]]`},
		{"two values", `2["x"]["y"]`},
		{"ack not an array", `31{"a":1}`},
		{"ack without payload", "31"},
		{"DISCONNECT with a payload", `1{"x":1}`},
		{"CONNECT with a string", `0/custom,"auth"`},
		{"CONNECT with invalid JSON", `0/custom,{`},
		{"binary event without count", `5-["x"]`},
		{"binary event without dash", `51["x",{"_placeholder":true,"num":0}]`},
		{"too many attachments", `511-["x"]`},
		{"binary data first", "<binary>"},
		{"connect", `2["connect"]`},
		{"connect_error", `2["connect_error",{}]`},
		{"disconnect", `2["disconnect","x"]`},
		{"disconnecting", `21["disconnecting"]`},
		{"newListener", `2["newListener"]`},
		{"removeListener", `2["removeListener"]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var protocolErrors atomic.Int32
			var rec *recorder
			ts := startServer(t, Config{OnProtocolError: func() { protocolErrors.Add(1) }}, func(srv *Server) {
				rec = record(of(t, srv, "/"))
				record(of(t, srv, "/custom"))
			})
			other := ts.dial()
			other.connect("/", "")
			c := ts.dial()
			sid, _ := c.connect("/", "")
			if tc.packet == "<binary>" {
				c.sendBinary([]byte{1, 2, 3})
			} else {
				c.send(tc.packet)
			}
			if got := c.waitClosed(); len(got) != 0 {
				t.Fatalf("got %q before the close", got)
			}
			if n := protocolErrors.Load(); n != 1 {
				t.Fatalf("OnProtocolError told %d times", n)
			}
			for {
				d := receive(t, "the disconnect", rec.disconnected)
				if d.sid == sid {
					if d.reason != ReasonForcedServer {
						t.Fatalf("disconnect reason %q, want %q", d.reason, ReasonForcedServer)
					}
					break
				}
			}
			if len(rec.events) != 0 {
				t.Fatalf("the handler got %q", (<-rec.events).Name)
			}
			other.roundTrip("/", 1)
		})
	}
}

func TestEventOrderUnderLoad(t *testing.T) {
	const n = 1000
	ts := startServer(t, Config{MaxQueue: 2 * n}, func(srv *Server) { record(of(t, srv, "/")) })
	var seen []string
	done := make(chan struct{})
	ns := ts.srv.Namespace("/")
	ns.OnEvent(func(s *Socket, ev *Event) {
		seen = append(seen, ev.Name) // one event of a socket at a time: no lock needed
		if ev.HasAck() {
			ev.Ack(ev.Name)
		}
		if len(seen) == n {
			close(done)
		}
	})
	c := ts.dial()
	c.connect("/", "")
	burst := make([]string, n)
	for i := range burst {
		if i%2 == 0 {
			burst[i] = fmt.Sprintf(`2["%d"]`, i)
		} else {
			burst[i] = fmt.Sprintf(`2%d["%d"]`, i, i)
		}
	}
	c.send(burst...)
	receive(t, "every event", done)
	for i, name := range seen {
		if name != fmt.Sprint(i) {
			t.Fatalf("event %d was %q: %v...", i, name, seen[:i+1])
		}
	}
	for i := 1; i < n; i += 2 {
		c.expect(fmt.Sprintf(`3%d["%d"]`, i, i))
	}
}

func TestBlockingHandlerHoldsOnlyItsSocket(t *testing.T) {
	release := make(chan struct{})
	blocked := make(chan string, 1)
	var handled atomic.Int32
	ts := startServer(t, Config{}, func(srv *Server) {
		for _, name := range []string{"/", "/custom"} {
			of(t, srv, name).OnEvent(func(s *Socket, ev *Event) {
				handled.Add(1)
				switch ev.Name {
				case "block":
					blocked <- s.ID()
					<-release
				case "echo":
					ev.Ack("sync")
				}
			})
		}
	})
	a := ts.dial()
	sidA, _ := a.connect("/", "")
	a.connect("/custom", "")
	b := ts.dial()
	b.connect("/", "")
	a.send(`2["block"]`, `21["echo"]`)
	if sid := receive(t, "the blocking handler", blocked); sid != sidA {
		t.Fatalf("blocked %s", sid)
	}
	// Another connection, and the same connection's other namespace, go on.
	for i := range 20 {
		b.roundTrip("/", 100+i)
		a.roundTrip("/custom", 200+i)
	}
	if got := handled.Load(); got != 41 {
		t.Fatalf("%d events handled, want the blocked one and the 40 others", got)
	}
	close(release)
	a.expect(`31["sync"]`)
}

func TestMaxQueueOverflow(t *testing.T) {
	const max = 4
	release := make(chan struct{})
	blocked := make(chan struct{}, 1)
	overflowed := make(chan string, 64)
	handled := make(chan string, 64)
	ts := startServer(t, Config{MaxQueue: max}, func(srv *Server) {
		n := of(t, srv, "/")
		n.OnEvent(func(s *Socket, ev *Event) {
			handled <- ev.Name
			if ev.Name == "block" {
				blocked <- struct{}{}
				<-release
			}
		})
		n.OnOverflow(func(s *Socket, ev *Event) {
			v, _ := ev.Value(0)
			overflowed <- fmt.Sprint(ev.Name, v, ev.HasAck())
			ev.Ack("rate_limited")
		})
	})
	c := ts.dial()
	c.connect("/", "")
	c.send(`2["block"]`)
	receive(t, "the blocking handler", blocked)
	var burst []string
	for i := range 10 {
		burst = append(burst, fmt.Sprintf(`2%d["e%d",%d]`, i, i, i))
	}
	c.send(burst...)
	// The queue takes max events; the 6 others overflow, in order, each acked by OnOverflow.
	for i := max; i < 10; i++ {
		want := fmt.Sprint(fmt.Sprintf("e%d", i), float64(i), true)
		if got := receive(t, "OnOverflow", overflowed); got != want {
			t.Fatalf("overflow %q, want %q", got, want)
		}
		c.expect(fmt.Sprintf(`3%d["rate_limited"]`, i))
	}
	close(release)
	receive(t, "block", handled)
	for i := range max {
		if got := receive(t, "a queued event", handled); got != fmt.Sprintf("e%d", i) {
			t.Fatalf("handled %q, want e%d", got, i)
		}
	}
	if len(overflowed) != 0 {
		t.Fatalf("%d more overflows", len(overflowed))
	}
	if !strings.HasPrefix(c.state(), "stayed") {
		t.Fatal("connection closed")
	}
}

// TestAckAfterDisconnect: an event answered after its socket left the namespace sends nothing
// (the client may already have connected the namespace again).
func TestAckAfterDisconnect(t *testing.T) {
	events := make(chan *Event, 1)
	ts, rec := startRecorded(t, Config{}, func(n *Namespace) {
		n.UseEvents(func(s *Socket, ev *Event) bool {
			if ev.Name == "later" {
				events <- ev
				return false
			}
			return true
		})
	})
	c := ts.dial()
	c.connect("/", "")
	c.send(`23["later"]`, "1")
	ev := receive(t, "the event", events)
	receive(t, "the disconnect", rec.disconnected)
	if ev.Ack("too late") {
		t.Fatal("Ack sent on a disconnected socket")
	}
	c.connect("/", "")
	if before := c.roundTrip("/", 4); len(before) != 0 {
		t.Fatalf("got %q", before)
	}
}
