package namespaces

import (
	"encoding/json"
	"maps"
	"strings"
	"unicode/utf8"

	"github.com/switchboard/switchboard/socketio"
)

// User is who a socket belongs to: the JWT subject, the app backend's choice (connect hook), or
// the socket itself when anonymous.
type User struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Identity is what Switchboard keeps about a socket, as the socket's data: it travels with the
// socket's session (connection state recovery) and to other nodes (FetchSockets), where it
// arrives as a map and is read back by IdentityFromData.
type Identity struct {
	User User `json:"user"`
	// Rooms holds the patterns of the token's rooms claim; nil means no claim (any room but
	// others' user rooms), an empty non-nil slice allows none.
	Rooms []string `json:"rooms"`
	// Exp is the token's expiry in Unix seconds; 0 for a socket without a token.
	Exp int64 `json:"exp,omitempty"`
	// Data is what the app backend's connect hook attached (SPEC §8.1), handed to later hooks.
	Data json.RawMessage `json:"data,omitempty"`
}

// UserRoomPrefix starts the reserved per-user rooms.
const UserRoomPrefix = "user:"

// UserRoom is the room every socket of a user is in.
func UserRoom(userID string) string { return UserRoomPrefix + userID }

// SetIdentity stores id as s's identity.
func SetIdentity(s *socketio.Socket, id Identity) { s.SetData(&id) }

// IdentityOf returns the socket's identity; a socket no middleware identified is anonymous.
func IdentityOf(s *socketio.Socket) Identity {
	if id, ok := IdentityFromData(s.Data()); ok {
		return id
	}
	return Anonymous(s.ID(), s.Handshake().Auth)
}

// IdentityFromData reads an identity from socket data: the *Identity SetIdentity stored, or the
// same after a round trip through msgpack or JSON (a recovered session, another node).
func IdentityFromData(data any) (Identity, bool) {
	switch d := data.(type) {
	case *Identity:
		return *d, d != nil && d.User.ID != ""
	case Identity:
		return d, d.User.ID != ""
	case map[string]any:
		// Data is raw JSON, which msgpack (a session kept in Redis, another node's answer)
		// carries as binary: those bytes are the JSON, not a value to encode as base64.
		raw, isRaw := d["data"].([]byte)
		if isRaw {
			d = maps.Clone(d)
			delete(d, "data")
		}
		b, err := json.Marshal(d)
		if err != nil {
			return Identity{}, false
		}
		var id Identity
		if json.Unmarshal(b, &id) != nil || id.User.ID == "" {
			return Identity{}, false
		}
		if isRaw && json.Valid(raw) {
			id.Data = json.RawMessage(raw)
		}
		return id, true
	}
	return Identity{}, false
}

// Anonymous is the identity of a socket without a token: its id is the socket id, its name is
// auth.name from the handshake when that is a string of 1–64 characters, else "guest-" and the
// first 4 characters of the id.
func Anonymous(socketID string, auth map[string]any) Identity {
	name, _ := auth["name"].(string)
	if n := utf8.RuneCountInString(name); n < 1 || n > 64 || strings.TrimSpace(name) == "" {
		name = "guest-" + firstRunes(socketID, 4)
	}
	return Identity{User: User{ID: socketID, Name: name}}
}

func firstRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}
