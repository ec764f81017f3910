package server

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	sio "github.com/zishang520/socket.io/clients/socket/v3"
)

// hostileValues are JSON values no handler expects: every JSON type, wrong types in every
// field the contract has, and 1000-deep nesting. Names of the expensive ones end in "deep".
func hostileValues() map[string]string {
	deepArray := strings.Repeat("[", 1000) + strings.Repeat("]", 1000)
	deepObject := strings.Repeat(`{"a":`, 1000) + "1" + strings.Repeat("}", 1000)
	v := map[string]string{
		"null": "null", "number": "12345678901234567890", "negative": "-1.5e300", "bool": "true",
		"string": `"subscribe"`, "empty array": "[]", "empty object": "{}",
		"array deep": deepArray, "object deep": deepObject,
		"rooms deep":         `{"rooms":` + deepArray + `}`,
		"rooms list deep":    `{"rooms":[null,1,true,[],{},` + deepArray + `]}`,
		"room deep":          `{"room":` + deepObject + `}`,
		"every field wrong":  `{"rooms":{},"room":[],"text":{},"typing":"yes","before":[],"limit":"ten","token":1}`,
		"room too long":      `{"room":"` + strings.Repeat("r", 129) + `","rooms":["` + strings.Repeat("r", 129) + `"]}`,
		"text too long":      `{"room":"r","text":"` + strings.Repeat("t", 4001) + `"}`,
		"limit out of range": `{"room":"r","limit":1e308}`,
	}
	wrong := []string{"null", "0", "-1.5e300", "true", `"x"`, "[]", "{}", `[null,1,{}]`}
	for _, field := range []string{"rooms", "room", "text", "typing", "before", "limit", "token"} {
		for i, w := range wrong {
			v[field+" wrong "+strings.Repeat("*", i+1)] = `{"` + field + `":` + w + `}`
		}
	}
	return v
}

// TestHostilePayloads sends every contract event, and a few others, with every hostile value,
// with and without an ack, to every namespace. Nothing may panic, every hostile subscribe or
// unsubscribe gets an error ack, and the socket and a bystander keep working.
func TestHostilePayloads(t *testing.T) {
	cfg := testConfig()
	cfg.MaxPayload = 4 << 20
	cfg.Limits.EventRate = 0 // the barrage is not a flood test
	ts := startServer(t, cfg)

	bystander := dial(t, ts.URL, dialOptions{transports: transportSets["websocket"]})
	call(t, bystander, "subscribe", map[string]any{"rooms": []any{"calm"}})

	c := mustRawDial(t, ts, "/")
	sids := map[string]string{"/": c.sid}
	for _, ns := range ts.namespaces() {
		if ns.Name() != "/" {
			if err := c.join(ns.Name()); err != nil {
				t.Fatalf("join %s: %v", ns.Name(), err)
			}
			sids[ns.Name()] = c.sid
		}
	}
	// Reserved names ("connect", "disconnecting", …) are a protocol error that closes the
	// connection, as in Node: TestHostileFrames sends those.
	events := append([]string{"unknown", "", "error", "__proto__", "constructor"}, contractReceived...)
	values := hostileValues()
	huge, _ := json.Marshal(strings.Repeat("é", 500_000)) // 1 MB of UTF-8 (500,000 characters)
	hugePayloads := map[string]string{
		"subscribe": `{"rooms":[` + string(huge) + `]}`, "unsubscribe": `{"rooms":[` + string(huge) + `]}`,
		"chat:join": `{"room":` + string(huge) + `}`, "chat:leave": `{"room":` + string(huge) + `}`,
		"chat:typing": `{"room":` + string(huge) + `,"typing":true}`, "chat:history": `{"room":` + string(huge) + `}`,
		"chat:send": `{"room":"r","text":` + string(huge) + `}`, "auth:refresh": `{"token":` + string(huge) + `}`,
		"unknown": `{` + string(huge) + `:1}`,
	}

	// Acks are read while the barrage is sent, as a client should: one that does not read is a
	// slow consumer and gets dropped.
	type ack struct {
		id   int
		args []map[string]any
	}
	acks := make(chan ack, 1024)
	readErr := make(chan error, 1)
	go func() {
		for {
			msg, err := c.read()
			if err != nil {
				readErr <- err
				close(acks)
				return
			}
			body, ok := strings.CutPrefix(msg, "43")
			if !ok {
				continue
			}
			end := strings.IndexByte(body, '[')
			var a ack
			if end < 0 || json.Unmarshal([]byte(body[:end]), &a.id) != nil {
				continue // an ack of another namespace ("43/chat,12[…]")
			}
			if err := json.Unmarshal([]byte(body[end:]), &a.args); err != nil || len(a.args) != 1 {
				a.args = nil
			}
			acks <- a
		}
	}()

	id := 0
	mustFail := map[int]bool{} // ids of requests on "/" that the root namespace must refuse
	for _, ns := range ts.namespaces() {
		for _, ev := range events {
			for name, v := range values {
				if err := c.emit(ns.Name(), ev, v, id); err != nil {
					t.Fatalf("emit %s %s %q: %v", ns.Name(), ev, name, err)
				}
				if ns.Name() == "/" && (ev == "subscribe" || ev == "unsubscribe") {
					mustFail[id] = true
				}
				id++
				if !strings.HasSuffix(name, "deep") {
					if err := c.emit(ns.Name(), ev, v, -1); err != nil {
						t.Fatalf("emit %s %s %q: %v", ns.Name(), ev, name, err)
					}
				}
			}
			// A 1 MB string where the event reads its main field (the library takes ~0.5s
			// per MB under -race, so one per event), a 1 MB key, no argument, several.
			if huge, ok := hugePayloads[ev]; ok {
				if err := c.emit(ns.Name(), ev, huge, id); err != nil {
					t.Fatalf("emit %s huge: %v", ev, err)
				}
				if ns.Name() == "/" && (ev == "subscribe" || ev == "unsubscribe") {
					mustFail[id] = true
				}
				id++
			}
			_ = c.emit(ns.Name(), ev, "", id)
			id++
			_ = c.emit(ns.Name(), ev, `{"rooms":["a"]},{"rooms":["b"]},1,null`, id)
			id++
		}
	}
	// The sentinel: events of one connection are read in order, so once its ack is in, every
	// event above went through the middlewares and was queued on its socket.
	sentinel := id
	if err := c.emit("/", "subscribe", `{"rooms":["still-alive"]}`, sentinel); err != nil {
		t.Fatal(err)
	}
	for a := range acks {
		if a.args == nil {
			t.Fatalf("ack %d is not one object", a.id)
		}
		if a.id == sentinel {
			if a.args[0]["data"] == nil {
				t.Fatalf("the socket no longer works: %v", a.args[0])
			}
			break
		}
		if mustFail[a.id] && a.args[0]["error"] == nil {
			t.Errorf("hostile request %d succeeded: %v", a.id, a.args[0])
		}
		delete(mustFail, a.id)
	}
	select {
	case err := <-readErr:
		t.Fatalf("the connection broke: %v", err)
	default:
	}
	if len(mustFail) > 0 {
		t.Errorf("%d hostile subscribe/unsubscribe requests got no ack", len(mustFail))
	}
	// Every request was answered, so its handler ran; the sockets are still there.
	for name, sid := range sids {
		if sock := ts.IO().Namespace(name).Socket(sid); sock == nil || !sock.Connected() {
			t.Fatalf("socket of %s disconnected by hostile payloads", name)
		}
	}
	assertBystanderWorks(t, ts, bystander)
}

// TestHostileFrames sends malformed Socket.IO and Engine.IO frames, each on a connection of its
// own: the library may close that connection, the node must stay up for everyone else.
func TestHostileFrames(t *testing.T) {
	ts := startServer(t, testConfig())
	bystander := dial(t, ts.URL, dialOptions{transports: transportSets["websocket"]})
	call(t, bystander, "subscribe", map[string]any{"rooms": []any{"calm"}})
	frames := []string{
		`42[1,2]`, `42[]`, `42{}`, `42"x"`, `42[null]`, `42["subscribe"`, `42`, `4`, `49`, `4x`,
		`42/nowhere,["x"]`, `40/nowhere,`, `43999["late"]`, `431[]`, `44{}`, `41`, `45-["x"]`,
		`451-["x",{"_placeholder":true,"num":99}]`, `42999999999999999999999["x"]`,
		`42["connect",{}]`, `42["disconnecting",{}]`, `421["disconnect"]`, `42["newListener",{}]`,
		"5", "6", "9", "", "1", "3probe", "2", `42["x","` + strings.Repeat("\\", 999) + `"]`,
	}
	for _, f := range frames {
		c := mustRawDial(t, ts, "/")
		if err := c.write(f); err != nil {
			t.Fatalf("write %q: %v", f, err)
		}
		_ = c.conn.WriteMessage(websocket.BinaryMessage, []byte{0x04, 0xff, 0x00})
		c.close()
	}
	assertBystanderWorks(t, ts, bystander)
}

// assertBystanderWorks checks that an unrelated client still gets its acks and broadcasts.
func assertBystanderWorks(t *testing.T, ts *testServer, bystander *sio.Socket) {
	t.Helper()
	got := make(chan struct{}, 1)
	_ = bystander.On("news", func(...any) { got <- struct{}{} })
	ts.IO().Namespace("/").To("calm").Emit("news", "still here")
	receive(t, "the bystander's broadcast", got)
}
