package namespaces

import (
	"strings"
	"unicode/utf8"
)

// mapDecoder is implemented by request payloads that read the library's decoded map directly,
// without Decode's JSON round trip (marshal, then unmarshal: ~15% of the CPU of an acked
// request). decodeMap handles only payloads whose result is certain to equal the round trip's —
// every field either absent, null (pointer fields) or of its exact type, strings valid UTF-8,
// keys named exactly — and reports false for anything else, which Decode then hands to
// encoding/json, so that errors, their wording and the corner cases (case-insensitive keys,
// type errors, invalid UTF-8) stay the decoder's. It sets the receiver only when it reports true.
type mapDecoder interface {
	decodeMap(m map[string]any) bool
}

// exactKeys reports whether encoding/json would match the fields names against m's keys by
// their exact spelling only: no other key folds to one of the names.
func exactKeys(m map[string]any, names ...string) bool {
	for k := range m {
		if !isASCII(k) {
			return false // encoding/json folds non-ASCII keys its own way
		}
		for _, name := range names {
			if k != name && strings.EqualFold(k, name) {
				return false
			}
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// stringField reads a required-by-type string field: absent or null leaves "" (as json does).
func stringField(m map[string]any, name string) (string, bool) {
	switch v := m[name].(type) {
	case nil:
		return "", true
	case string:
		return v, utf8.ValidString(v)
	default:
		return "", false
	}
}

// decodeMap implements mapDecoder.
func (r *RoomsRequest) decodeMap(m map[string]any) bool {
	if !exactKeys(m, "rooms") {
		return false
	}
	list, ok := m["rooms"].([]any)
	if !ok {
		return false // absent, null or not an array: the decoder's answer
	}
	rooms := make([]string, len(list))
	for i, e := range list {
		s, ok := e.(string)
		if !ok || !utf8.ValidString(s) {
			return false
		}
		rooms[i] = s
	}
	r.Rooms = rooms
	return true
}

// decodeMap implements mapDecoder.
func (r *RoomRequest) decodeMap(m map[string]any) bool {
	if !exactKeys(m, "room") {
		return false
	}
	room, ok := stringField(m, "room")
	if ok {
		r.Room = room
	}
	return ok
}

// optionalField reads a pointer field: absent or null leaves nil (as json does).
func optionalField[T string | bool](m map[string]any, name string) (*T, bool) {
	switch v := m[name].(type) {
	case nil:
		return nil, true
	case T:
		if s, ok := any(v).(string); ok && !utf8.ValidString(s) {
			return nil, false
		}
		return &v, true
	default:
		return nil, false
	}
}

// decodeMap implements mapDecoder.
func (r *SendRequest) decodeMap(m map[string]any) bool {
	if !exactKeys(m, "room", "text") {
		return false
	}
	room, ok := stringField(m, "room")
	text, ok2 := optionalField[string](m, "text")
	if !ok || !ok2 {
		return false
	}
	r.Room, r.Text = room, text
	return true
}

// decodeMap implements mapDecoder.
func (r *TypingRequest) decodeMap(m map[string]any) bool {
	if !exactKeys(m, "room", "typing") {
		return false
	}
	room, ok := stringField(m, "room")
	typing, ok2 := optionalField[bool](m, "typing")
	if !ok || !ok2 {
		return false
	}
	r.Room, r.Typing = room, typing
	return true
}
