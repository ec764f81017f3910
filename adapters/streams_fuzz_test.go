package adapters

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/switchboard/switchboard/socketio"
)

// FuzzStreamsEntry feeds what anyone able to write to the stream, the channels or the session
// keys could put there (Node's entries, and anything else) to the code that reads it: nothing
// panics, whatever the shape.
func FuzzStreamsEntry(f *testing.F) {
	seeds := []struct{ typ, data string }{
		{"3", `{"packet":{"type":2,"data":["hello","x"]},"opts":{"rooms":["r1"],"except":[],"flags":{}}}`},
		{"3", "gqZwYWNrZXSCpHR5cGUCpGRhdGGTo2JpbsQDAQIDgaFk1v8AAAAApG9wdHODpXJvb21zkaJyMaZleGNlcHSQpWZsYWdzgA=="},
		{"3", `{"packet":{"type":2,"data":["vol",1]},"opts":{"rooms":[],"except":[],"flags":{"volatile":true}}}`},
		{"4", `{"opts":{"rooms":["r1"],"except":[],"flags":{}},"rooms":["r2"]}`},
		{"5", `{"opts":{"rooms":[1,2.5],"except":null},"rooms":"r"}`},
		{"6", `{"opts":{"rooms":[],"except":[]},"close":"yes"}`},
		{"7", `{"opts":{},"requestId":"x"}`},
		{"9", `{"packet":["sse",1],"requestId":"y"}`},
		{"9", `{"packet":["connection",1]}`},
		{"3", `{"packet":{"type":5,"data":"notarray"},"requestId":"z","opts":{}}`},
		{"3", `{"packet":{"type":2,"data":[]}}`},
		{"3", `{`},
		{"3", "!!!"},
		{"x", ""},
	}
	for _, s := range seeds {
		f.Add(s.typ, s.data)
	}
	a := startStreamsNode(f, localRedis, uniquePrefix(f), time.Minute, nil)
	sa := a.nsp.Adapter().(*streamsAdapter)
	f.Fuzz(func(t *testing.T, typ, data string) {
		a.streams().deliverMu.Lock()
		a.streams().onEntry("1-0", "someone", "/", typ, data)
		a.streams().deliverMu.Unlock()
		if m, err := decodeStreamData(data); err == nil {
			if p, ok := decodePacket(m["packet"], "/"); ok {
				_ = reaches([]string{"a"}, decodeOpts(m["opts"]))
				_ = p
			}
		}
		_, _ = decodeSession(data)
		_, _ = decodeSession(base64.StdEncoding.EncodeToString([]byte(data)))
		a.streams().onPushed("", data)
		sa.onPubSub("", data)
		if v, err := socketio.EncodeMsgpack(map[string]any{"type": 9, "uid": "u", "nsp": "/", "data": map[string]any{"packet": []any{data}}}); err == nil {
			sa.onPubSub("", string(v))
		}
	})
}
