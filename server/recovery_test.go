package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// connectWith joins nsp over c with a CONNECT carrying payload (JSON) and returns the CONNECT
// answer's payload and the messages that came before it (see awaitConnect).
func (c *rawClient) connectWith(t *testing.T, nsp, payload string) (map[string]any, []string) {
	t.Helper()
	if err := c.write("40" + nspPrefix(nsp) + payload); err != nil {
		t.Fatal(err)
	}
	answer, before, err := c.awaitConnect(nsp)
	if err != nil {
		t.Fatalf("waiting for CONNECT: %v", err)
	}
	return answer, before
}

// eventArgs decodes an event packet of "/" and returns its arguments (without the name).
func eventArgs(t *testing.T, msg, name string) []any {
	t.Helper()
	var args []any
	rest, ok := strings.CutPrefix(msg, "42")
	if !ok || json.Unmarshal([]byte(rest), &args) != nil || len(args) == 0 || args[0] != name {
		t.Fatalf("got %q, want event %s", msg, name)
	}
	return args[1:]
}

// event reads the next message, which must be event name, and returns its arguments.
func (c *rawClient) event(t *testing.T, name string) []any {
	t.Helper()
	msg, err := c.read()
	if err != nil {
		t.Fatalf("waiting for %s: %v", name, err)
	}
	return eventArgs(t, msg, name)
}

// A client that comes back within the recovery window with its session id and the offset of the
// last event it processed gets its socket id and rooms back and, in order, the broadcasts it
// missed: those to its rooms, not those to other rooms or excepting its rooms.
func TestRecoveryReplaysWhatWasMissed(t *testing.T) {
	ts := startServer(t, apiConfig()) // recovery on
	c := mustRawDial(t, ts, "")
	first, _ := c.connectWith(t, "/", "")
	sid, _ := first["sid"].(string)
	pid, _ := first["pid"].(string)
	if sid == "" || pid == "" {
		t.Fatalf("CONNECT answer %v: want sid and pid", first)
	}
	if reply := c.call(t, "/", "subscribe", `{"rooms":["news"]}`, 1); reply["data"] == nil {
		t.Fatalf("subscribe: %v", reply)
	}
	expectStatus(t, post("/emit", `{"rooms":["news"],"event":"n","args":[0]}`).do(t, ts.URL), 202)
	args := c.event(t, "n")
	offset, _ := args[len(args)-1].(string)
	if len(args) != 2 || offset == "" {
		t.Fatalf("first event args %v, want [0 <offset>]", args)
	}
	c.close()
	waitFor(t, "the server to see the socket go", func() bool {
		return ts.IO().Namespace("/").Socket(sid) == nil
	})

	for i := 1; i <= 3; i++ {
		expectStatus(t, post("/emit", fmt.Sprintf(`{"rooms":["news"],"event":"n","args":[%d]}`, i)).do(t, ts.URL), 202)
	}
	expectStatus(t, post("/emit", `{"rooms":["sport"],"event":"n","args":[-1]}`).do(t, ts.URL), 202)
	expectStatus(t, post("/emit", `{"rooms":["news"],"except":["news"],"event":"n","args":[-2]}`).do(t, ts.URL), 202)
	expectStatus(t, post("/emit", `{"event":"all","args":[4]}`).do(t, ts.URL), 202)

	back := mustRawDial(t, ts, "")
	again, missed := back.connectWith(t, "/", fmt.Sprintf(`{"pid":%q,"offset":%q}`, pid, offset))
	if again["sid"] != sid {
		t.Fatalf("recovered with sid %v, want %s", again["sid"], sid)
	}
	if len(missed) != 4 {
		t.Fatalf("missed events %q, want n 1, n 2, n 3, all 4", missed)
	}
	for i, msg := range missed[:3] {
		if got := eventArgs(t, msg, "n"); len(got) != 2 || got[0] != float64(i+1) {
			t.Fatalf("missed event %d: args %v", i+1, got)
		}
	}
	if got := eventArgs(t, missed[3], "all"); len(got) != 2 || got[0] != 4.0 {
		t.Fatalf("missed broadcast to all: args %v", got)
	}
	// Back in its room: the next broadcast reaches it too.
	expectStatus(t, post("/emit", `{"rooms":["news"],"event":"n","args":[5]}`).do(t, ts.URL), 202)
	if got := back.event(t, "n"); got[0] != 5.0 {
		t.Fatalf("after recovery: args %v", got)
	}
}
