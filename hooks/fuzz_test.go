package hooks

import (
	"encoding/json"
	"testing"
)

// answerSeeds are real answers of both hooks and near misses.
var answerSeeds = []string{
	`{}`, ``, `null`, `[]`, `"x"`, `{"a":1} x`,
	`{"user":{"id":"u","name":"n"},"rooms":["a"],"data":{"k":[1,2]}}`,
	`{"user":{"id":""}}`, `{"user":null,"rooms":[null]}`, `{"data":null}`,
	`{"error":{"code":"banned","message":"no"}}`, `{"error":{"code":""}}`, `{"error":{"code":1}}`, `{"error":"x"}`,
	`{"ack":[1,"x",null,{"a":[]}]}`, `{"ack":[]}`, `{"ack":null}`, `{"ack":{}}`,
	`{"emit":[{"rooms":["a"],"except":["b"],"toSelf":false,"event":"e","args":[1]}]}`,
	`{"emit":[{"event":""}]}`, `{"emit":[null]}`, `{"emit":[{"event":"e","args":null}]}`,
	`{"join":["a"],"leave":["b"],"disconnect":true}`, `{"disconnect":1}`,
	`{"ACK":[1],"Join":["x"]}`, "{\"user\":{\"id\":\"\xff\"}}", `{"rooms":["a","a"],"rooms":[1]}`,
}

var statusSeeds = []int{200, 201, 204, 301, 400, 401, 403, 404, 418, 429, 499}

func FuzzDecodeConnect(f *testing.F) {
	for i, s := range answerSeeds {
		f.Add(statusSeeds[i%len(statusSeeds)], []byte(s))
		f.Add(200, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		status = 100 + abs(status)%400 // decoders never see a 5xx: post answers those
		res, err := decodeConnect(status, body)
		if err != nil {
			checkError(t, err, res.User != nil || res.Rooms != nil || res.Data != nil)
			return
		}
		if status >= 300 && status != 204 {
			t.Fatalf("status %d accepted", status)
		}
		if res.User != nil && res.User.ID == "" {
			t.Fatal("accepted a user without an id")
		}
		if res.Data != nil && !json.Valid(res.Data) {
			t.Fatalf("data %q is not JSON", res.Data)
		}
	})
}

func FuzzDecodeEvent(f *testing.F) {
	for i, s := range answerSeeds {
		f.Add(statusSeeds[i%len(statusSeeds)], []byte(s))
		f.Add(200, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		status = 100 + abs(status)%400
		res, err := decodeEvent(status, body)
		if err != nil {
			checkError(t, err, res.Ack != nil || res.Emit != nil || res.Join != nil || res.Leave != nil || res.Disconnect)
			return
		}
		if status >= 300 && status != 204 {
			t.Fatalf("status %d accepted", status)
		}
		for _, a := range res.Ack {
			if !json.Valid(a) {
				t.Fatalf("ack arg %q is not JSON", a)
			}
		}
		for _, e := range res.Emit {
			if e.Event == "" || e.Args == nil {
				t.Fatalf("emit %+v without an event or args", e)
			}
			for _, a := range e.Args {
				if !json.Valid(a) {
					t.Fatalf("emit arg %q is not JSON", a)
				}
			}
		}
	})
}

func checkError(t *testing.T, err *Error, withResult bool) {
	t.Helper()
	if withResult {
		t.Fatal("a result beside an error")
	}
	if err.Code == "" {
		t.Fatal("an error without a code")
	}
	if err.Refused == (err.Code == CodeInternal && err.outcome == outcomeInvalid) {
		t.Fatalf("error %+v: refused and invalid at once, or neither", err)
	}
}

func abs(n int) int {
	if n < 0 {
		if n = -n; n < 0 {
			return 0
		}
	}
	return n
}
