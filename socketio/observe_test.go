package socketio

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/engineio"
)

// observed collects what the observing hooks (Config.OnConnOpen, OnConnClose, OnTraffic,
// Namespace.OnSent, OnData) were told.
type observed struct {
	mu       sync.Mutex
	opened   []string // engine ids
	closed   []string // reasons
	in, out  [2]int   // messages, bytes
	sent     []string // sid + " " + event name
	dataSeen []string // sids
}

func (o *observed) snapshot() observed {
	o.mu.Lock()
	defer o.mu.Unlock()
	return observed{opened: slices.Clone(o.opened), closed: slices.Clone(o.closed), in: o.in, out: o.out,
		sent: slices.Clone(o.sent), dataSeen: slices.Clone(o.dataSeen)}
}

func TestObservers(t *testing.T) {
	o := &observed{}
	cfg := Config{
		OnConnOpen: func(c *engineio.Conn) {
			o.mu.Lock()
			o.opened = append(o.opened, c.ID())
			o.mu.Unlock()
		},
		OnConnClose: func(_ *engineio.Conn, reason string) {
			o.mu.Lock()
			o.closed = append(o.closed, reason)
			o.mu.Unlock()
		},
		OnTraffic: func(in bool, bytes int) {
			o.mu.Lock()
			if in {
				o.in[0]++
				o.in[1] += bytes
			} else {
				o.out[0]++
				o.out[1] += bytes
			}
			o.mu.Unlock()
		},
	}
	ts, rec := startRecorded(t, cfg, func(n *Namespace) {
		n.OnSent(func(s *Socket, data []any) {
			name, _ := data[0].(string)
			o.mu.Lock()
			o.sent = append(o.sent, s.ID()+" "+name)
			o.mu.Unlock()
		})
		n.OnData(func(s *Socket) {
			o.mu.Lock()
			o.dataSeen = append(o.dataSeen, s.ID())
			o.mu.Unlock()
		})
	})
	c := ts.dial()
	sid, _ := c.connect("/", "")
	s := receive(t, "OnConnection", rec.connected)
	if got := o.snapshot().opened; !slices.Equal(got, []string{c.sid}) {
		t.Fatalf("OnConnOpen told of %v, want [%s]", got, c.sid)
	}

	cases := []struct {
		name string
		send func()
		want string // the packet the client reads ("" for an event with an ack id, checked apart)
	}{
		{"socket emit", func() { _ = s.Emit("one", 1) }, `2["one",1]`},
		{"broadcast", func() { _ = ts.srv.Namespace("/").Emit("two") }, `2["two"]`},
		{"broadcast to its room", func() { _ = ts.srv.Namespace("/").To(sid).Emit("three", "x") }, `2["three","x"]`},
		{"emit with ack", func() {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				_, _ = s.EmitWithAck(ctx, "four")
			}()
		}, ""},
		{"write volatile", func() { s.WriteVolatile(ts.srv.Namespace("/").Encode("five")) }, `2["five"]`},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := o.snapshot().out
			tc.send()
			got := c.msg()
			if tc.want == "" {
				p := parsePacket(t, got)
				if p.typ != 2 || !slices.Equal(p.data.([]any), []any{"four"}) {
					t.Fatalf("client read %q, want an event four with an ack id", got)
				}
			} else if got != tc.want {
				t.Fatalf("client read %q, want %q", got, tc.want)
			}
			waitFor(t, "OnSent", func() bool { return len(o.snapshot().sent) == i+1 })
			names := []string{"one", "two", "three", "four", "five"}
			if last := o.snapshot().sent[i]; last != sid+" "+names[i] {
				t.Fatalf("OnSent told of %q, want %q", last, sid+" "+names[i])
			}
			after := o.snapshot().out
			if after[0] != before[0]+1 || after[1] != before[1]+len(got)+1 { // "4" + the packet
				t.Fatalf("OnTraffic out: %v then %v for %d bytes", before, after, len(got)+1)
			}
		})
	}

	t.Run("incoming traffic", func(t *testing.T) {
		before := o.snapshot().in
		c.send(`2["hello"]`)
		receive(t, "event", rec.events)
		after := o.snapshot().in
		if after[0] != before[0]+1 || after[1] != before[1]+len(`2["hello"]`) {
			t.Fatalf("OnTraffic in: %v then %v", before, after)
		}
	})
	t.Run("acks are not sent events", func(t *testing.T) {
		n := len(o.snapshot().sent)
		c.roundTrip("/", 7)
		if got := len(o.snapshot().sent); got != n {
			t.Fatalf("an ack was reported as sent: %v", o.snapshot().sent[n:])
		}
	})
	t.Run("SetData", func(t *testing.T) {
		s.SetData(map[string]any{"a": 1})
		if got := o.snapshot().dataSeen; !slices.Equal(got, []string{sid}) {
			t.Fatalf("OnData told of %v, want [%s]", got, sid)
		}
	})
	t.Run("close", func(t *testing.T) {
		c.close()
		receive(t, "OnDisconnect", rec.disconnected)
		waitFor(t, "OnConnClose", func() bool { return len(o.snapshot().closed) == 1 })
		if got := o.snapshot().closed[0]; got != engineio.ReasonTransportClose && got != engineio.ReasonTransportError {
			t.Fatalf("OnConnClose reason %q", got)
		}
	})
}
