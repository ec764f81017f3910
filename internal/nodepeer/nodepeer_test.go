package nodepeer

import (
	"fmt"
	"testing"
	"time"
)

// Two peers on the machine's Redis see each other: the server count, a serverSideEmit with its
// ack, one from the emitter, and an error for an unknown command.
func TestPeers(t *testing.T) {
	prefix := fmt.Sprintf("nodepeer-test-%d", time.Now().UnixNano())
	o := Options{Adapter: "redis", RedisURL: "redis://127.0.0.1:6379/0", Prefix: prefix}
	a, b := Start(t, o), Start(t, o)
	if a.Port == 0 || a.UIDs["/"] == "" || a.URL == b.URL {
		t.Fatalf("peer a: %+v", a)
	}
	a.WaitServerCount("/", 2)
	b.WaitServerCount("", 2)
	var res struct {
		Err       *string `json:"err"`
		Responses []struct {
			From string `json:"from"`
			Port int    `json:"port"`
			Args []any  `json:"args"`
		} `json:"responses"`
	}
	a.Must("serverSideEmitWithAck", map[string]any{"event": "ping", "args": []any{1, Bin([]byte{1, 2})}}, &res)
	if res.Err != nil || len(res.Responses) != 1 || res.Responses[0].Port != b.Port {
		t.Fatalf("serverSideEmitWithAck = %+v", res)
	}
	ev := b.WaitEvent("sse", func(e Event) bool { return e.Kind == "sse" && e.Name == "ping" })
	if !ev.WithAck || len(ev.Args) != 2 || ev.Args[0] != float64(1) {
		t.Fatalf("sse event %s", ev.Raw)
	}
	a.Must("emitterSSE", map[string]any{"event": "from-emitter", "args": []any{"x"}}, nil)
	b.WaitEvent("the emitter's sse", func(e Event) bool { return e.Kind == "sse" && e.Name == "from-emitter" })
	if _, err := a.Call("nope", nil); err == nil {
		t.Fatalf("an unknown command succeeded")
	}
}
