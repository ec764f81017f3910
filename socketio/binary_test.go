package socketio

import (
	"bytes"
	"context"
	"fmt"
	"testing"
)

type file struct {
	Name string `json:"name"`
	Blob []byte `json:"blob"`
}

func TestServerSendsBinary(t *testing.T) {
	ts, rec := startRecorded(t, Config{}, func(root *Namespace) { record(of(t, root.srv, "/custom")) })
	c, s := ts.connectRoot(rec)
	s.Join("room")
	cases := []struct {
		name string
		emit func() error
		text string   // the packet's JSON part, compared as JSON
		head string   // what precedes it
		bins [][]byte // the attachments, in order
	}{
		{"a []byte", func() error { return s.Emit("bin", []byte{1, 2, 3}) },
			`["bin",{"_placeholder":true,"num":0}]`, "51-", [][]byte{{1, 2, 3}}},
		{"a struct with a []byte field", func() error { return s.Emit("file", file{"x", []byte{0, 255}}) },
			`["file",{"blob":{"_placeholder":true,"num":0},"name":"x"}]`, "51-", [][]byte{{0, 255}}},
		{"a pointer to that struct", func() error { return s.Emit("file", &file{"y", []byte{7}}) },
			`["file",{"blob":{"_placeholder":true,"num":0},"name":"y"}]`, "51-", [][]byte{{7}}},
		{"two, nested, in order", func() error {
			return s.Emit("two", []byte{1}, map[string]any{"b": []any{"s", []byte{2}}}, 3)
		}, `["two",{"_placeholder":true,"num":0},{"b":["s",{"_placeholder":true,"num":1}]},3]`, "52-", [][]byte{{1}, {2}}},
		{"an empty []byte", func() error { return s.Emit("empty", []byte{}) },
			`["empty",{"_placeholder":true,"num":0}]`, "51-", [][]byte{{}}},
		{"a nil []byte field is null", func() error { return s.Emit("file", file{Name: "z"}) },
			`["file",{"blob":null,"name":"z"}]`, "", nil},
		{"a broadcast", func() error { return ts.srv.Namespace("/").To("room").Emit("bc", []byte{5}) },
			`["bc",{"_placeholder":true,"num":0}]`, "51-", [][]byte{{5}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.emit(); err != nil {
				t.Fatal(err)
			}
			p := c.msg()
			want := "2"
			if tc.head != "" {
				want = tc.head
			}
			if len(p) < len(want) || p[:len(want)] != want || !jsonEqual(t, p[len(want):], tc.text) {
				t.Fatalf("got %q, want %s%s", p, want, tc.text)
			}
			for i, b := range tc.bins {
				if got := c.bin(); !bytes.Equal(got, b) {
					t.Fatalf("attachment %d: % x, want % x", i, got, b)
				}
			}
		})
	}
	t.Run("a binary ack, custom namespace", func(t *testing.T) {
		n := ts.srv.Namespace("/custom")
		n.OnEvent(func(s *Socket, ev *Event) { ev.Ack(map[string]any{"blob": []byte{9, 8}}) })
		c.connect("/custom", "")
		c.send(`2/custom,17["get"]`)
		p := c.msg()
		const head = "61-/custom,17"
		if len(p) < len(head) || p[:len(head)] != head || !jsonEqual(t, p[len(head):], `[{"blob":{"_placeholder":true,"num":0}}]`) {
			t.Fatalf("got %q", p)
		}
		if got := c.bin(); !bytes.Equal(got, []byte{9, 8}) {
			t.Fatalf("attachment % x", got)
		}
	})
}

func TestClientSendsBinary(t *testing.T) {
	cases := []struct {
		name    string
		packet  string
		bins    [][]byte
		value   string // Values, with []byte printed by %v
		json    string // JSON of every argument, as an array
		ackWant string // the ack reply when the handler acks with Values
	}{
		{"one buffer", `51-["up",{"_placeholder":true,"num":0}]`, [][]byte{{1, 2, 3}},
			"[[1 2 3]]", `[{"type":"Buffer","data":[1,2,3]}]`, ""},
		{"issue 18 item 7: keep the bytes", `51-["up",{"blob":{"_placeholder":true,"num":0}}]`, [][]byte{{0, 1, 2, 255}},
			"[map[blob:[0 1 2 255]]]", `[{"blob":{"type":"Buffer","data":[0,1,2,255]}}]`, ""},
		{"two, out of order, nested", `52-["up",{"a":{"_placeholder":true,"num":1}},[{"_placeholder":true,"num":0}],"s"]`, [][]byte{{1}, {2}},
			"[map[a:[2]] [[1]] s]", `[{"a":{"type":"Buffer","data":[2]}},[{"type":"Buffer","data":[1]}],"s"]`, ""},
		{"the same buffer twice", `51-["up",{"_placeholder":true,"num":0},{"_placeholder":true,"num":0}]`, [][]byte{{4}},
			"[[4] [4]]", `[{"type":"Buffer","data":[4]},{"type":"Buffer","data":[4]}]`, ""},
		{"with an ack, echoed back as binary", `51-8["up",{"_placeholder":true,"num":0}]`, [][]byte{{6, 7}},
			"[[6 7]]", `[{"type":"Buffer","data":[6,7]}]`, `61-8[{"_placeholder":true,"num":0}]`},
		{"zero attachments", `50-["up",1]`, nil, "[1]", `[1]`, ""},
		{"a placeholder in a plain event stays an object", `2["up",{"_placeholder":true,"num":0}]`, nil,
			"[map[_placeholder:true num:0]]", `[{"_placeholder":true,"num":0}]`, ""},
		{"an empty buffer", `51-["up",{"_placeholder":true,"num":0}]`, [][]byte{{}},
			"[[]]", `[{"type":"Buffer","data":[]}]`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts, rec := startRecorded(t, Config{}, nil)
			c := ts.dial()
			c.connect("/", "")
			c.send(tc.packet)
			c.sendBinary(tc.bins...)
			ev := receive(t, "the event", rec.events)
			vals, err := ev.Values()
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(vals); ev.Name != "up" || got != tc.value {
				t.Fatalf("event %q values %s, want %s", ev.Name, got, tc.value)
			}
			var parts []byte
			parts = append(parts, '[')
			for i := range ev.Len() {
				j, err := ev.JSON(i)
				if err != nil {
					t.Fatal(err)
				}
				if i > 0 {
					parts = append(parts, ',')
				}
				parts = append(parts, j...)
			}
			parts = append(parts, ']')
			if string(parts) != tc.json {
				t.Fatalf("JSON %s, want %s", parts, tc.json)
			}
			if ev.HasBinary() != (len(tc.bins) > 0) {
				t.Fatalf("HasBinary %v", ev.HasBinary())
			}
			if tc.ackWant != "" {
				ev.Ack(vals...)
				c.expect(tc.ackWant)
				if got := c.bin(); !bytes.Equal(got, tc.bins[0]) {
					t.Fatalf("echoed % x", got)
				}
			}
			c.roundTrip("/", 99)
		})
	}
	t.Run("Decode into a []byte field", func(t *testing.T) {
		ts, rec := startRecorded(t, Config{}, nil)
		c := ts.dial()
		c.connect("/", "")
		c.send(`51-["up",{"name":"f","blob":{"_placeholder":true,"num":0}}]`)
		c.sendBinary([]byte{1, 0, 1})
		var f file
		if err := receive(t, "the event", rec.events).Decode(0, &f); err != nil || f.Name != "f" || !bytes.Equal(f.Blob, []byte{1, 0, 1}) {
			t.Fatalf("decoded %+v %v", f, err)
		}
	})
}

// TestClientBinaryAck is issue 18 item 7 as the HTTP API meets it: a client's binary ack to an
// emit with ack keeps its bytes, and its JSON is Node's Buffer form.
func TestClientBinaryAck(t *testing.T) {
	ts, rec := startRecorded(t, Config{}, nil)
	c, s := ts.connectRoot(rec)
	s.Join("r")
	type result struct {
		acks []*Args
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		acks, _, err := ts.srv.Namespace("/").To("r").EmitWithAck(context.Background(), "q")
		ch <- result{acks, err}
	}()
	p := parsePacket(t, c.msg())
	c.send(fmt.Sprintf(`61-%d[{"blob":{"_placeholder":true,"num":0}}]`, p.id))
	c.sendBinary([]byte{0, 1, 2, 255})
	r := receive(t, "the acks", ch)
	if r.err != nil || len(r.acks) != 1 {
		t.Fatalf("acks %v %v", r.acks, r.err)
	}
	j, err := r.acks[0].JSON(0)
	if err != nil || string(j) != `{"blob":{"type":"Buffer","data":[0,1,2,255]}}` {
		t.Fatalf("ack JSON %s %v", j, err)
	}
}

// TestBadAttachments: what Node's parser refuses about attachments closes the connection.
func TestBadAttachments(t *testing.T) {
	ph := func(n string) string { return `{"_placeholder":true,"num":` + n + `}` }
	cases := []struct {
		name   string
		packet string
		bins   [][]byte
		after  string // a text packet sent after the attachments, "" for none
		events int    // events handled before the close (a complete packet before the fault)
	}{
		{"binary data when no packet waits", "", [][]byte{{1}}, "", 0},
		{"one attachment too many", `51-["x",` + ph("0") + `]`, [][]byte{{1}, {2}}, "", 1},
		{"a text packet while attachments are due", `52-["x",` + ph("0") + `,` + ph("1") + `]`, [][]byte{{1}}, `2["y"]`, 0},
		{"a placeholder past the attachments", `51-["x",` + ph("1") + `]`, [][]byte{{1}}, "", 0},
		{"a missing attachment", `51-["x",` + ph("0") + `,` + ph("1") + `]`, [][]byte{{1}}, "", 0},
		{"a negative placeholder", `51-["x",` + ph("-1") + `]`, [][]byte{{1}}, "", 0},
		{"a fractional placeholder", `51-["x",` + ph("0.5") + `]`, [][]byte{{1}}, "", 0},
		{"a string placeholder", `51-["x",` + ph(`"0"`) + `]`, [][]byte{{1}}, "", 0},
		{"a placeholder without num", `51-["x",{"_placeholder":true}]`, [][]byte{{1}}, "", 0},
		{"a binary ack with a bad placeholder", `61-3[` + ph("2") + `]`, [][]byte{{1}}, "", 0},
		{"more than 10 attachments", `511-["x"]`, nil, "", 0},
		{"a negative count", `5-1-["x"]`, nil, "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts, rec := startRecorded(t, Config{}, nil)
			c := ts.dial()
			c.connect("/", "")
			if tc.packet != "" {
				c.send(tc.packet)
			}
			c.sendBinary(tc.bins...)
			if tc.after != "" {
				c.send(tc.after)
			}
			if got := c.waitClosed(); len(got) != 0 {
				t.Fatalf("got %q before the close", got)
			}
			receive(t, "the disconnect", rec.disconnected) // it runs behind any event queued
			if len(rec.events) != tc.events {
				t.Fatalf("the handler got %d events, want %d", len(rec.events), tc.events)
			}
		})
	}
}
