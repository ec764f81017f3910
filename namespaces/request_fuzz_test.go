package namespaces

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeByPointer feeds Decode every JSON value: it must never panic, refuse everything but an object
// with a coded bad_request, and validate pointer payloads as well as value ones.
func FuzzDecodeByPointer(f *testing.F) {
	for _, seed := range []string{
		`{"rooms":["a"]}`, `{"rooms":[]}`, `{"rooms":["bad room"]}`, `{"rooms":"a"}`, `{"rooms":[1]}`,
		`null`, `1`, `"x"`, `[]`, `{}`, `{"rooms":null}`, `{"rooms":[[[[]]]]}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		var v any
		if json.Unmarshal([]byte(payload), &v) != nil {
			return
		}
		var byValue RoomsRequest
		var byPointer *RoomsRequest
		errValue := Decode(v, &byValue)
		errPointer := Decode(v, &byPointer)
		for _, err := range []error{errValue, errPointer} {
			if err == nil {
				continue
			}
			e, ok := err.(*Error)
			if !ok || e.Code != CodeBadRequest {
				t.Fatalf("Decode(%s) = %v, want a bad_request *Error", payload, err)
			}
		}
		if (errValue == nil) != (errPointer == nil) {
			t.Fatalf("Decode(%s): by value %v, by pointer %v", payload, errValue, errPointer)
		}
		if errValue == nil && byValue.Validate() != nil {
			t.Fatalf("Decode(%s) accepted an invalid payload", payload)
		}
	})
}
