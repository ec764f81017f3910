package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"testing"
)

// FuzzDecodeEmit feeds arbitrary bodies to the emit decoding and validation: it never panics,
// fails only with a coded 400, and what it accepts holds only known fields and valid values.
func FuzzDecodeEmit(f *testing.F) {
	for _, seed := range []string{
		`{"event":"price","rooms":["prices:EURUSD"],"data":{"bid":1.0842}}`,
		`{"namespace":"/chat","rooms":["a","b"],"except":["c"],"event":"e","args":[1,"x",null,{"k":[true]}],"volatile":true}`,
		`{"event":"ask","data":"q","ackTimeoutMs":500}`,
		`{"event":"connect"}`,
		`{"event":"e","data":1,"args":[]}`,
		`{"Event":"e"}`,
		`{"event":"e","ackTimeoutMs":1e400}`,
		`{"event":"e","rooms":["\u0000"]}`,
		`{"rooms":["r1"],"rooms":[],"event":"e"}`, `{"event":"e","data":{"k":1,"k":2}}`,
		`{"event":"e"} []`,
		`[]`, `null`, `"x"`, ``, `{`, `{"event":"e","data":}`,
	} {
		f.Add([]byte(seed))
	}
	allowed := jsonFields(reflect.TypeFor[emitRequest]())
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeJSON[emitRequest](body)
		if err == nil {
			_, err = req.args()
		}
		if err == nil {
			err = checkRoomList("rooms", req.Rooms, false)
		}
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.status != http.StatusBadRequest || ae.err.Code != codeBadRequest || ae.err.Message == "" {
				t.Fatalf("decode %q: want a coded 400, got %#v", body, err)
			}
			return
		}
		var keys map[string]json.RawMessage
		if json.Unmarshal(body, &keys) != nil {
			t.Fatalf("accepted %q, which is not a JSON object", body)
		}
		for k := range keys {
			if _, ok := allowed[k]; !ok {
				t.Fatalf("accepted %q with unknown field %q", body, k)
			}
		}
		if k, twice := duplicateKey(body); twice {
			t.Fatalf("accepted %q with field %q given twice", body, k)
		}
		if req.Event == "" || reservedEvents[req.Event] {
			t.Fatalf("accepted %q with event %q", body, req.Event)
		}
		if req.Data != nil && req.Args != nil {
			t.Fatalf("accepted %q with both data and args", body)
		}
		if ms := req.AckTimeoutMs; ms != nil && (*ms < minAckTimeoutMs || *ms > maxAckTimeoutMs) {
			t.Fatalf("accepted %q with ackTimeoutMs %d", body, *ms)
		}
	})
}

// FuzzDecodeJSONFastPath checks that decodeJSON's one-decode fast path changes nothing: for any
// body it gives the value and the error the thorough two-pass decode gives, for a request type
// with an embedded struct (emit) and one with a plain field list (join).
func FuzzDecodeJSONFastPath(f *testing.F) {
	for _, seed := range []string{
		`{"event":"price","rooms":["prices:EURUSD"],"data":{"bid":1.0842}}`,
		` { "namespace" : "/chat" , "rooms" : [ "a" , "b" ] , "except":[],"event":"e","args":[1,"x\"",null,{"k":[true,{"event":1}]}],"volatile":true } `,
		`{"event":"e","data":"a,b}c]","ackTimeoutMs":500}`,
		`{"event":"e","data":-1.5e3,"volatile":false}`,
		`{"join":["a"],"rooms":["b"]}`,
		`{"\u0065vent":"e"}`, `{"ev\"ent":"e"}`, `{"Event":"e"}`, `{"event":"a","EVENT":"b"}`,
		`{"event":"e","event":"f"}`, `{"event":"e","data":{"x":1}`, `{"event":"e"}}`,
		`{"rooms":["a"],"event":"e","r\u006foms":[]}`, `{"event":"e","data":{"k":1,"k":2},"args":[{"a":0,"a":1}]}`,
		`{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":17}`,
		`{"event":"e","event":"e","event":"e","event":"e","event":"e","event":"e","event":"e","event":"e","event":"e","event":"e","event":"e","event":"e","event":"e","event":"e","event":"e","event":"e","event":"e"}`,
		`{"event":"e"} []`, `{"event":"e"}` + "\n", `{}`, `[]`, `null`, `"x"`, `1`, ``, `{`,
		`{"event":1}`, `{"rooms":"r"}`, `{"unknown":{"a":[1,2,{"b":"}"}]}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		sameDecode[emitRequest](t, body)
		sameDecode[joinRequest](t, body)
	})
}

// sameDecode fails t when decodeJSON and decodeJSONExact disagree about body.
func sameDecode[T any](t *testing.T, body []byte) {
	t.Helper()
	got, gotErr := decodeJSON[T](body)
	want, wantErr := decodeJSONExact[T](body)
	if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || !reflect.DeepEqual(got, want) {
		t.Fatalf("decode %q as %T: got %+v, %v; the thorough decode gives %+v, %v", body, *new(T), got, gotErr, want, wantErr)
	}
}
